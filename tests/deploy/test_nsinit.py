"""nsinit's private /tmp that keeps some host paths under /tmp (a checkout there), run for real
in private mount and pid namespaces (root only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .pods import NSINIT


def run_in_namespace(spec: dict, where: Path) -> subprocess.CompletedProcess:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (private mount and pid namespaces)")
    spec_file = where / "nsinit.json"
    spec_file.write_text(json.dumps(spec))
    command = ["unshare", "--mount", "--propagation=private", "--pid", "--fork", "--kill-child"]
    return subprocess.run(
        [*command, "--mount-proc", "--", sys.executable, str(NSINIT), str(spec_file)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_private_tmp_keeps_the_paths_asked_for_read_only_and_hides_the_rest(tmp_path):
    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip(f"the test's directory {tmp_path} is not under /tmp")
    kept = tmp_path / "checkout" / ".venv-hub"
    (kept / "bin").mkdir(parents=True)
    (kept / "bin" / "tool").write_text("kept\n")
    (tmp_path / "checkout" / "hidden").write_text("not kept\n")
    (tmp_path / "scratch").mkdir()
    script = (
        'test "$(cat "$KEPT/bin/tool")" = kept || { echo "kept path not visible"; exit 1; }\n'
        'test ! -e "$HIDDEN" || { echo "the host /tmp shows through"; exit 1; }\n'
        'touch "$KEPT/new" 2>/dev/null && { echo "kept path writable"; exit 1; }\n'
        'touch /tmp/own && test -z "$(ls -A /tmp | grep -v -x -e own -e "$FIRST")" || { ls -A /tmp; exit 1; }\n'
        "echo ok\n"
    )
    first = Path(os.path.relpath(tmp_path, "/tmp")).parts[0]
    result = run_in_namespace(
        {
            "scratch": str(tmp_path / "scratch"),
            "mounts": [{"target": "/tmp", "tmpfs": True, "keep": [str(kept)]}],
            "cwd": "/",
            "argv": ["sh", "-c", script],
            "env": {
                "PATH": "/usr/bin:/bin",
                "KEPT": str(kept),
                "HIDDEN": str(tmp_path / "checkout" / "hidden"),
                "FIRST": first,
            },
        },
        tmp_path,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stdout + result.stderr
    # nothing made on the host: the new file went to the namespace's /tmp
    assert not (kept / "new").exists() and not Path("/tmp/own").exists()


def test_keep_outside_the_tmpfs_is_refused(tmp_path):
    (tmp_path / "scratch").mkdir()
    result = run_in_namespace(
        {
            "scratch": str(tmp_path / "scratch"),
            "mounts": [{"target": "/tmp", "tmpfs": True, "keep": ["/usr/bin"]}],
            "argv": ["true"],
            "env": {"PATH": "/usr/bin:/bin"},
        },
        tmp_path,
    )
    assert result.returncode != 0
    assert "keep '/usr/bin' is not under '/tmp'" in result.stderr


def test_mount_points_at_the_top_are_made_in_a_root_of_its_own_never_on_the_host(tmp_path):
    # a Job's /homes/<claim> and /archive: nothing at / may be made on the host
    top = f"/nsinit-test-{os.getpid()}"
    source = tmp_path / "claim"
    source.mkdir()
    (source / "notes.txt").write_text("mine\n")
    other = tmp_path / "claim-b"
    other.mkdir()
    (other / "notes.txt").write_text("theirs\n")
    (tmp_path / "scratch").mkdir()
    script = (
        'test "$(cat /homes-x/claim-a/notes.txt)" = mine || { echo "claim not mounted"; exit 1; }\n'
        'test "$(cat /homes-x/claim-b/notes.txt)" = theirs || { echo "second claim not mounted"; exit 1; }\n'
        'touch /homes-x/claim-a/new 2>/dev/null && { echo "read-only claim writable"; exit 1; }\n'
        'touch "$TOP/made" || { echo "destination not writable"; exit 1; }\n'
        'test -x /usr/bin/env && test -e /proc/self/status || { echo "the host tree is missing"; exit 1; }\n'
        "echo ok\n"
    ).replace("/homes-x", f"{top}-homes")
    destination = tmp_path / "destination"
    destination.mkdir()
    result = run_in_namespace(
        {
            "scratch": str(tmp_path / "scratch"),
            "mounts": [
                {"target": f"{top}-homes/claim-a", "source": str(source), "readOnly": True},
                {"target": f"{top}-homes/claim-b", "source": str(other), "readOnly": True},
                {"target": top, "source": str(destination)},
            ],
            "cwd": "/",
            "argv": ["sh", "-c", script],
            "env": {"PATH": "/usr/bin:/bin", "TOP": top},
        },
        tmp_path,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stdout + result.stderr
    assert (destination / "made").exists() and not (source / "new").exists()
    assert not os.path.lexists(top) and not os.path.lexists(f"{top}-homes")
