"""What the rehearsal's scenarios share, inside the rehearsal's namespaces."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupyterhub_workshop.login.issuing import Batch, generate
from jupyterhub_workshop.login.printing import read_cards_csv

RUN_ENV = "WORKSHOP_REHEARSAL_RUN"  # set by test_rehearsal.py: the run's directory


def run_dir() -> Path:
    """The run directory (and the /etc/hosts bound in this namespace), or skip: the scenarios
    run only inside the rehearsal's namespaces."""
    value = os.environ.get(RUN_ENV)
    if not value:
        pytest.skip("a rehearsal scenario: run by tests/deploy/test_rehearsal.py inside its namespaces")
    return Path(value)


def hosts_file() -> Path:
    return run_dir() / "hosts"


def make_cards(directory: Path, prefix: str = "rehearsal", participants: int = 2, instructors: int = 1):
    """Cards the way an organizer makes them: accounts.yaml (for the hub) and cards.csv."""
    generate(directory, Batch(prefix, participants, instructors), title="Deployment rehearsal")
    cards = {c.username: c for c in read_cards_csv(directory / "cards.csv")}
    return (directory / "accounts.yaml").read_text(), cards


def organizer_secrets(accounts_yaml: str) -> dict[str, dict[str, str]]:
    """The Secrets the ci values files name (made with kubectl before `helm install`): the
    accounts, and a usage database URL — a SQLite file on the hub's volume, so that the URL
    travels the Secret -> hub environment -> managed service path and the service works."""
    return {
        "workshop-accounts": {"accounts.yaml": accounts_yaml},
        "workshop-db": {"url": "sqlite:////srv/jupyterhub/usage-from-secret.sqlite"},
    }
