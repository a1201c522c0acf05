"""What the deployment rehearsal needs from the machine, read without starting anything: the
test skips naming what is missing, and ``scripts/dev test`` builds the rehearsal's environments
only when nothing else is missing (see ``tests/groups.py``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.chart import z2jh

ROOT = Path(__file__).resolve().parents[2]
HUB_ENV = ROOT / ".venv-hub"  # z2jh 4.4.0's hub image packages + this package (scripts/dev test)
SINGLEUSER_ENV = ROOT / ".venv-singleuser"  # images/singleuser/requirements.txt (scripts/dev test)
PROXY_BIN = ROOT / "node_modules" / ".bin"  # configurable-http-proxy (scripts/dev)


def machine_blockers() -> list[str]:
    """What stops the rehearsal that building its environments would not mend."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("needs root (private mount, network and pid namespaces)")
    if shutil.which("unshare") is None:
        reasons.append("needs unshare (util-linux)")
    try:
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                reasons.append("needs overlayfs (pod paths are made in an overlay, never on the host)")
    except OSError:
        reasons.append("needs /proc/filesystems")
    path, words = z2jh.source()
    if path is None:
        reasons.append(f"needs the chart: {words}")
    return reasons


def missing_environments() -> list[str]:
    """What the rehearsal needs that `scripts/dev test` builds, when absent."""
    wanted = {
        HUB_ENV / "bin" / "jupyterhub": "the hub environment .venv-hub",
        SINGLEUSER_ENV / "bin" / "jupyterhub-singleuser": "the single-user environment .venv-singleuser",
        PROXY_BIN / "configurable-http-proxy": "configurable-http-proxy in node_modules/",
    }
    return [what for path, what in wanted.items() if not path.exists()]
