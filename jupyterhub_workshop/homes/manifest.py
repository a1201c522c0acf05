"""The archive manifest and the decisions made from it (pure): what to archive, what is covered,
whether homes may be deleted.

``manifest.json`` beside the archives holds one record per home whose archive was verified
against it: the archive's name, sha256 and size, the home's files and bytes, and the home's
fingerprint at that moment (``listing.fingerprint``). A record is written only after its
archive was read back from the destination and found equal to the home, so the manifest never
claims more than is true.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

FORMAT = "jupyterhub-workshop home archives"
VERSION = 1
NAME = "manifest.json"
SUFFIX = ".tar.gz"


@dataclass(frozen=True)
class Record:
    home: str  # the claim's name (one claim per user), or the home's directory name
    archive: str  # object name in the destination
    sha256: str  # of the archive
    archive_bytes: int
    files: int
    symlinks: int
    dirs: int
    bytes: int  # of the home's files
    fingerprint: str
    verified_at: str  # ISO 8601, UTC
    user: str = ""  # the hub user, when known (the claim's hub.jupyter.org/username annotation)
    skipped: tuple[str, ...] = ()  # sockets, FIFOs, devices: not archivable

    def as_json(self) -> dict:
        data = asdict(self)
        data["skipped"] = list(self.skipped)
        return data


@dataclass(frozen=True)
class Manifest:
    records: Mapping[str, Record] = field(default_factory=dict)

    def with_record(self, record: Record) -> Manifest:
        return Manifest({**self.records, record.home: record})

    def dumps(self) -> str:
        homes = [self.records[h].as_json() for h in sorted(self.records)]
        text = json.dumps(
            {"format": FORMAT, "version": VERSION, "homes": homes}, indent=1, ensure_ascii=False
        )
        return text + "\n"

    @classmethod
    def loads(cls, text: str, where: str = NAME) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not JSON ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{where}: not a {FORMAT} manifest")
        if data.get("version") != VERSION:
            raise ValueError(f"{where}: manifest version {data.get('version')!r}; this tool reads {VERSION}")
        records = {}
        for item in data.get("homes") or []:
            try:
                record = Record(**{**item, "skipped": tuple(item.get("skipped") or ())})
            except TypeError as e:
                raise ValueError(f"{where}: bad record {item!r} ({e})") from None
            records[record.home] = record
        return cls(records)


def archive_name(home: str) -> str:
    return home + SUFFIX


def check_home_name(home: str) -> str:
    """A home's name becomes a file or object name: refuse those that cannot be one safely."""
    if not home or home in (".", "..") or "/" in home or "\0" in home or home.endswith(".partial"):
        raise ValueError(f"{home!r} cannot name a home's archive")
    return home


def why_archive(record: Record | None, fingerprint: str, stored_bytes: int | None) -> str | None:
    """Why a home must be (re)archived now, or None when its verified archive still stands.

    ``stored_bytes``: the size of the archive found in the destination (None: absent).
    """
    if record is None:
        return "not archived yet"
    if record.fingerprint != fingerprint:
        return "changed since its archive was verified"
    if stored_bytes is None:
        return f"its archive {record.archive} is missing"
    if stored_bytes != record.archive_bytes:
        return (
            f"its archive {record.archive} is {stored_bytes} bytes, not the {record.archive_bytes} verified"
        )
    return None


@dataclass(frozen=True)
class Coverage:
    """Which homes a manifest covers: those with a verified archive still present, and the rest."""

    covered: tuple[str, ...]
    missing: tuple[str, ...]  # no record
    damaged: tuple[tuple[str, str], ...]  # (home, why): archive absent or not as verified

    @property
    def complete(self) -> bool:
        return not self.missing and not self.damaged


def coverage(
    homes: Iterable[str],
    manifest: Manifest,
    stored: Mapping[str, int | None],
    fingerprints: Mapping[str, str] | None = None,
) -> Coverage:
    """Do verified archives cover ``homes``? ``stored``: archive name → size found (None: absent);
    ``fingerprints``: the homes' fingerprints now, where they can be read (a home changed since
    its archive was verified is not covered)."""
    covered, missing, damaged = [], [], []
    for home in sorted(set(homes)):
        record = manifest.records.get(home)
        if record is None:
            missing.append(home)
            continue
        size = stored.get(record.archive)
        if fingerprints is not None and home in fingerprints and fingerprints[home] != record.fingerprint:
            damaged.append((home, "changed since its archive was verified"))
        elif size is None:
            damaged.append((home, f"its archive {record.archive} is missing"))
        elif size != record.archive_bytes:
            damaged.append(
                (home, f"its archive {record.archive} is {size} bytes, not {record.archive_bytes}")
            )
        else:
            covered.append(home)
    return Coverage(tuple(covered), tuple(missing), tuple(damaged))


@dataclass(frozen=True)
class DeleteDecision:
    allowed: bool
    reasons: tuple[str, ...]  # why not (empty when allowed)


def may_delete(
    homes: Iterable[str],
    cover: Coverage | None,
    in_use: Mapping[str, Iterable[str]],
    no_archive_confirmed: bool,
) -> DeleteDecision:
    """May these homes be deleted? Only when nobody is using one (``in_use``: home → pods that
    mount it) and a verified archive covers every one — or the organizer said, explicitly, that
    there is no archive (``--i-have-no-archive``)."""
    homes = sorted(set(homes))
    reasons = []
    for home in homes:
        pods = sorted(in_use.get(home) or ())
        if pods:
            reasons.append(f"{home} is in use by {', '.join(pods)}: stop those servers first")
    if not no_archive_confirmed:
        if cover is None:
            reasons.append("no archive manifest was found")
        else:
            reasons += [f"{home} has no verified archive" for home in cover.missing]
            reasons += [f"{home}: {why}" for home, why in cover.damaged]
    return DeleteDecision(not reasons, tuple(reasons))
