"""Usage accounting: node-hours from running-server counts, the usage CSV and its totals.

One rule, used by the service (live, from its samples), by ``plan --from-usage`` (after the
event, from the usage export) and by the benchmarks: a cluster that packs nodes full and
removes empty ones runs ``ceil(running servers / users per node)`` nodes, so node-hours are
the integral of that over time.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from .times import as_utc, parse_typed_time

#: A session's fields in the usage export (``usage.csv`` columns, ``usage.json`` keys).
USAGE_COLUMNS = ("user", "server", "profile", "started", "stopped", "duration_seconds", "stop_reason")
#: When the export was taken: the CSV's last column (the same on every row), the JSON's top key.
EXPORTED = "exported"
#: Columns of ``usage.csv``, and of ``plan --from-usage``'s input (``exported`` optional: older
#: exports have no such column).
CSV_COLUMNS = (*USAGE_COLUMNS, EXPORTED)


def nodes_for(running: int, users_per_node: int) -> int:
    """Nodes needed for ``running`` servers packed ``users_per_node`` to a node."""
    if users_per_node < 1:
        raise ValueError("users per node must be at least 1")
    return max(0, math.ceil(running / users_per_node))


class NodeHours:
    """Node-hours of a step series of running-server counts, added up as points arrive.

    Each count holds until the next point; points must come in time order.
    """

    def __init__(self, users_per_node: int):
        nodes_for(0, users_per_node)  # refuses a bad value now, not at the first point
        self.users_per_node = users_per_node
        self.seconds = 0.0
        self.last: tuple[datetime, int] | None = None

    def add(self, at: datetime, running: int) -> None:
        if self.last is not None:
            since, before = self.last
            span = (at - since).total_seconds()
            if span > 0:
                self.seconds += nodes_for(before, self.users_per_node) * span
        self.last = (at, running)

    @classmethod
    def from_samples(cls, samples: Iterable[tuple[datetime, int]], users_per_node: int) -> NodeHours:
        """The meter after ``(time, running servers)`` samples given in any order."""
        meter = cls(users_per_node)
        for at, running in sorted(samples, key=lambda sample: sample[0]):
            meter.add(at, running)
        return meter

    def hold_until(self, until: datetime) -> None:
        """Count the last count as still running at ``until``."""
        if self.last is not None:
            self.add(until, self.last[1])

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0


def split_by_day(start: datetime, stop: datetime, zone: tzinfo) -> Iterator[tuple[date, float]]:
    """``(local date, seconds)`` of the stretch [start, stop) on each day of ``zone`` it
    touches, cut at local midnights (so a night session counts on both days)."""
    # in UTC: Python subtracts two times of one zone by wall clock, an hour off across DST
    start, stop = as_utc(start), as_utc(stop)
    while start < stop:
        day = start.astimezone(zone).date()
        midnight = as_utc(datetime.combine(day + timedelta(days=1), time(), zone))
        cut = min(stop, midnight)
        yield day, (cut - start).total_seconds()
        start = cut


def node_seconds_by_day(
    points: Iterable[tuple[datetime, int]], users_per_node: int, zone: tzinfo
) -> dict[date, float]:
    """:class:`NodeHours`' rule (each count holds until the next point, ``nodes_for`` nodes)
    with its seconds on the local days of ``zone`` they fall on; points in time order. The
    days add up to the meter's total."""
    nodes_for(0, users_per_node)
    days: dict[date, float] = defaultdict(float)
    last = None
    for at, running in points:
        if last is not None and at > last[0]:
            nodes = nodes_for(last[1], users_per_node)
            for day, seconds in split_by_day(last[0], at, zone):
                days[day] += nodes * seconds
        last = (at, running)
    return dict(days)


@dataclass(frozen=True)
class Session:
    """One row of the usage export."""

    user: str
    server: str
    profile: str
    started: datetime
    stopped: datetime | None


def running_steps(sessions: Iterable[Session], until: datetime) -> Iterator[tuple[datetime, int]]:
    """``(time, running servers after it)`` at every start and stop, in time order; a session
    still open stops at ``until``. At the same instant stops come before starts."""
    events = []
    for s in sessions:
        stop = s.stopped or until
        if stop > s.started:
            events += [(s.started, 1), (stop, -1)]
    events.sort()
    running = 0
    for at, delta in events:
        running += delta
        yield at, running


