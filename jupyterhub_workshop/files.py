"""Writing files so that a reader sees the old or the new version, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: str | os.PathLike, text: str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` (temporary file in the same directory, fsync, rename).

    On any failure the old file is left untouched and the temporary file removed. ``mode``
    defaults to owner-only: most of what we write (cards, settings) is private.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
