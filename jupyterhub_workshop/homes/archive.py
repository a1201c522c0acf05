"""Archive every home and verify each archive against its home (the IO around the pure parts).

For each home: scan it (``lstat`` only), and skip it when the manifest's verified record still
stands (same fingerprint, archive present at its size). Otherwise write a new archive beside the
old one (``<home>.tar.gz.partial``), read it back *from the destination* and compare it, entry by
entry and byte for byte (sha256), with the home as it is now; only then does it replace the old
archive, and only then is the home's record written to the manifest. A home that cannot be read
or changed meanwhile keeps its previous archive and record, is reported, and the others go on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..progress import Progress
from . import listing, tarball
from .manifest import NAME, Manifest, Record, archive_name, check_home_name, why_archive


@dataclass(frozen=True)
class Home:
    name: str  # the claim's name, or the directory's
    path: Path
    user: str = ""


@dataclass
class Outcome:
    archived: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # verified before, unchanged
    failed: list[tuple[str, str]] = field(default_factory=list)  # (home, why)
    bytes_read: int = 0  # of homes' files, archived this run
    archive_bytes: int = 0
    seconds: float = 0.0


def homes_in(directory: str | os.PathLike, only: Iterable[str] = ()) -> list[Home]:
    """Each directory under ``directory`` is one home, named as it is named there (claims mounted
    at ``/homes/<claim>``; a static claim's directory per user; the local twin's homes)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory of homes")
    only = set(only)
    homes = [
        Home(check_home_name(p.name), p)
        for p in sorted(directory.iterdir(), key=lambda p: p.name)
        if p.is_dir() and not p.is_symlink() and (not only or p.name in only)
    ]
    unknown = only - {h.name for h in homes}
    if unknown:
        raise ValueError(f"no home directory {', '.join(sorted(unknown))} in {directory}")
    return homes


def load_manifest(destination) -> Manifest:
    text = destination.read_text(NAME)
    return Manifest() if text is None else Manifest.loads(text, f"{destination}/{NAME}")


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def verify_staged(destination, home: Home, on_bytes: Callable[[int], None] | None = None):
    """Read the staged archive back from the destination and compare it with the home now.

    Returns (scan of the home now, sha256 and size of the archive as stored, differences)."""
    with destination.open_staged(archive_name(home.name)) as stream:
        archived, sha256, size = tarball.read(stream, home.name)
    found = listing.scan(home.path)
    now = listing.with_contents(home.path, found)
    if on_bytes:
        on_bytes(now.bytes)
    return found, sha256, size, listing.differences(now.entries, archived.entries)


def archive_one(destination, home: Home, found: listing.Scan, on_bytes) -> Record:
    """Archive ``home`` (already scanned as ``found``) and verify it; its new record, or raise."""
    name = archive_name(home.name)
    try:
        with destination.stage(name) as out:
            written_sha, written_bytes = tarball.write(home.path, home.name, found, out, on_bytes)
        now, sha256, size, problems = verify_staged(destination, home, on_bytes)
        if (sha256, size) != (written_sha, written_bytes):
            problems = [f"the stored archive is not what was written ({size} bytes, {written_bytes} written)"]
        if problems:
            raise ValueError(
                "the archive does not match the home (is its server still running?): " + "; ".join(problems)
            )
        destination.promote(name)
        if destination.size(name) != size:
            raise ValueError(f"{name} is not {size} bytes once in place")
    except BaseException:
        destination.discard(name)
        raise
    return Record(
        home=home.name,
        user=home.user,
        archive=name,
        sha256=sha256,
        archive_bytes=size,
        files=now.files,
        symlinks=sum(1 for e in now.entries if e.kind == "symlink"),
        dirs=sum(1 for e in now.entries if e.kind == "dir"),
        bytes=now.bytes,
        skipped=now.skipped,
        fingerprint=listing.fingerprint(now),
        verified_at=now_utc(),
    )


def archive_homes(homes: list[Home], destination, *, progress_file=None, log=print) -> Outcome:
    """Archive and verify ``homes`` into ``destination``, skipping those verified and unchanged."""
    started = time.monotonic()
    outcome = Outcome()
    manifest = load_manifest(destination)
    stored = destination.sizes()

    todo: list[tuple[Home, listing.Scan]] = []
    for home in homes:
        try:
            found = listing.scan(home.path)
        except OSError as e:
            outcome.failed.append((home.name, f"cannot read it: {e}"))
            continue
        record = manifest.records.get(home.name)
        why = why_archive(record, listing.fingerprint(found), stored.get(archive_name(home.name)))
        if why is None:
            outcome.skipped.append(home.name)
            if home.user and record.user != home.user:  # learnt the user's name since
                manifest = manifest.with_record(Record(**{**record.__dict__, "user": home.user}))
        else:
            log(f"{home.name}: {why}")
            todo.append((home, found))

    total = 2 * sum(found.bytes for _, found in todo)  # read once to archive, once to verify
    with Progress(total, "Archiving homes", file=progress_file, unit="B", unit_scale=True) as bar:
        for i, (home, found) in enumerate(todo, 1):
            bar.set_postfix_str(f"{home.name} ({i}/{len(todo)})", refresh=False)
            try:
                record = archive_one(destination, home, found, bar.update)
            except (OSError, ValueError, EOFError) as e:
                outcome.failed.append((home.name, str(e)))
                continue
            manifest = manifest.with_record(record)
            destination.write_text(NAME, manifest.dumps())  # after each home: a stop loses nothing done
            outcome.archived.append(home.name)
            outcome.bytes_read += record.bytes
            outcome.archive_bytes += record.archive_bytes
    if not todo:
        destination.write_text(NAME, manifest.dumps())
    outcome.seconds = time.monotonic() - started
    return outcome
