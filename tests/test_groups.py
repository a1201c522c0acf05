"""The line `scripts/dev test` starts with (tests/groups.py): which groups run, and why not."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests import groups

ROOT = groups.ROOT


@pytest.mark.parametrize(
    "args, selected",
    [
        ([], True),
        (["-x", "-q"], True),
        (["tests"], True),
        (["tests/deploy/"], True),
        (["tests/deploy/test_rehearsal.py::test_deployment_rehearsal"], True),
        (["tests/test_times.py"], False),
        (["tests/chart", "-k", "tests/deploy"], False),  # -k's expression is not a path
        (["tests/test_times.py", "tests/deploy/test_rehearsal.py"], True),
        (["no/such/path"], True),  # not a path: pytest will say so; build as usual
    ],
)
def test_which_arguments_select_the_rehearsal(monkeypatch, args, selected):
    monkeypatch.chdir(ROOT)
    assert groups.selects(args, groups.REHEARSAL) is selected


def test_postgres_reasons(monkeypatch):
    monkeypatch.delenv(groups.POSTGRES_ENV, raising=False)
    assert groups.postgres() == "WORKSHOP_TEST_POSTGRES_URL not set"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/test"
    monkeypatch.setenv(groups.POSTGRES_ENV, url)
    assert groups.postgres() == f"nothing answers at {url}: OperationalError"


def test_one_line_and_the_status_that_decides_the_rehearsal_environments(monkeypatch):
    monkeypatch.delenv(groups.POSTGRES_ENV, raising=False)
    env = {"PATH": "/usr/bin:/bin"}  # no configurable-http-proxy, no Python 3.12 given
    run = subprocess.run(
        [sys.executable, "-m", "tests.groups", "--", "tests/test_times.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == groups.WILL_NOT_RUN, run.stderr
    [line] = run.stdout.splitlines()
    assert line.startswith("will run: unit")
    assert "e2e (configurable-http-proxy not on PATH)" in line
    assert "rehearsal (not among the tests selected)" in line
    assert "postgres (WORKSHOP_TEST_POSTGRES_URL not set)" in line
    assert "chart (" in line  # from wherever it is here, or why not


def test_the_rehearsal_runs_only_when_nothing_blocks_it(monkeypatch):
    monkeypatch.setattr(groups, "machine_blockers", lambda: [])
    monkeypatch.setattr(groups.z2jh, "source", lambda: (ROOT / "helm-chart" / "charts", "z2jh here"))
    assert groups.plan("/usr/bin/python3.12", [])[2] is True
    _, skip, rehearsal = groups.plan(None, [])
    assert not rehearsal and "rehearsal (no Python 3.12: set PYTHON312)" in skip
    monkeypatch.setattr(groups.z2jh, "source", lambda: (None, "no z2jh 4.4.0: why"))
    _, skip, rehearsal = groups.plan("/usr/bin/python3.12", [])
    assert not rehearsal
    assert "chart (no z2jh 4.4.0: why)" in skip and "rehearsal (no chart)" in skip
