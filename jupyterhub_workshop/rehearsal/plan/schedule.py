"""An event's sessions for the plan: the workshop's schedule file (the format the workshop
service and the chart's ``workshop.schedule`` take, see :mod:`jupyterhub_workshop.schedule`)
turned into blocks of time with a number of users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

import yaml

from ...schedule import Schedule, expected_at
from .errors import PlanError


@dataclass(frozen=True)
class Block:
    start: datetime
    end: datetime
    users: int

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def blocks_of(schedule: Schedule, default_users: int | None, where: str = "schedule") -> list[Block]:
    """Every session of the schedule as a block: its people expected (the session's, the
    schedule's, else ``default_users``), in time order."""
    try:
        first, last = schedule.span()
    except ValueError as e:
        raise PlanError(f"{where}: {e}") from None
    zone = schedule.zone
    since = datetime.combine(first, time(0), zone)
    until = datetime.combine(last + timedelta(days=1), time(0), zone)
    blocks = []
    for occurrence in schedule.occurrences(since, until):
        users = expected_at(schedule, occurrence, default_users if default_users is not None else -1)
        if users < 0:
            raise PlanError(f"{where}: no `expected` people given and no --users")
        # in the workshop's own time zone: the times people read on the timetable
        blocks.append(Block(occurrence.start.astimezone(zone), occurrence.end.astimezone(zone), users))
    for a, b in zip(blocks, blocks[1:]):
        if b.start < a.end:
            raise PlanError(f"{where}: sessions at {a.start.isoformat()} and {b.start.isoformat()} overlap")
    return blocks


def read_schedule(path: str | Path) -> Schedule:
    """A schedule file: YAML or JSON, the mapping :meth:`Schedule.parse` takes."""
    path = Path(path)
    try:
        return Schedule.parse(yaml.safe_load(path.read_text(encoding="utf-8")), where=str(path))
    except yaml.YAMLError as e:
        raise PlanError(f"{path}: not YAML: {e}") from None
    except ValueError as e:
        raise PlanError(str(e)) from None
