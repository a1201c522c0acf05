"""The workshop's timetable, and when to keep capacity warm for it.

One format serves the workshop service (pre-warming before each session), the chart's
``workshop.schedule`` and ``jupyterhub-workshop plan --schedule``::

    timeZone: America/Denver
    from: 2026-07-13          # optional: bounds for sessions given by weekday
    until: 2026-07-16
    expected: 320             # optional: people at once (default: the participant cards)
    sessions:
      - {days: [Mon, Tue, Wed, Thu], start: "09:00", end: "17:00"}
      - {days: [2026-07-17], start: "09:00", end: "12:00"}
      - {days: [Wed], start: "19:00", end: "01:00", expected: 40}   # ends after midnight

Pre-warming: from ``lead`` before each session's start until ``hold`` after it, when arrivals
are in, capacity is kept warm for the people who have not started a server yet (``expected −
running``); outside those stretches, none. Everything here is a pure function of the schedule
and a clock: a clock that jumps (a suspended laptop, NTP) simply gives the answer for the new
time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .times import UTC, aware, parse_clock_time, time_zone

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DEFAULT_LEAD = timedelta(minutes=20)  # nodes take about 5 minutes to boot; people come early
DEFAULT_HOLD = timedelta(minutes=30)  # by then the arrivals are in
SCHEDULE_KEYS = ("timeZone", "from", "until", "expected", "sessions")
SESSION_KEYS = ("days", "start", "end", "expected")


@dataclass(frozen=True)
class Session:
    """Sessions on some dates and/or weekdays, from ``start`` to ``end`` local time (an ``end``
    not after ``start`` is on the next day)."""

    dates: frozenset[date]
    weekdays: frozenset[int]  # 0 = Monday
    start: time
    end: time
    expected: int | None = None  # people at once in this session; None: the schedule's


@dataclass(frozen=True)
class Occurrence:
    """One session on one day, in UTC."""

    start: datetime
    end: datetime
    expected: int | None  # None: the schedule's (or the caller's) default

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class Schedule:
    sessions: tuple[Session, ...]
    tz: str = "UTC"
    first_day: date | None = None  # sessions given by weekday happen from here...
    last_day: date | None = None  # ...to here (both inclusive); None: no bound
    expected: int | None = None  # people at once; None: the caller's default (participant cards)

    @classmethod
    def parse(cls, data: Mapping, where: str = "schedule") -> Schedule:
        """From the mapping above; ValueError naming the entry and what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a mapping with timeZone and sessions")
        unknown = sorted(set(data) - set(SCHEDULE_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {list(SCHEDULE_KEYS)}")
        tz = data.get("timeZone") or "UTC"
        try:
            time_zone(tz)
        except ValueError as e:
            raise ValueError(f"{where}.timeZone: {e}") from None
        first, last = (_date(data.get(key), f"{where}.{key}") for key in ("from", "until"))
        if first and last and last < first:
            raise ValueError(f"{where}: until ({last}) is before from ({first})")
        expected = _people(data.get("expected"), f"{where}.expected")
        entries = data.get("sessions")
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{where}.sessions: expected a list of {{days, start, end}}")
        sessions = tuple(_session(entry, f"{where}.sessions[{i}]") for i, entry in enumerate(entries))
        return cls(sessions, tz, first, last, expected)

    @property
    def zone(self):
        return time_zone(self.tz)

    def _happens(self, session: Session, day: date) -> bool:
        if day in session.dates:
            return True
        in_range = (self.first_day is None or day >= self.first_day) and (
            self.last_day is None or day <= self.last_day
        )
        return in_range and day.weekday() in session.weekdays

    def occurrences(self, since: datetime, until: datetime) -> Iterator[Occurrence]:
        """Every session starting in [since, until), in order of start."""
        since, until = aware(since, "since").astimezone(UTC), aware(until, "until").astimezone(UTC)
        zone = self.zone
        found = []
        day = since.astimezone(zone).date() - timedelta(days=1)
        last = until.astimezone(zone).date() + timedelta(days=1)
        while day <= last:
            for session in self.sessions:
                if self._happens(session, day):
                    start, end = _local_span(day, session, zone)
                    if since <= start < until:
                        found.append(Occurrence(start, end, session.expected))
            day += timedelta(days=1)
        yield from sorted(found, key=lambda occurrence: occurrence.start)

    def span(self) -> tuple[date, date]:
        """The first and last day with a session; ValueError when weekday sessions are unbounded."""
        days = [d for s in self.sessions for d in s.dates]
        if any(s.weekdays for s in self.sessions):
            if self.first_day is None or self.last_day is None:
                raise ValueError("sessions given by weekday need `from` and `until` dates here")
            days += [self.first_day, self.last_day]
        return min(days), max(days)


def _people(value, what: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{what}: {value!r} is not a number of people")
    return value


def _date(value, what: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value  # YAML read it already
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not a date such as 2026-07-14") from None


def _session(entry, where: str) -> Session:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected {{days, start, end}}")
    unknown = sorted(set(entry) - set(SESSION_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {list(SESSION_KEYS)}")
    days = entry.get("days")
    if not isinstance(days, list) or not days:
        raise ValueError(f"{where}.days: expected a list of weekdays (Mon..Sun) and/or dates (2026-07-14)")
    dates, weekdays = set(), set()
    for day in days:
        if isinstance(day, str) and day in WEEKDAYS:
            weekdays.add(WEEKDAYS.index(day))
        else:
            try:
                dates.add(_date(day, f"{where}.days"))
            except ValueError:
                raise ValueError(
                    f"{where}.days: {day!r} is neither a weekday ({', '.join(WEEKDAYS)}) nor a date (2026-07-14)"
                ) from None
    start = parse_clock_time(entry.get("start"), f"{where}.start")
    end = parse_clock_time(entry.get("end"), f"{where}.end")
    if start == end:
        raise ValueError(f"{where}: starts and ends at {start:%H:%M}; a session needs a duration")
    return Session(
        frozenset(dates), frozenset(weekdays), start, end, _people(entry.get("expected"), f"{where}.expected")
    )


def _local_span(day: date, session: Session, zone) -> tuple[datetime, datetime]:
    # zoneinfo reads a wall-clock time skipped by spring-forward on the old offset (02:30
    # becomes 03:30) and one repeated by fall-back as its first occurrence
    end_day = day if session.end > session.start else day + timedelta(days=1)
    start = datetime.combine(day, session.start, zone)
    end = datetime.combine(end_day, session.end, zone)
    return start.astimezone(UTC), end.astimezone(UTC)


# --- pre-warming ------------------------------------------------------------------------------


def _session_prewarming(
    schedule: Schedule, now: datetime, lead: timedelta, hold: timedelta
) -> Occurrence | None:
    now = aware(now, "now").astimezone(UTC)
    for occurrence in schedule.occurrences(now - hold, now + lead + timedelta(seconds=1)):
        if occurrence.start - lead <= now < occurrence.start + hold:
            return occurrence
    return None


def prewarm_period(
    schedule: Schedule, now: datetime, lead: timedelta = DEFAULT_LEAD, hold: timedelta = DEFAULT_HOLD
) -> tuple[datetime, datetime] | None:
    """The pre-warm stretch (``start − lead`` to ``start + hold``, UTC) that holds ``now``, or None."""
    occurrence = _session_prewarming(schedule, now, lead, hold)
    return None if occurrence is None else (occurrence.start - lead, occurrence.start + hold)


def next_prewarm(
    schedule: Schedule,
    now: datetime,
    lead: timedelta = DEFAULT_LEAD,
    hold: timedelta = DEFAULT_HOLD,
    horizon: timedelta = timedelta(days=14),
) -> tuple[datetime, datetime] | None:
    """The current pre-warm stretch, else the next one within ``horizon``; None if there is none."""
    current = prewarm_period(schedule, now, lead, hold)
    if current is not None:
        return current
    now = aware(now, "now").astimezone(UTC)
    for occurrence in schedule.occurrences(now + lead, now + lead + horizon):
        return occurrence.start - lead, occurrence.start + hold
    return None


def warm_users(
    schedule: Schedule,
    now: datetime,
    expected: int,
    running: int,
    lead: timedelta = DEFAULT_LEAD,
    hold: timedelta = DEFAULT_HOLD,
) -> int:
    """How many people to keep capacity warm for now: those expected (the session's number, else
    the schedule's, else ``expected``) who have no server yet, inside a pre-warm stretch; none
    outside."""
    occurrence = _session_prewarming(schedule, now, lead, hold)
    if occurrence is None:
        return 0
    return max(0, expected_at(schedule, occurrence, expected) - max(0, running))


def expected_at(schedule: Schedule, occurrence: Occurrence, default: int) -> int:
    """People expected at once in this session."""
    for value in (occurrence.expected, schedule.expected):
        if value is not None:
            return value
    return default


def placeholders_for(users: int, users_per_node: int) -> int:
    """Placeholder pods for ``users`` people, each placeholder the size of a node's users.

    Node-sized placeholders make the autoscaler add whole nodes (one per placeholder) and never
    strand a lone small placeholder on a node of its own; a user's pod preempts one and has a
    whole warm node for itself and the next ``users_per_node − 1`` arrivals.
    """
    if users_per_node < 1:
        raise ValueError("users per node must be at least 1")
    return math.ceil(max(0, users) / users_per_node)
