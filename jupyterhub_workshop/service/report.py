"""The final report for the sponsors: one printable page, and its day-by-day table as CSV.

``jupyterhub-workshop report --db URL --out report.html`` (after the event, from the usage
database alone) and ``/services/workshop/report.html`` (staff, live) draw the same page.

Every number comes from the usage database through the rules the admin page and ``usage
export`` use, each with one home:

- sessions, their hours and users: the store's sessions (:meth:`.UsageStore.iter_sessions`,
  the rows of ``usage.csv``); a session still open counts until the report's end, the latest
  time the database records (so the CLI and the page agree on the same database);
- session lengths: :meth:`.UsageStore.duration_histogram` with the metrics' buckets, drawn as
  the admin page's bar chart;
- peak concurrent servers: the samples, each standing for its peak since the previous sample
  (:func:`.store.sample_peak`, what the admin page's chart draws);
- node-hours: ``usage_accounting``'s rule (``ceil(running / users per node)`` over time), in
  total from :meth:`.UsageStore.node_seconds` (the admin page's meter) and per day from
  :func:`~jupyterhub_workshop.usage_accounting.node_seconds_by_day` (the same rule cut at
  local midnights; the days add up to the total);
- pre-warm node-hours (with a schedule): the service's own decision
  (:func:`~jupyterhub_workshop.schedule.warm_users`, :func:`~jupyterhub_workshop.schedule.placeholders_for`)
  replayed over the recorded running servers;
- culls by reason: :meth:`.UsageStore.culls_by_reason` (sessions a cull closed, once each);
- cards: :mod:`.attendance` (the admin page's table), from the hub's users on the page and
  from the usage database with ``--accounts`` on the command line (a card counts as signed in there
  when its user started a server).

:func:`reduce_report` is pure (data and parameters in, a :class:`Report` out);
:func:`gather` is the IO around it; :func:`render_html` and :func:`report_csv` present it.
"""

from __future__ import annotations

import bisect
import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from .. import charts
from ..schedule import DEFAULT_HOLD, DEFAULT_LEAD, Schedule, placeholders_for, warm_users
from ..usage_accounting import Session, node_seconds_by_day, split_by_day, usage_totals
from .attendance import AttendanceRow, CardUse, attendance, card_uses
from .metrics import SESSION_BUCKETS
from .series import bucket_peaks
from .store import CULL_REASONS, SampleRow, SessionRow, UsageStore, sample_peak

TEMPLATES = Path(__file__).parent / "templates"
CSV_COLUMNS = (
    "date",
    "users",
    "sessions_started",
    "session_hours",
    "peak_servers",
    "node_hours",
    *(f"culls_{reason}" for reason in CULL_REASONS),
)


@dataclass(frozen=True)
class DayRow:
    """One local day of the event."""

    day: date
    users: int  # distinct users with a session on this day
    sessions: int  # sessions started on this day
    session_hours: float  # the part of every session that fell on this day
    peak_servers: int | None  # None: no sample on this day
    node_hours: float | None  # None: users per node not set
    culls: dict[str, int]  # sessions a cull closed on this day, by reason


