"""Homes as participants leave them, and comparing a restored home with the original."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

OUTSIDE = "/etc/hostname"  # a symlink target outside every home: archived as a link, never read


def fill_home(home: Path, seed: int = 0, big: int = 256 * 1024) -> Path:
    """A home with what people leave: spaces, unicode, nested folders, an empty folder, an
    executable, binary data, symlinks inside, outside (absolute) and dangling."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "my notebook.ipynb").write_text(json.dumps({"cells": [], "seed": seed}) + "\n")
    (home / "données").mkdir()
    (home / "données" / "résumé — 日本語.txt").write_text(f"naïve café {seed}\n", encoding="utf-8")
    (home / "données" / "deep" / "er").mkdir(parents=True)
    (home / "données" / "deep" / "er" / "data.bin").write_bytes(os.urandom(big))
    (home / "empty folder").mkdir()
    script = home / "run me.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    private = home / ".ssh-like"
    private.write_text("secret\n")
    private.chmod(0o600)
    (home / "outside").symlink_to(OUTSIDE)
    (home / "inside link").symlink_to("données/résumé — 日本語.txt")
    (home / "dangling").symlink_to("no such file")
    return home


def tree(root: Path) -> dict[str, tuple]:
    """Everything under ``root`` without following links: path → (kind, mode, bytes or target)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                found[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return found


def assert_same_tree(restored: Path, home: Path) -> None:
    a, b = tree(restored), tree(home)
    assert sorted(a) == sorted(b)
    for rel in b:
        assert a[rel] == b[rel], rel
