import pytest

from jupyterhub_workshop.credentials import Batch, issue
from jupyterhub_workshop.accounts import AccountBook


@pytest.fixture(scope="session")
def sample_hash():
    """One real argon2id hash (hashing is deliberately slow; make it once)."""
    from jupyterhub_workshop.passwords import hash_password

    return hash_password("correct-horse")


def issue_accounts(prefix="ws", participants=3, instructors=1, **window):
    """Accounts and their cards, keyed by username for the tests."""
    accounts, cards = issue(Batch(prefix, participants, instructors, **window))
    return accounts, {c.username: c for c in cards}