@dataclass(frozen=True)
class Report:
    title: str
    zone: str
    start: datetime | None  # the first recorded time (a session's start or a sample)
    end: datetime | None  # the last: open sessions count until here
    days: list[DayRow]
    users: int
    sessions: int
    open_sessions: int
    session_hours: float
    median_minutes: float | None  # of finished sessions
    durations: list[tuple[float, int]]  # (upper bound in seconds, finished sessions)
    users_per_node: int
    node_hours: float | None
    prewarm_node_hours: float | None  # None: no schedule (or no users per node)
    price_per_node_hour: float
    currency: str
    culls: dict[str, int]
    cards: list[AttendanceRow] | None
    cards_note: str  # where the card counts come from, or why there are none
    schedule_span: tuple[date, date] | None = None
    downloaders: int = 0  # people who asked for their home as an archive (the closing banner's link)
    running_points: list[tuple[datetime, int]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing was recorded: no session and no sample."""
        return self.sessions == 0 and not self.running_points

    @property
    def total_node_hours(self) -> float | None:
        if self.node_hours is None:
            return None
        return self.node_hours + (self.prewarm_node_hours or 0.0)

    @property
    def cost(self) -> float | None:
        total = self.total_node_hours
        if total is None or not self.price_per_node_hour:
            return None
        return total * self.price_per_node_hour

    @property
    def cost_per_user(self) -> float | None:
        cost = self.cost
        return None if cost is None or not self.users else cost / self.users

    @property
    def culls_total(self) -> int:
        return sum(self.culls.values())


def records_end(sessions: Sequence[SessionRow], samples: Sequence[SampleRow]) -> datetime | None:
    """The latest time the database records: a start, a stop or a sample."""
    times = (
        [s.started for s in sessions] + [s.stopped for s in sessions if s.stopped] + [s.at for s in samples]
    )
    return max(times, default=None)


def prewarm_node_seconds(
    schedule: Schedule,
    samples: Sequence[SampleRow],
    users_per_node: int,
    expected: int,
    since: datetime,
    until: datetime,
    lead: timedelta = DEFAULT_LEAD,
    hold: timedelta = DEFAULT_HOLD,
) -> dict[date, float]:
    """Node-seconds of pre-warm placeholders per local day (the schedule's zone): at every
    moment of each pre-warm stretch in [since, until), ``placeholders_for(warm_users(...))`` as
    the service decides it, with the running servers of the latest sample before that moment
    (none before the first), one node per placeholder."""
    zone = schedule.zone
    ordered = sorted(samples, key=lambda s: s.at)
    times = [s.at for s in ordered]
    days: dict[date, float] = defaultdict(float)
    for occurrence in schedule.occurrences(since - hold, until + lead):
        stretch_start = max(occurrence.start - lead, since)
        stretch_end = min(occurrence.start + hold, until)
        if stretch_end <= stretch_start:
            continue
        # the samples inside the stretch cut it into steps (found by bisection: a long record
        # is not scanned once per stretch)
        inside = times[bisect.bisect_right(times, stretch_start) : bisect.bisect_left(times, stretch_end)]
        cuts = [stretch_start, *inside, stretch_end]
        for left, right in zip(cuts, cuts[1:]):
            latest = bisect.bisect_right(times, left) - 1
            running = ordered[latest].running_servers if latest >= 0 else 0
            wanted = placeholders_for(
                warm_users(schedule, left, expected, running, lead, hold), users_per_node
            )
            for day, seconds in split_by_day(left, right, zone):
                days[day] += wanted * seconds
    return dict(days)


def reduce_report(
    sessions: Sequence[SessionRow],
    samples: Sequence[SampleRow],
    *,
    durations: list[tuple[float, int]],
    culls: dict[str, int],
    node_seconds: float | None,
    zone: str = "UTC",
    title: str = "",
    users_per_node: int = 0,
    price_per_node_hour: float = 0.0,
    currency: str = "USD",
    schedule: Schedule | None = None,
    expected: int = 0,
    lead: timedelta = DEFAULT_LEAD,
    hold: timedelta = DEFAULT_HOLD,
    cards: Sequence[CardUse] | None = None,
    cards_note: str = "",
    downloaders: int = 0,
) -> Report:
    """The report's numbers from the database's rows and the store's own reductions
    (``durations``, ``culls``, ``node_seconds``: what the admin page shows)."""
    tz = ZoneInfo(zone)
    end = records_end(sessions, samples)
    starts = [s.started for s in sessions] + [s.at for s in samples]
    start = min(starts, default=None)

    day_users: dict[date, set[str]] = defaultdict(set)
    day_started: dict[date, int] = defaultdict(int)
    day_seconds: dict[date, float] = defaultdict(float)
    day_culls: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CULL_REASONS, 0))
    finished_minutes = []
    for s in sessions:
        stop = s.stopped or end
        day_started[s.started.astimezone(tz).date()] += 1
        day_users[s.started.astimezone(tz).date()].add(s.user)
        for day, seconds in split_by_day(s.started, stop, tz):
            day_users[day].add(s.user)
            day_seconds[day] += seconds
        if s.stopped is not None:
            finished_minutes.append((s.stopped - s.started).total_seconds() / 60)
            if s.stop_reason in CULL_REASONS:
                day_culls[s.stopped.astimezone(tz).date()][s.stop_reason] += 1
    day_peaks: dict[date, int] = {}
    for sample in samples:
        day = sample.at.astimezone(tz).date()
        day_peaks[day] = max(day_peaks.get(day, 0), sample_peak(sample)[1])
    ordered = sorted(samples, key=lambda s: s.at)
    day_nodes = (
        node_seconds_by_day(((s.at, s.running_servers) for s in ordered), users_per_node, tz)
        if users_per_node > 0
        else {}
    )
    prewarm_days = None
    if schedule is not None and users_per_node > 0 and start is not None:
        prewarm_days = prewarm_node_seconds(
            schedule,
            samples,
            users_per_node,
            expected,
            datetime.combine(start.astimezone(tz).date(), datetime.min.time(), tz),
            end,
            lead,
            hold,
        )

    days = []
    if start is not None:
        day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
        while day <= last:
            days.append(
                DayRow(
                    day=day,
                    users=len(day_users.get(day, ())),
                    sessions=day_started.get(day, 0),
                    session_hours=day_seconds.get(day, 0.0) / 3600,
                    peak_servers=day_peaks.get(day),
                    node_hours=day_nodes.get(day, 0.0) / 3600 if users_per_node > 0 else None,
                    culls=dict(day_culls[day]) if day in day_culls else dict.fromkeys(CULL_REASONS, 0),
                )
            )
            day += timedelta(days=1)
    # the totals by the rule `plan --from-usage` reads a usage export with (open sessions until end)
    totals = usage_totals(
        [Session(s.user, s.server, s.profile or "", s.started, s.stopped) for s in sessions],
        max(users_per_node, 1),
        until=end,
    )
    span = None
    if schedule is not None:
        try:
            span = schedule.span()
        except ValueError:  # weekday sessions without from/until: no dates to show
            span = None
    return Report(
        title=title,
        zone=zone,
        start=start,
        end=end,
        days=days,
        users=totals["users"],
        sessions=totals["sessions"],
        open_sessions=totals["open_sessions"],
        session_hours=sum(day_seconds.values()) / 3600,  # the days' parts: totals["server_hours"] unrounded
        median_minutes=statistics.median(finished_minutes) if finished_minutes else None,
        durations=list(durations),
        users_per_node=users_per_node,
        node_hours=None if node_seconds is None else node_seconds / 3600,
        prewarm_node_hours=None if prewarm_days is None else sum(prewarm_days.values()) / 3600,
        price_per_node_hour=price_per_node_hour,
        currency=currency,
        culls={reason: culls.get(reason, 0) for reason in CULL_REASONS},
        cards=attendance(cards) if cards is not None else None,
        cards_note=cards_note,
        schedule_span=span,
        downloaders=downloaders,
        running_points=[(s.at, sample_peak(s)[1]) for s in ordered],
    )


def cards_from_sessions(accounts: Iterable, sessions: Sequence[SessionRow]) -> list[CardUse]:
    """Card uses when the hub is not asked (after the event): a card is used when its user
    started a server, first at their first session's start."""
    first: dict[str, datetime] = {}
    for s in sessions:
        if s.user not in first or s.started < first[s.user]:
            first[s.user] = s.started
    users = [
        {"name": name, "created": at.isoformat(), "last_activity": at.isoformat()}
        for name, at in first.items()
    ]
    return card_uses(accounts, users)


def gather(
    store: UsageStore,
    *,
    zone: str = "UTC",
    title: str = "",
    users_per_node: int = 0,
    price_per_node_hour: float = 0.0,
    currency: str = "USD",
    schedule: Schedule | None = None,
    expected: int | None = None,
    lead: timedelta = DEFAULT_LEAD,
    hold: timedelta = DEFAULT_HOLD,
    accounts=None,
    cards: Sequence[CardUse] | None = None,
    cards_note: str = "",
) -> Report:
    """Read the store and reduce it (the IO around :func:`reduce_report`). ``accounts``: the
    accounts file's cards, counted from the sessions (:func:`cards_from_sessions`) unless
    ``cards`` (from the hub) are given. ``expected`` people for pre-warm: default the
    participant cards not revoked, else 0."""
    sessions = list(store.iter_sessions())
    samples = store.samples()
    if cards is None and accounts is not None:
        accounts = list(accounts)
        cards = cards_from_sessions(accounts, sessions)
        cards_note = (
            cards_note
            or "From the usage database, a card counts as signed in once its user started a server "
            "(a sign-in without a server leaves no record there)."
        )
    if expected is None:
        expected = sum(1 for a in accounts or () if a.role == "participant" and not a.revoked)
    return reduce_report(
        sessions,
        samples,
        durations=store.duration_histogram(SESSION_BUCKETS),
        culls=store.culls_by_reason(),
        node_seconds=store.node_seconds(users_per_node).seconds if users_per_node > 0 else None,
        zone=zone,
        title=title,
        users_per_node=users_per_node,
        price_per_node_hour=price_per_node_hour,
        currency=currency,
        schedule=schedule,
        expected=expected,
        lead=lead,
        hold=hold,
        cards=cards,
        cards_note=cards_note,
        downloaders=store.downloaders(),
    )


# --- presentation ---------------------------------------------------------------------------


def hours_text(hours: float) -> str:
    """'12 h 25 min', '45 min', '0 min'."""
    minutes = round(hours * 60)
    whole, rest = divmod(minutes, 60)
    if not whole:
        return f"{rest} min"
    return f"{whole} h {rest} min" if rest else f"{whole} h"


def report_csv(report: Report) -> str:
    """The day-by-day table: a line per local day, numbers as plain decimals (hours to 4
    places), empty cells where a number is not known."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.days:
        writer.writerow(
            (
                row.day.isoformat(),
                row.users,
                row.sessions,
                f"{row.session_hours:.4f}",
                "" if row.peak_servers is None else row.peak_servers,
                "" if row.node_hours is None else f"{row.node_hours:.4f}",
                *(row.culls.get(reason, 0) for reason in CULL_REASONS),
            )
        )
    return buffer.getvalue()


def render_html(report: Report, csv_name: str = "report.csv", generated: datetime | None = None) -> str:
    """The one-page report (a standalone HTML document with its print CSS)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    tz = ZoneInfo(report.zone)
    running_chart = charts.line_chart(
        "Running servers", [(at.astimezone(tz), value) for at, value in _thin(report.running_points)]
    )
    duration_chart = charts.bar_chart("Finished sessions by length", charts.duration_bars(report.durations))
    return env.get_template("workshop-report.html").render(
        r=report,
        local=lambda moment: moment.astimezone(tz).strftime("%a %d %b %Y %H:%M") if moment else "",
        hours=hours_text,
        money=lambda value: f"{value:,.2f} {report.currency}",
        csv_name=csv_name,
        generated=(generated or datetime.now(UTC)).astimezone(tz).strftime("%a %d %b %Y %H:%M"),
        running_chart=running_chart,
        duration_chart=duration_chart,
        reasons=CULL_REASONS,
    )


def _thin(points: list[tuple[datetime, int]], slices: int = 300) -> list[tuple[datetime, int]]:
    """At most about ``slices`` points for the chart, each slice its highest (as the admin page's
    chart reduces a long record)."""
    if len(points) <= slices:
        return points
    reduced = bucket_peaks(((at, (value,)) for at, value in points), points[0][0], points[-1][0], slices)
    return [(at, values[0]) for at, values in reduced]


# --- command line: `jupyterhub-workshop report` ---------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument(
        "--db",
        required=True,
        help="SQLAlchemy URL of the service database, e.g. sqlite:///workshop-usage.sqlite",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the report's HTML file; the day-by-day CSV is written beside it (same name, .csv)",
    )
    parser.add_argument(
        "--schedule",
        type=Path,
        help="the workshop's schedule (YAML or JSON, as the service and workshop.schedule take it): "
        "its dates, its time zone and, with --users-per-node, the pre-warm node-hours",
    )
    parser.add_argument(
        "--accounts",
        type=Path,
        help="the accounts file (cards issued per role, signed in = its user started a server; its title)",
    )
    parser.add_argument("--title", default=None, help="the report's title (default: the cards' title)")
    parser.add_argument(
        "--timezone", default=None, help="IANA zone of the days (default: the schedule's, else UTC)"
    )
    parser.add_argument(
        "--users-per-node", type=int, default=0, help="users on one node, as the service's users_per_node"
    )
    parser.add_argument("--price-per-node-hour", type=float, default=0.0, help="price of one node-hour")
    parser.add_argument(
        "--currency",
        default="USD",
        help="the currency of --price-per-node-hour, as the service's currency",
    )
    parser.add_argument(
        "--prewarm-lead",
        type=float,
        default=DEFAULT_LEAD.total_seconds() / 60,
        help="minutes before each session the service kept nodes warm (its prewarm_lead)",
    )
    parser.add_argument(
        "--prewarm-hold",
        type=float,
        default=DEFAULT_HOLD.total_seconds() / 60,
        help="minutes after each session's start it kept them (its prewarm_hold)",
    )


def run(args) -> int:
    from ..files import write_atomically
    from ..login.accounts import load_accounts
    from ..rehearsal.plan.schedule import read_schedule
    from ..times import time_zone
    from .store import normalize_url

    if args.users_per_node < 0 or args.price_per_node_hour < 0:
        raise ValueError("--users-per-node and --price-per-node-hour cannot be negative")
    parsed = normalize_url(args.db)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if (
            database not in ("", ":memory:")
            and not database.startswith("file:")
            and not Path(database).exists()
        ):
            raise FileNotFoundError(f"no usage database at {database}")
    schedule = read_schedule(args.schedule) if args.schedule else None
    book = load_accounts(args.accounts) if args.accounts else None
    zone = args.timezone or (schedule.tz if schedule else "UTC")
    time_zone(zone)
    store = UsageStore(parsed)
    try:
        report = gather(
            store,
            zone=zone,
            title=args.title if args.title is not None else (book.title if book else ""),
            users_per_node=args.users_per_node,
            price_per_node_hour=args.price_per_node_hour,
            currency=args.currency,
            schedule=schedule,
            lead=timedelta(minutes=args.prewarm_lead),
            hold=timedelta(minutes=args.prewarm_hold),
            accounts=book.values() if book is not None else None,
            cards_note="" if book is not None else "Cards: give --accounts to count them.",
        )
    finally:
        store.close()
    out = Path(args.out)
    csv_path = out.with_suffix(".csv")
    # a report for sponsors, not a secret: readable like any document the organizer writes
    write_atomically(csv_path, report_csv(report), mode=0o644)
    write_atomically(out, render_html(report, csv_path.name), mode=0o644)
    state = "no usage recorded" if report.empty else f"{report.sessions} sessions, {report.users} people"
    print(f"{out} and {csv_path}: {state}")
    return 0
