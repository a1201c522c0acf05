"""Which running servers to stop, and why: the pure decision behind the culling service.

Organizers found nodes running all night because nobody logs out. Three rules stop a server:
it has been idle too long, it has been running too long (max age), or it is night: inside a
nightly window every running server is stopped regardless of activity. A user may opt out for
one night; admins and configured groups (instructors) are exempt from the night cull.

Everything here is a function of its arguments. The service fetches servers and opt-outs from
the hub, passes the clock in, and does the stopping.

All datetimes must be timezone-aware and are compared in UTC: Python compares and subtracts two
datetimes that share a tzinfo by wall clock, which is off by an hour across a DST change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..closing import Closing, stopped_at_closing
from ..times import as_utc, parse_clock_time, time_zone

IDLE = "idle"
NIGHT = "night"
MAX_AGE = "max-age"
CLOSED = "closed"
# Strongest first. When several rules apply, the strongest is reported: the hub has closed is
# final; "it is night" is the reason a user can act on (opt out), whereas idleness would have
# been forgiven by a click.
_PRECEDENCE = (CLOSED, NIGHT, MAX_AGE, IDLE)


def _parse_clock_time(value: str, what: str) -> time:
    return parse_clock_time(value, f"night window {what}")


@dataclass(frozen=True)
class NightWindow:
    """A nightly stretch of local wall-clock time, e.g. 22:00-06:00 in America/Denver.

    Windows are returned as ``(start, end)`` pairs of UTC datetimes, end exclusive.
    """

    start: time  # local wall-clock time the night cull begins
    end: time  # local time it ends; earlier than start when the window crosses midnight
    tz: str  # IANA time zone name

    def __post_init__(self):
        time_zone(self.tz)
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("night window start and end are wall-clock times; give the zone as tz")
        if self.start == self.end:
            raise ValueError(f"night window starts and ends at {self.start:%H:%M}; it needs a duration")

    @classmethod
    def parse(cls, start: str, end: str, tz: str) -> NightWindow:
        """From configuration strings: ``NightWindow.parse("22:00", "06:00", "America/Denver")``."""
        return cls(_parse_clock_time(start, "start"), _parse_clock_time(end, "end"), tz)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)  # zoneinfo caches instances per key

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M} ({self.tz})"

    def next(self, now: datetime) -> tuple[datetime, datetime]:
        """The window containing ``now``, else the next one to start."""
        _, start, end = self._upcoming(now)
        return start, end

    def night_of(self, now: datetime) -> date:
        """The local date on which the current or next window starts.

        It names "tonight" for opt-outs: with a 22:00-06:00 window, an opt-out made at 15:00 and
        the culls at 23:00 and at 02:00 after midnight all refer to the same date.
        """
        day, _, _ = self._upcoming(now)
        return day

    def overlapping(self, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
        """The windows (UTC, in order) that share some time with ``[since, until)``."""
        since, until = as_utc(since, "since"), as_utc(until, "until")
        day = since.astimezone(self.zone).date() - timedelta(days=1)
        last = until.astimezone(self.zone).date()
        found = []
        while day <= last:
            start, end = self._window_starting_on(day)
            if start < until and since < end:
                found.append((start, end))
            day += timedelta(days=1)
        return found

    def _upcoming(self, now: datetime) -> tuple[date, datetime, datetime]:
        now = as_utc(now, "now")
        today = now.astimezone(self.zone).date()
        # A window spans less than a day of wall-clock time, so one that contains now started
        # yesterday or today; if neither is still open, tomorrow's is the next.
        for day in (today - timedelta(days=1), today):
            start, end = self._window_starting_on(day)
            if now < end:
                return day, start, end
        tomorrow = today + timedelta(days=1)
        return (tomorrow, *self._window_starting_on(tomorrow))

    def _window_starting_on(self, day: date) -> tuple[datetime, datetime]:
        end_day = day if self.end > self.start else day + timedelta(days=1)
        # zoneinfo resolves a wall-clock time skipped by spring-forward to the same time on the
        # old offset (02:30 becomes 03:30), and one repeated by fall-back to its first occurrence.
        start = datetime.combine(day, self.start, self.zone)
        end = datetime.combine(end_day, self.end, self.zone)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class CullPolicy:
    idle_timeout: timedelta | None = timedelta(hours=1)  # None or <= 0: no idle culling
    max_age: timedelta | None = None  # None or <= 0: no max age
    night: NightWindow | None = None
    # Members of these groups, and admins when exempt_admins, are exempt from the night cull
    # only: an instructor's forgotten server is still stopped when idle or too old.
    exempt_groups: frozenset[str] = frozenset()
    exempt_admins: bool = True
    warn_before: timedelta = timedelta(minutes=30)  # how long before the night window to warn
    dry_run: bool = False  # carried along for the service; decide() ignores it
    # the hub's closing (closing.py): servers are stopped as CLOSED from then on; staff (admins
    # and staff_groups) may start theirs again afterwards
    closing: Closing | None = None
    staff_groups: frozenset[str] = frozenset()

    def __post_init__(self):
        for name in ("exempt_groups", "staff_groups"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"{name} is a collection of group names, not one string")
            object.__setattr__(self, name, frozenset(getattr(self, name)))


@dataclass(frozen=True)
class ServerInfo:
    user: str
    name: str  # "" for the default server
    admin: bool
    groups: frozenset[str]
    started: datetime | None
    last_activity: datetime | None
    ready: bool  # only ready servers are culled; a pending spawn has had no chance to be used
    profile: str | None = None


@dataclass(frozen=True)
class CullDecision:
    server: ServerInfo
    reason: str  # IDLE, NIGHT or MAX_AGE
    detail: str  # for logs and the admin page, e.g. "idle for 1 h 12 min (limit 1 h)"


def is_staff(admin: bool, groups: Collection[str], policy: CullPolicy) -> bool:
    """Whether a user is workshop staff (an admin, or in a staff group): they may sign in and
    keep a server started after the closing."""
    return admin or not policy.staff_groups.isdisjoint(groups)


def is_exempt(admin: bool, groups: Collection[str], policy: CullPolicy) -> bool:
    """Whether a user is exempt from the night cull (an admin, or in an exempt group)."""
    return (policy.exempt_admins and admin) or not policy.exempt_groups.isdisjoint(groups)


def decide(
    servers: Iterable[ServerInfo], opted_out: Collection[str], policy: CullPolicy, now: datetime
) -> list[CullDecision]:
    """The servers to stop now, each with its strongest reason.

    ``opted_out`` holds the users opted out for ``policy.night.night_of(now)``.
    """
    now = as_utc(now, "now")
    decisions = []
    for server in servers:
        if not server.ready:
            continue
        deadlines = _deadlines(server, server.user in opted_out, policy, now)
        due = [reason for reason in _PRECEDENCE if reason in deadlines and deadlines[reason] <= now]
        if due:
            decisions.append(CullDecision(server, due[0], _detail(due[0], server, policy, now)))
    return decisions


def cull_time(
    server: ServerInfo, opted_out: bool, policy: CullPolicy, now: datetime
) -> tuple[datetime, str] | None:
    """When the server will be stopped if its activity stays as it is, and why; None if never.

    An overdue server is stopped at the next pass, so its time is ``now``; the reason then is
    the one decide() reports.
    """
    now = as_utc(now, "now")
    if not server.ready:
        return None
    deadlines = _deadlines(server, opted_out, policy, now)
    if not deadlines:
        return None
    reason = min(deadlines, key=lambda r: (max(deadlines[r], now), _PRECEDENCE.index(r)))
    return max(deadlines[reason], now), reason


def warning(
    user_servers_running: bool, opted_out: bool, exempt: bool, policy: CullPolicy, now: datetime
) -> str | None:
    """The warning to show a user from ``warn_before`` the night window until it ends, else None.

    The caller shows the opt-out control next to it.
    """
    now = as_utc(now, "now")
    night = policy.night
    if night is None or not user_servers_running or opted_out or exempt:
        return None
    start, end = night.next(now)
    if now < start - policy.warn_before:
        return None
    if now < start:
        return (
            f"Running servers are stopped at {_local_clock(start, night)} ({night.tz}) tonight. "
            "To keep yours running, opt out for tonight."
        )
    return (
        f"Running servers are being stopped for the night, until {_local_clock(end, night)} "
        f"({night.tz}). To keep yours running, opt out for tonight."
    )


def _deadlines(server: ServerInfo, opted_out: bool, policy: CullPolicy, now: datetime) -> dict[str, datetime]:
    """When each applicable rule stops this server if nothing changes; past times are overdue."""
    started, last_activity = _server_times(server)
    deadlines = {}
    closing = policy.closing
    if closing is not None:
        staff = is_staff(server.admin, server.groups, policy)
        # the rule as it will stand at the closing (or now, once past it)
        if stopped_at_closing(closing, staff, started, max(now, closing.at)):
            deadlines[CLOSED] = closing.at
    if policy.night is not None and not is_exempt(server.admin, server.groups, policy):
        start, end = policy.night.next(now)
        if opted_out:  # the opt-out covers this night only; the following one still applies
            start, _ = policy.night.next(end)
        deadlines[NIGHT] = start
    max_age = _positive(policy.max_age)
    if max_age and started:
        deadlines[MAX_AGE] = started + max_age
    idle_timeout = _positive(policy.idle_timeout)
    if idle_timeout and last_activity:
        deadlines[IDLE] = last_activity + idle_timeout
    return deadlines


def _detail(reason: str, server: ServerInfo, policy: CullPolicy, now: datetime) -> str:
    started, last_activity = _server_times(server)
    if reason == CLOSED:
        return f"the hub closed on {policy.closing.local()}"
    if reason == NIGHT:
        return f"night shutdown {policy.night.describe()}"
    if reason == MAX_AGE:
        return f"running for {_duration(now - started)} (limit {_duration(policy.max_age)})"
    return f"idle for {_duration(now - last_activity)} (limit {_duration(policy.idle_timeout)})"


def _server_times(server: ServerInfo) -> tuple[datetime | None, datetime | None]:
    """(started, last activity) in UTC; a server never reported active counts from its start."""
    label = f"server {server.user}/{server.name}"
    started = server.started and as_utc(server.started, f"{label} started")
    last_activity = server.last_activity and as_utc(server.last_activity, f"{label} last_activity")
    return started, last_activity or started


def _positive(limit: timedelta | None) -> timedelta | None:
    return limit if limit is not None and limit > timedelta(0) else None


def _local_clock(moment: datetime, night: NightWindow) -> str:
    return f"{moment.astimezone(night.zone):%H:%M}"


def _duration(span: timedelta) -> str:
    """'1 h 12 min', '45 min', '1 h'; under a minute in seconds."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 1:
        return f"{max(int(span.total_seconds()), 0)} s"
    hours, minutes = divmod(minutes, 60)
    return " ".join(part for part in (hours and f"{hours} h", minutes and f"{minutes} min") if part)
