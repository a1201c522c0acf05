"""What a home holds, as plain data: walked without following symlinks, compared as data.

A home is listed as entries (directories, regular files, symbolic links) by their path relative
to the home, POSIX style, in sorted order. Symbolic links are entries of their own (their target
text), never followed, wherever they point. Anything else (sockets, FIFOs, devices) cannot be
archived and is listed apart as skipped, as is an unreadable ``lost+found`` at the top of a
volume.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
# ext4 volumes (most cloud block storage) have this at their root, owned by root and unreadable
# to the user the archive runs as: the filesystem's, not the participant's work
LOST_FOUND = "lost+found"
READABLE = os.R_OK | os.X_OK


@dataclass(frozen=True)
class Entry:
    """One thing in a home, as found on disk (``stat``) or in an archive."""

    path: str  # relative to the home, '/'-separated, never empty
    kind: str  # "dir" | "file" | "symlink"
    mode: int = 0  # permission bits
    size: int = 0  # files only
    target: str = ""  # symlinks only
    mtime_ns: int = 0  # as found on disk (not compared: a restore keeps whole seconds at best)
    sha256: str = ""  # files only, when read

    def same_content(self, other: Entry) -> bool:
        return (self.path, self.kind, self.mode, self.size, self.target, self.sha256) == (
            other.path,
            other.kind,
            other.mode,
            other.size,
            other.target,
            other.sha256,
        )


@dataclass(frozen=True)
class Scan:
    """A home's entries (sorted by path) and what cannot be archived in it."""

    entries: tuple[Entry, ...]
    skipped: tuple[str, ...] = ()  # paths of sockets, FIFOs and devices

    @property
    def files(self) -> int:
        return sum(1 for e in self.entries if e.kind == "file")

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries if e.kind == "file")


def _kind(mode: int) -> str | None:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return None


def scan(home: str | os.PathLike) -> Scan:
    """Every entry under ``home`` from ``lstat`` alone (no file is read): sorted, links not followed.

    An unreadable directory raises ``OSError`` naming it: a home that cannot be read whole is
    not archived at all rather than archived in part.
    """
    home = os.fspath(home)
    entries: list[Entry] = []
    skipped: list[str] = []

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as it:
            found = sorted(it, key=lambda d: d.name)
        for item in found:
            rel = f"{prefix}{item.name}"
            st = item.stat(follow_symlinks=False)
            kind = _kind(st.st_mode)
            if kind is None or (rel == LOST_FOUND and kind == "dir" and not os.access(item.path, READABLE)):
                skipped.append(rel)
                continue
            entries.append(
                Entry(
                    path=rel,
                    kind=kind,
                    mode=stat.S_IMODE(st.st_mode),
                    size=st.st_size if kind == "file" else 0,
                    target=os.readlink(item.path) if kind == "symlink" else "",
                    mtime_ns=st.st_mtime_ns,
                )
            )
            if kind == "dir":
                walk(item.path, rel + "/")

    walk(home, "")
    return Scan(tuple(sorted(entries, key=lambda e: e.path)), tuple(sorted(skipped)))


def open_no_follow(path: str | os.PathLike):
    """A regular file opened for reading, refusing a symlink put in its place since the scan."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open_no_follow(path) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def with_contents(home: str | os.PathLike, found: Scan) -> Scan:
    """``found`` with the sha256 of every file, read from ``home`` now."""
    home = Path(home)
    return Scan(
        tuple(
            Entry(**{**e.__dict__, "sha256": file_sha256(home / e.path)}) if e.kind == "file" else e
            for e in found.entries
        ),
        found.skipped,
    )


def fingerprint(found: Scan) -> str:
    """A digest of a scan (paths, kinds, modes, sizes, link targets, modification times): equal
    when nothing in the home was touched since. It decides what a second run may skip."""
    digest = hashlib.sha256()
    for e in found.entries:
        line = "\0".join(map(str, (e.kind, e.path, e.mode, e.size, e.target, e.mtime_ns)))
        digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    for path in found.skipped:
        digest.update(b"skipped\0" + path.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def differences(home: Iterable[Entry], archived: Iterable[Entry], limit: int = 5) -> list[str]:
    """How an archive's entries differ from a home's (empty: the same), for people to read."""
    mine = {e.path: e for e in home}
    theirs = {e.path: e for e in archived}
    problems: list[str] = []
    for path in sorted(mine.keys() - theirs.keys()):
        problems.append(f"{path!r} is in the home but not in the archive")
    for path in sorted(theirs.keys() - mine.keys()):
        problems.append(f"{path!r} is in the archive but not in the home")
    for path in sorted(mine.keys() & theirs.keys()):
        a, b = mine[path], theirs[path]
        if not a.same_content(b):
            what = [
                name
                for name in ("kind", "mode", "size", "target", "sha256")
                if getattr(a, name) != getattr(b, name)
            ]
            problems.append(f"{path!r} differs ({', '.join(what)})")
    if len(problems) > limit:
        problems = problems[:limit] + [f"... and {len(problems) - limit} more"]
    return problems


def iter_files(found: Scan) -> Iterator[Entry]:
    return (e for e in found.entries if e.kind == "file")
