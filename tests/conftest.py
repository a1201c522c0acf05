import atexit
import os
import shutil
import tempfile

import pytest

# In-process KubeSpawner objects (manifest tests) load a kubeconfig when constructed, and
# kubernetes_asyncio reads $KUBECONFIG at import time: give them one that points nowhere.
# Tests that talk to the emulated cluster start hub processes with their own KUBECONFIG.
_KUBECONFIG_DIR = tempfile.mkdtemp(prefix="workshop-tests-")
atexit.register(shutil.rmtree, _KUBECONFIG_DIR, ignore_errors=True)
_KUBECONFIG = os.path.join(_KUBECONFIG_DIR, "kubeconfig")
with open(_KUBECONFIG, "w") as _f:
    _f.write(
        "apiVersion: v1\nkind: Config\ncurrent-context: none\n"
        "clusters: [{name: none, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: none, user: {}}]\n"
        "contexts: [{name: none, context: {cluster: none, user: none, namespace: default}}]\n"
    )
os.environ.setdefault("KUBECONFIG", _KUBECONFIG)

from jupyterhub_workshop.login.issuing import Batch, issue  # noqa: E402 - after KUBECONFIG


@pytest.fixture(scope="session")
def sample_hash():
    """One real argon2id hash (hashing is deliberately slow; make it once)."""
    from jupyterhub_workshop.login.passwords import hash_password

    return hash_password("correct-horse")


def issue_accounts(prefix="ws", participants=3, instructors=1, **window):
    """Accounts and their cards, keyed by username for the tests."""
    accounts, cards = issue(Batch(prefix, participants, instructors, **window))
    return accounts, {c.username: c for c in cards}
