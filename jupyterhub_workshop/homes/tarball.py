"""One home as one deterministic .tar.gz, and an archive read back as a listing or into a directory.

Members are ``<name>/<path>`` (a folder of its own when unpacked), in sorted order, PAX format
(names of any length and in any script), with the files' permission bits, modification times and
numeric owners; no user or group names, and a gzip header without a name or time, so the same
home gives the same bytes on any machine. Symbolic links are stored as links, never followed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .listing import CHUNK, Entry, Scan, open_no_follow

COMPRESS_LEVEL = 6  # gzip's own default: level 9 costs twice the time for a few percent
ENCODING = dict(encoding="utf-8", errors="surrogateescape")


class HashingReader(io.RawIOBase):
    """A binary stream that hashes (sha256) and counts what is read through it."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None] | None = None):
        self.raw, self.on_read = raw, on_read
        self.digest, self.count = hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.digest.update(data)
        self.count += n
        if self.on_read and n:
            self.on_read(n)
        return n

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class HashingWriter(io.RawIOBase):
    def __init__(self, raw: BinaryIO):
        self.raw, self.digest, self.count = raw, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.raw.write(data)
        self.digest.update(data)
        self.count += len(data)
        return len(data)


class ShortRead(OSError):
    pass


def write(
    home: str | os.PathLike,
    name: str,
    found: Scan,
    out: BinaryIO,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[str, int]:
    """Archive the entries of ``found`` (a scan of ``home``) into ``out``; (sha256, bytes) of the archive.

    Files are read as they are now: a file that changed size since the scan raises ``ShortRead``
    or ends up different, which the verification then reports.
    """
    home = Path(home)
    sink = HashingWriter(out)
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=COMPRESS_LEVEL, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT, **ENCODING) as tar,
    ):
        root = tarfile.TarInfo(name)
        root.type, root.mode = tarfile.DIRTYPE, os.lstat(home).st_mode & 0o7777
        tar.addfile(root)
        for entry in found.entries:
            st = os.lstat(home / entry.path)
            info = tarfile.TarInfo(f"{name}/{entry.path}")
            info.mode, info.mtime = entry.mode, st.st_mtime
            info.uid, info.gid = st.st_uid, st.st_gid
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            else:
                info.type, info.size = tarfile.REGTYPE, entry.size
                with open_no_follow(home / entry.path) as f:
                    source = HashingReader(f, on_bytes)
                    try:
                        tar.addfile(info, source)
                    except OSError as e:  # tarfile: "unexpected end of data"
                        raise ShortRead(f"{entry.path!r} shrank while being archived ({e})") from None
    return sink.digest.hexdigest(), sink.count


def _relative(member: tarfile.TarInfo, name: str) -> str | None:
    """The member's path inside the home ('' for the home itself); None if outside ``name/``."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != name:
        return None
    return "/".join(path.parts[1:])


def _home_members(tar: tarfile.TarFile, name: str) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """Each member below the home's own folder, with its path inside the home; ``ValueError``
    for a member outside ``name/``."""
    for member in tar:
        rel = _relative(member, name)
        if rel is None:
            raise ValueError(f"archive member {member.name!r} is not inside {name}/")
        if rel:
            yield member, rel


def read(stream: BinaryIO, name: str, on_bytes: Callable[[int], None] | None = None) -> tuple[Scan, str, int]:
    """The entries of an archive read from ``stream`` (file contents hashed), and the sha256 and
    size of the whole stream. Raises ``ValueError`` for a member that is not ``name``'s."""
    source = HashingReader(stream, on_bytes)
    entries: list[Entry] = []
    with tarfile.open(fileobj=source, mode="r|gz", **ENCODING) as tar:
        for member, rel in _home_members(tar, name):
            mode = member.mode & 0o7777
            if member.isdir():
                entries.append(Entry(rel, "dir", mode))
            elif member.issym():
                entries.append(Entry(rel, "symlink", mode, target=member.linkname))
            elif member.isreg():
                digest = hashlib.sha256()
                f = tar.extractfile(member)
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
                entries.append(Entry(rel, "file", mode, size=member.size, sha256=digest.hexdigest()))
            else:
                raise ValueError(f"archive member {member.name!r} is of a kind homes are not archived as")
    source.drain()  # the end-of-archive padding counts in the object's digest
    return Scan(tuple(sorted(entries, key=lambda e: e.path))), source.digest.hexdigest(), source.count


# restored as archived, but never setuid or setgid: a restore (often by root) must not make
# a participant's file run with another's rights; the sticky bit and group/other write stay
# (Jupyter's runtime folder is 1700, shared project folders group-writable)
RESTORED_MODE_BITS = 0o1777


def _restore_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """tarfile's ``tar`` filter (no absolute paths, nothing outside ``into``, no devices' modes),
    then the archived permission bits put back but for setuid and setgid; a directory keeps
    owner write and search until everything in it is made (``restore`` sets its mode last)."""
    safe = tarfile.tar_filter(member, path)
    if member.mode is None or member.issym():
        return safe
    mode = member.mode & RESTORED_MODE_BITS
    return safe.replace(mode=mode | 0o700 if member.isdir() else mode, deep=False)


def restore(stream: BinaryIO, name: str, into: str | os.PathLike) -> int:
    """Unpack the archive of ``name`` from ``stream`` into the directory ``into`` (the home's
    contents, without the ``name/`` folder); links restored as links; files and folders with
    their permission bits (never setuid or setgid) and modification times. Returns the
    entries made.

    ``into`` must be empty or absent: a restore never overwrites anything.
    """
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    if any(into.iterdir()):
        raise ValueError(f"{into} is not empty: restore into a new directory")
    made = 0
    links: set[str] = set()
    directories: list[tuple[Path, int, float]] = []
    with tarfile.open(fileobj=stream, mode="r|gz", **ENCODING) as tar:
        for member, rel in _home_members(tar, name):
            # nothing may be unpacked through a link the archive itself made
            parents = {"/".join(rel.split("/")[:i]) for i in range(1, rel.count("/") + 1)}
            if parents & links:
                raise ValueError(f"archive member {member.name!r} lies under a symbolic link")
            if member.issym():
                links.add(rel)
            member.name = rel
            tar.extract(member, into, set_attrs=True, filter=_restore_filter)
            if member.isdir():
                directories.append((into / rel, member.mode & RESTORED_MODE_BITS, member.mtime))
            made += 1
    # as tarfile's extractall: folders' modes and times once their contents are in (deepest first)
    for path, mode, mtime in sorted(directories, key=lambda d: len(d[0].parts), reverse=True):
        os.chmod(path, mode)
        os.utime(path, (mtime, mtime))
    return made