def usage_totals(sessions: list[Session], users_per_node: int, until: datetime | None = None) -> dict:
    """Server-hours, peak concurrent servers and node-hours of the sessions.

    A session still running counts until ``until``: when the export was taken, or else (an
    export older than the ``exported`` column) the latest time in it.
    """
    meter = NodeHours(users_per_node)
    if not sessions:
        return {
            "sessions": 0,
            "users": 0,
            "open_sessions": 0,
            "first": None,
            "last": None,
            "server_hours": 0.0,
            "peak_servers": 0,
            "peak_at": None,
            "node_hours": 0.0,
            "peak_nodes": 0,
        }
    times = [s.started for s in sessions] + [s.stopped for s in sessions if s.stopped]
    end = until or max(times)
    server_seconds = sum(max(0.0, ((s.stopped or end) - s.started).total_seconds()) for s in sessions)
    peak, peak_at = 0, None
    for at, running in running_steps(sessions, end):
        meter.add(at, running)
        if running > peak:
            peak, peak_at = running, at
    return {
        "sessions": len(sessions),
        "users": len({s.user for s in sessions}),
        "open_sessions": sum(s.stopped is None for s in sessions),
        "first": min(times).isoformat(),
        "last": end.isoformat(),
        "server_hours": round(server_seconds / 3600, 4),
        "peak_servers": peak,
        "peak_at": None if peak_at is None else peak_at.isoformat(),
        "node_hours": round(meter.hours, 4),
        "peak_nodes": nodes_for(peak, users_per_node),
    }


@dataclass(frozen=True)
class UsageExport:
    """A usage export as read back: its sessions, and when it was taken (None: not said)."""

    sessions: list[Session]
    exported: datetime | None


def read_usage_export(path: str | Path) -> UsageExport:
    """The service's usage export, CSV or JSON (as ``usage export`` and the admin page write
    them; the format from the content). ValueError names the file and line of what is wrong."""
    with open(path, newline="", encoding="utf-8") as f:
        head = f.read(1)
        while head and head.isspace():
            head = f.read(1)
        f.seek(0)
        if head == "{":
            return _read_json(path, f)
        return _read_csv(path, f)


def read_usage_csv(path: str | Path) -> list[Session]:
    """Sessions from the service's usage export; ValueError names the line of a bad row."""
    return read_usage_export(path).sessions


def _session(where: str, user, server, profile, started, stopped) -> Session:
    try:
        begun = parse_typed_time(started)
        ended = parse_typed_time(stopped) if (stopped or "").strip() else None
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    if ended is not None and ended < begun:
        raise ValueError(f"{where}: stopped before started")
    return Session(str(user), server or "", profile or "", begun, ended)


def _exported(where: str, text) -> datetime | None:
    if text is None or not str(text).strip():
        return None
    try:
        return parse_typed_time(str(text))
    except ValueError as e:
        raise ValueError(f"{where}: {EXPORTED}: {e}") from None


def _read_csv(path, f) -> UsageExport:
    reader = csv.DictReader(f)
    missing = [c for c in ("user", "started", "stopped") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(
            f"{path}:1: not a usage export: no column {', '.join(missing)} (expected {','.join(CSV_COLUMNS)})"
        )
    sessions, exported = [], None
    for row in reader:
        where = f"{path}:{reader.line_num}"
        sessions.append(
            _session(
                where, row["user"], row.get("server"), row.get("profile"), row["started"], row["stopped"]
            )
        )
        # the same on every row; rows of exports taken at different times: the latest
        taken = _exported(where, row.get(EXPORTED))
        if taken is not None and (exported is None or taken > exported):
            exported = taken
    return UsageExport(sessions, exported)


def _read_json(path, f) -> UsageExport:
    try:
        document = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not JSON: {e.msg}") from None
    items = document.get("sessions") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ValueError(f'{path}: not a usage export: expected {{"{EXPORTED}": TIME, "sessions": [...]}}')
    sessions = []
    for number, item in enumerate(items, start=1):
        where = f"{path}: session {number}"
        if not isinstance(item, dict) or "user" not in item or "started" not in item:
            raise ValueError(f"{where}: expected an object with {', '.join(USAGE_COLUMNS)}")
        sessions.append(
            _session(
                where,
                item["user"],
                item.get("server"),
                item.get("profile"),
                item["started"],
                item.get("stopped"),
            )
        )
    return UsageExport(sessions, _exported(str(path), document.get(EXPORTED)))
