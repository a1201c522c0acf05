"""An event's sessions (blocks of time with a number of users), from a CSV or YAML file."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from ...times import aware, parse_typed_time
from .errors import PlanError


@dataclass(frozen=True)
class Block:
    start: datetime
    end: datetime
    users: int

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def _parse_time(text) -> datetime:
    # YAML schedules may hold times YAML already parsed
    if isinstance(text, datetime):
        return aware(text, repr(text.isoformat()))
    return parse_typed_time(str(text))


def parse_schedule(rows: Iterable[dict], default_users: int | None, where: str = "schedule") -> list[Block]:
    """Blocks from mappings with ``start``, ``end`` (ISO 8601 with offset) and optional ``users``."""
    blocks = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise PlanError(f"{where}: entry {i}: expected start, end and optional users")
        try:
            start, end = _parse_time(row["start"]), _parse_time(row["end"])
            users = row.get("users")
            users = default_users if users in (None, "") else int(users)
        except KeyError as e:
            raise PlanError(f"{where}: entry {i}: missing {e.args[0]}") from None
        except ValueError as e:
            raise PlanError(f"{where}: entry {i}: {e}") from None
        if users is None:
            raise PlanError(f"{where}: entry {i}: no users given and no --users")
        if users < 0:
            raise PlanError(f"{where}: entry {i}: users cannot be negative")
        if end <= start:
            raise PlanError(f"{where}: entry {i}: end must be later than start")
        blocks.append(Block(start, end, users))
    if not blocks:
        raise PlanError(f"{where}: no blocks")
    ordered = sorted(blocks, key=lambda b: b.start)
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            raise PlanError(f"{where}: blocks {a.start.isoformat()} and {b.start.isoformat()} overlap")
    return ordered


def read_schedule(path: str | Path, default_users: int | None) -> list[Block]:
    """A schedule file: CSV with header ``start,end[,users]``, or YAML/JSON, a list of
    ``{start, end, users}`` (or ``{blocks: [...]}``)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        data = yaml.safe_load(text)
        rows = data.get("blocks") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise PlanError(f"{path}: expected a list of blocks with start, end and users")
    return parse_schedule(rows, default_users, where=str(path))
