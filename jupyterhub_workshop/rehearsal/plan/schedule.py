"""An event's sessions for the plan: the workshop's schedule file (the format the workshop
service and the chart's ``workshop.schedule`` take, see :mod:`jupyterhub_workshop.schedule`)
turned into blocks of time with a number of users."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

import yaml

from ...schedule import SCHEDULE_KEYS, Schedule, expected_at
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


#: The packaged example schedule (``plan --schedule-example`` prints it).
EXAMPLE = Path(__file__).with_name("schedule-example.yaml")

WHAT_IT_HOLDS = (
    "the workshop's timetable, YAML or JSON, e.g.\n"
    "  timeZone: America/Denver\n"
    "  expected: 80\n"
    "  sessions:\n"
    '    - {days: [Mon, Tue, Wed, Thu], start: "09:00", end: "17:00"}\n'
    "(`jupyterhub-workshop plan --schedule-example > schedule.yaml` writes a full example; a Helm "
    "values file with workshop.schedule works too)"
)


def schedule_document(data, where: str) -> tuple[object, str, str | None]:
    """(the schedule mapping, where it is, a note) from a schedule file's content: the
    mapping itself, or the chart's ``workshop: schedule:`` in a Helm values file (noted)."""
    if isinstance(data, Mapping) and "workshop" in data and not set(data) & set(SCHEDULE_KEYS):
        workshop = data["workshop"]
        schedule = workshop.get("schedule") if isinstance(workshop, Mapping) else None
        if not schedule:
            raise PlanError(
                f"{where}: a Helm values file without workshop.schedule; --schedule wants {WHAT_IT_HOLDS}"
            )
        return (
            schedule,
            f"{where}: workshop.schedule",
            f"{where} is a Helm values file: read its workshop.schedule",
        )
    return data, where, None


def read_schedule(path: str | Path, notes: list[str] | None = None) -> Schedule:
    """A schedule file: YAML or JSON, the mapping :meth:`Schedule.parse` takes, or a Helm
    values file holding it as ``workshop.schedule`` (said in ``notes``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path}: no such file. --schedule wants {WHAT_IT_HOLDS}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError(
            f"{path}: cannot read it ({getattr(e, 'strerror', None) or e}). --schedule wants {WHAT_IT_HOLDS}"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PlanError(f"{path}: not YAML: {e}") from None
    if data is None:
        raise PlanError(f"{path}: empty. --schedule wants {WHAT_IT_HOLDS}")
    data, where, note = schedule_document(data, str(path))
    try:
        schedule = Schedule.parse(data, where=where)
    except ValueError as e:
        raise PlanError(str(e)) from None
    if note and notes is not None:
        notes.append(note)
    return schedule
