"""The deployment rehearsal (see ``tests/deploy/__init__.py``): the scenarios, run by a pytest of
their own inside a private network, mount and pid namespace; then nothing may be left behind.

Needs root, ``unshare`` (util-linux), overlayfs, the environments ``scripts/dev test`` builds
(``.venv-hub``, ``.venv-singleuser``, ``node_modules/``) and the z2jh 4.4.0 chart; skips naming
what is missing otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.chart.helpers import CI_DIR

from .inside import RUN_ENV
from .needs import machine_blockers, missing_environments
from .network import hosts_text
from .pods import NSINIT

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["tests/deploy/rehearse_workshop.py", "tests/deploy/rehearse_values.py"]
TIMEOUT = 600  # seconds; the rehearsal takes 1.5-3 minutes on two shared cores
# paths the pods' mounts appear at (inside their namespaces only)
POD_PATHS = (
    "/usr/local/etc/jupyterhub",
    "/var/run/secrets/kubernetes.io",
    "/run/secrets/kubernetes.io",
    "/etc/workshop",
    "/srv/jupyterhub",
    "/home/jovyan",
)


def why_not() -> list[str]:
    """Why the rehearsal cannot run here; its environments are named only when they are all that
    is missing (scripts/dev test builds them only then)."""
    return machine_blockers() or [f"needs {what}: run scripts/dev test" for what in missing_environments()]


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when this test's process dies (PR_SET_PDEATHSIG), so
    a killed test run cannot leave the namespace behind."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def mounts_now() -> list[str]:
    with open("/proc/self/mounts") as f:
        return f.read().splitlines()


def processes_in(namespaces: dict[str, str]) -> list[str]:
    """Processes (``pid command``) in any of the given namespaces."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            theirs = {kind: os.readlink(f"/proc/{entry}/ns/{kind}") for kind in namespaces}
            if any(theirs[kind] == value for kind, value in namespaces.items()):
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry} {command}")
        except OSError:
            continue
    return found


def test_deployment_rehearsal(tmp_path):
    reasons = why_not()
    if reasons:
        pytest.skip("; ".join(reasons))
    run = tmp_path / "run"
    run.mkdir()
    hosts = run / "hosts"
    hosts.write_text(hosts_text([], "default"))
    junit, report, log_path = run / "junit.xml", run / "namespaces.json", run / "rehearsal.log"
    spec = {
        "loopback": True,
        "mounts": [{"target": "/etc/hosts", "source": str(hosts)}],
        "cwd": str(ROOT),
        "argv": [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            *SCENARIOS,
        ],
        "env": {**os.environ, RUN_ENV: str(run)},
        "report": str(report),
    }
    fd = os.open(run / "nsinit.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the environment
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    before = mounts_now()
    existed = {path: os.path.lexists(path) for path in POD_PATHS}

    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation=private",
                "--net",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
            ]
            + ["--", sys.executable, str(NSINIT), str(run / "nsinit.json")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            code = proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if proc.poll() is None:  # kills the namespace's init, and with it everything inside
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    seconds = time.monotonic() - started
    output = log_path.read_text(errors="replace")
    print(output[-6000:])
    print(f"deployment rehearsal: {seconds:.0f} s")

    # nothing outlives the namespaces: no process in them, no mount of theirs out here
    assert report.exists(), f"the namespace's init did not start:\n{output[-4000:]}"
    assert processes_in(json.loads(report.read_text())) == []
    leaked = [
        m for m in mounts_now() if m not in before and (str(run) in m or any(p in m for p in POD_PATHS))
    ]
    assert leaked == []
    assert {path: os.path.lexists(path) for path in POD_PATHS} == existed  # nothing made on the host

    assert code is not None, f"the rehearsal did not finish in {TIMEOUT} s:\n{output[-4000:]}"
    assert junit.exists(), f"the scenarios' pytest ended with {code} and no report:\n{output[-4000:]}"
    cases = ET.parse(junit).getroot().iter("testcase")
    results = {
        f"{case.get('classname')}::{case.get('name')}": [
            child.tag for child in case if child.tag in ("failure", "error", "skipped")
        ]
        for case in cases
    }
    bad = {name: tags for name, tags in results.items() if tags}
    assert code == 0 and not bad, f"rehearsal failed ({bad}):\n{output[-8000:]}"
    # every scenario ran: the workshop's steps, and each values file
    assert sum("rehearse_workshop" in name for name in results) >= 6, results
    for values_file in sorted(p.name for p in CI_DIR.glob("*.yaml")):
        assert any(f"[{values_file}]" in name for name in results), (values_file, results)
