"""The workshop service's pages and exports (tornado, authenticated through the hub).

- ``/``: admins and ``staff_groups`` see the admin page (each server's memory and CPU, by user
  or with ``?sort=memory`` nearest its memory limit first; with pre-warm: the schedule, the next
  stretch, the placeholders and their last change; export links for today and the schedule's
  days); everyone else their opt-out page (their servers running, starting or stopping)
- ``POST /opt-out``: "keep my server tonight" (XSRF-checked)
- ``/usage.csv``, ``/usage.json``: session export, streamed (staff only); ``start``/``end`` as typed
- ``/attendance.csv``: a line per login card, signed in or not (staff only)
- ``/report.html``, ``/report.csv``: the final report and its day-by-day table (staff only)
- ``/download``: the closing banner's link, counted, then on to the user's server's archive
- ``/metrics``: Prometheus text

The pages are live: each view asks the hub (through the service's :class:`.HubAPI`) for the
servers running now, bounded in time (:data:`LIVE_TIMEOUT`) and size (:data:`LIVE_USERS`).
What comes from the service's last pass (the charts, node-hours, or the servers when the hub
does not answer in time) is shown "as of" that pass. Errors (a participant opening a staff
page, a bad ``start``) are the hub's own error page, with who is signed in and Logout.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from .. import charts
from ..board import (
    DEFAULT_RESTARTED,
    MAX_TEXT,
    RESTARTED,
    BoardReader,
    Restart,
    banner,
    expiry,
    stop_history,
    update_board,
)
from ..login.accounts import AccountBook, AccountsFileError, load_accounts
from ..schedule import Schedule
from ..times import local_days, now_utc, parse_typed_time, typed_time
from . import report
from .attendance import attendance, attendance_csv, card_uses
from .culler import server_info
from .hub_api import PAGINATION, HubAPIError
from .metrics import SESSION_BUCKETS
from .policy import ServerInfo, cull_time, is_exempt, warning
from .prewarm import admin_view as prewarm_view
from .resources import (
    NEAR_LIMIT,
    Resources,
    Usage,
    count_near_limit,
    cpu_text,
    memory_order,
    memory_text,
    near_limit,
)
from .usage import sessions_csv, sessions_json

TEMPLATES = Path(__file__).parent / "templates"
CHART_POINTS = 300  # about one per pixel of a chart: any longer record is reduced to its peaks
LIVE_TIMEOUT = 5.0  # seconds a page waits for the hub before it shows the service's last pass
LIVE_USERS = 1000  # users with servers a page lists (five of the hub's pages); beyond, it says how many more
ATTENDANCE_USERS = 10000  # hub users read for attendance; a hub with more gets no attendance
ATTENDANCE_TIMEOUT = 20.0  # seconds attendance.csv waits for the hub's users


def _time_arg(handler: web.RequestHandler, name: str) -> datetime | None:
    value = handler.get_argument(name, "")
    if not value:
        return None
    # a "+" typed into an address arrives as a space (form encoding): before an offset, it was one
    value = re.sub(r" (\d\d:?\d\d)$", r"+\1", value)
    try:
        return parse_typed_time(value)
    except ValueError as e:
        raise web.HTTPError(400, f"{name}: {e}") from None


@dataclass(frozen=True)
class ExportRange:
    """A stretch of whole days the admin page offers to export, its times as a person types them."""

    label: str
    start: str
    end: str

    @property
    def query(self) -> str:
        return urlencode({"start": self.start, "end": self.end}, safe=":")


def export_ranges(now: datetime, zone, schedule: Schedule | None = None) -> list[ExportRange]:
    """Today in the workshop's ``zone``; and the schedule's days, first to last, in its own zone
    (unless they are just today, or its weekday sessions have no end)."""

    def days(first: date, last: date) -> str:
        if first == last:
            return f"{first:%a %d %b}"
        return f"{first:%d %b} – {last:%d %b %Y}" if first.year == last.year else f"{first} – {last}"

    today = now.astimezone(zone).date()
    spans = [("Today", today, today, zone)]
    try:
        first, last = schedule.span() if schedule else (None, None)
    except ValueError:  # sessions by weekday without from/until
        first = last = None
    if first and (first, last) != (today, today):
        spans.append(("The workshop's schedule", first, last, schedule.zone))
    return [
        ExportRange(f"{label}, {days(first, last)}", *(typed_time(t) for t in local_days(first, last, z)))
        for label, first, last, z in spans
    ]


@dataclass
class Listing:
    """Hub users, as far as a bounded listing went: ``total`` is the hub's count of all that
    matched (None if it did not say)."""

    users: list[dict] = field(default_factory=list)
    total: int | None = None

    @property
    def more(self) -> int:
        return max(0, (self.total or 0) - len(self.users))


async def list_users(hub, limit: int, state: str = "") -> Listing:
    """Up to ``limit`` hub users (``state``: "active", "ready" or "" for all), page by page."""
    listing = Listing()
    offset = 0
    while len(listing.users) < limit:
        query = {"offset": offset, "limit": min(hub.page_size, limit - len(listing.users))}
        if state:
            query["state"] = state
        status, page = await hub.request("GET", f"/users?{urlencode(query)}", accept=PAGINATION)
        if status != 200:
            raise HubAPIError(status, "listing users")
        if not isinstance(page, dict):  # a hub without pagination: everything at once
            listing.users.extend(page[: limit - len(listing.users)])
            listing.total = len(page)
            break
        listing.users.extend(page["items"])
        pagination = page.get("_pagination") or {}
        listing.total = pagination.get("total", listing.total)
        following = pagination.get("next")
        if not following or not page["items"]:
            break
        offset = following["offset"]
    return listing


@dataclass(frozen=True)
class ServerRow:
    """A line of the admin page's table of servers."""

    user: str
    name: str
    profile: str | None
    started: datetime | None
    last_activity: datetime | None
    state: str  # "running", "starting", "stopping"
    stop: tuple[datetime, str] | None  # when it will be stopped, and why
    kept_tonight: bool
    usage: Usage | None = None  # memory and CPU, when the service reads them
    restart: Restart | None = None  # the cluster restarted it in place during this run (the board)

    @property
    def restart_text(self) -> str:
        """The restart as the admin page says it, e.g. "restarted: ran out of memory (×2)"."""
        if self.restart is None:
            return ""
        times = f" (×{self.restart.count})" if self.restart.count > 1 else ""
        return f"restarted: {RESTARTED.get(self.restart.reason, DEFAULT_RESTARTED)}{times}"


def with_restarts(rows: list[ServerRow], restarts: dict[str, Restart]) -> list[ServerRow]:
    """The rows with the in-place restart the hub noted of each server's current run (a notice
    of an earlier run of that server, or of another server of the user, is not this row's).
    Staff see it as long as the server runs; the participant, for restart_notice_minutes."""

    def of(row: ServerRow) -> Restart | None:
        restart = restarts.get(row.user)
        if restart is None or restart.server != row.name:
            return None
        return restart if row.started is None or restart.at >= row.started else None

    return [replace(row, restart=of(row)) for row in rows] if restarts else rows


def with_usage(rows: list[ServerRow], resources: Resources | None, sort: str = "") -> list[ServerRow]:
    """The rows with each server's memory and CPU; ``sort="memory"``: the most pressed first."""
    if resources is not None:
        rows = [replace(r, usage=resources.usage.get((r.user, r.name))) for r in rows]
    if sort == "memory":
        rows = sorted(rows, key=lambda r: memory_order(r.usage))  # stable: by user within a tie
    return rows


def server_row(info: ServerInfo, kept: bool, policy, now: datetime, pending: str | None = None) -> ServerRow:
    """A table row: a ready server with when it will be stopped, else starting or stopping."""
    if info.ready:
        state, stop = "running", cull_time(info, kept, policy, now)
    else:
        state, stop = ("stopping" if pending == "stop" else "starting"), None
    return ServerRow(info.user, info.name, info.profile, info.started, info.last_activity, state, stop, kept)


def server_rows(users, opted_out, policy, now: datetime) -> list[ServerRow]:
    """Table rows for the servers of hub user models (running, and starting or stopping)."""
    rows = [
        server_row(
            server_info(user, name, server), user["name"] in opted_out, policy, now, server.get("pending")
        )
        for user in users
        for name, server in (user.get("servers") or {}).items()
    ]
    return sorted(rows, key=lambda r: (r.user, r.name))


class AccountsCache:
    """The accounts file, read again only when it changes (as the authenticator does)."""

    def __init__(self, path: str):
        self.path = path
        self._signature: tuple | None = None
        self._book: AccountBook | None = None

    def load(self) -> AccountBook:
        st = os.stat(self.path)
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        if signature != self._signature:
            self._book, self._signature = load_accounts(self.path), signature
        return self._book


class ServiceHandler(HubOAuthenticated, web.RequestHandler):
    @property
    def service(self):
        return self.settings["workshop_service"]

    @property
    def hub(self):
        return self.service.hub

    def is_staff(self, user: dict) -> bool:
        return bool(user.get("admin")) or bool(set(user.get("groups") or ()) & set(self.service.staff_groups))

    def require_staff(self) -> dict:
        user = self.current_user
        if not self.is_staff(user):
            raise web.HTTPError(403, "Only workshop staff may open this page.")
        return user

    @property
    def zone(self):
        return ZoneInfo(self.service.timezone) if self.service.timezone else UTC

    def local(self, moment: datetime | None) -> str:
        """Day and time in the workshop's zone, never split across lines (a no-break space)."""
        return moment.astimezone(self.zone).strftime("%a\u00a0%H:%M") if moment else ""

    def clock(self, moment: datetime | None) -> str:
        """HH:MM:SS in the workshop's time zone: the "as of" of what is not live."""
        return moment.astimezone(self.zone).strftime("%H:%M:%S") if moment else ""

    def last_pass(self) -> datetime | None:
        """When the service last sampled the hub (the end of its last pass)."""
        span = self.service.store.sample_span()
        return span[1] if span else None

    def write_error(self, status_code: int, **kwargs) -> None:
        """The hub's own error page, saying what was wrong (a bad ``start``, no access)."""
        error = kwargs.get("exc_info", (None, None))[1]
        message = error.log_message if isinstance(error, web.HTTPError) and status_code < 500 else ""
        try:
            user = self.current_user
        except Exception:
            user = None
        try:
            page = self.render_string_page(
                "workshop-error.html",
                user=user,
                status_code=status_code,
                status_message=self._reason,
                message=message or "",
            )
        except Exception:
            self.service.log.exception("Rendering the error page failed")
            page = (
                f"<html><title>{status_code}: {escape(self._reason)}</title><body><h1>{status_code}: "
                f"{escape(self._reason)}</h1><p>{escape(message or '')}</p></body></html>"
            )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page)

    def render_string_page(self, name: str, user: dict | None, **ns) -> str:
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        hub_prefix = base + "hub/"
        xsrf = self.xsrf_token.decode("ascii")
        namespace = dict(
            base_url=hub_prefix,
            prefix=base,
            static_url=lambda path, include_version=True: f"{hub_prefix}static/{path}",
            user=type("U", (), {"name": user["name"], "json_escaped_name": user["name"]})() if user else None,
            login_url=f"{hub_prefix}login",
            logout_url=f"{hub_prefix}logout",
            services=[],
            parsed_scopes=set(),
            version_hash="",
            no_spawner_check=True,
            announcement=self.announcement(user),
            xsrf_token=xsrf,
            xsrf=xsrf,
            service_prefix=self.settings["service_prefix"],
            local=self.local,
            clock=self.clock,
            service=self.service,
            zone_name=self.service.timezone or "UTC",
        )
        namespace.update(ns)
        return self.settings["jinja_env"].get_template(name).render(**namespace)

    def announcement(self, user: dict | None) -> str:
        """The staff's announcements and the closing banner on the service's pages too (they
        use the hub's page template), as on the hub's."""
        now = now_utc()
        reader = self.settings["board"]
        parts = [banner(reader.read(), now)] if reader is not None else []
        closing = self.service.policy.closing
        if closing is not None and closing.announced(now):
            parts.append(closing.banner(f"{self.settings['service_prefix']}download" if user else None))
        return "<br>".join(part for part in parts if part)

    def board_view(self) -> dict:
        """The admin page's announcements block."""
        reader = self.settings["board"]
        if reader is None:
            return {"enabled": False}
        done = {"posted": "Posted: every hub page shows it now.", "removed": "Removed."}
        return {
            "enabled": True,
            "showing": reader.read().showing(now_utc()),
            "max_text": MAX_TEXT,
            "done": done.get(self.get_argument("board", ""), ""),
        }

    def render_page(self, name: str, **ns) -> None:
        self.finish(self.render_string_page(name, self.current_user, **ns))

    async def accounts(self) -> AccountBook:
        """The accounts file's cards; HTTP 404/500 saying why there are none."""
        cache = self.settings["accounts"]
        if cache is None:
            raise web.HTTPError(404, "Attendance needs the accounts file: set WorkshopService.accounts_file.")
        try:
            return await asyncio.get_running_loop().run_in_executor(None, cache.load)
        except (OSError, AccountsFileError) as e:
            raise web.HTTPError(500, f"The accounts file cannot be read: {e}") from None

    async def attendance_uses(self, timeout: float):
        book = await self.accounts()
        listing = await asyncio.wait_for(list_users(self.hub, ATTENDANCE_USERS), timeout)
        if listing.more:
            raise web.HTTPError(
                503, f"The hub has more than {ATTENDANCE_USERS} users; attendance reads at most that many."
            )
        return card_uses(book.values(), listing.users)


class MainHandler(ServiceHandler):
    """The admin page for admins and staff_groups (servers live from the hub, opt-outs, culls,
    attendance, pre-warm, usage charts, export links); everyone else their own page: their
    server and "Keep my server tonight"."""

    @web.authenticated
    async def get(self):
        user = self.current_user
        service = self.service
        now = now_utc()
        night = service.policy.night
        opted_out = service.culler.opted_out(now)
        exempt = is_exempt(bool(user.get("admin")), user.get("groups") or (), service.policy)
        if not self.is_staff(user):
            return await self.opt_out_page(user, now, opted_out, exempt)
        live, attendance_view, resources = await asyncio.gather(
            self.live_servers(now, opted_out), self.attendance_view(LIVE_TIMEOUT), self.resources()
        )
        rows, listing, live_error = live
        sort = "memory" if self.get_argument("sort", "") == "memory" else ""
        rows = with_usage(rows, resources, sort)
        if self.settings["board"] is not None:
            rows = with_restarts(rows, self.settings["board"].read().restarts)
        running = [r for r in rows if r.state == "running"]
        # the record's two reductions, each a database query of a few tenths of a second on a
        # year's record: side by side, off the event loop (other pages and /metrics go on)
        loop = asyncio.get_running_loop()
        (active, running_samples), durations = await asyncio.gather(
            loop.run_in_executor(None, self.sample_charts),
            loop.run_in_executor(None, service.store.duration_histogram, SESSION_BUCKETS),
        )
        nh = service.culler.node_hours()
        prewarmer = getattr(service, "prewarmer", None)
        self.render_page(
            "workshop-admin.html",
            now=now,
            night=night,
            next_night=night.next(now) if night else None,
            opted_out_tonight=user["name"] in opted_out,
            exempt=exempt,
            message=self.get_argument("done", ""),
            rows=rows,
            running=len(running),
            starting=sum(r.state == "starting" for r in rows),
            more_users=listing.more if listing else 0,
            listed_users=len(listing.users) if listing else 0,
            live_error=live_error,
            last_pass=self.last_pass(),
            culls=service.store.culls_by_reason(),
            opt_outs=sorted(opted_out),
            node_hours=nh,
            cost=nh * service.price_per_node_hour,
            active_chart=charts.line_chart("Active users", active),
            running_chart=charts.line_chart("Running servers", running_samples),
            duration_chart=charts.bar_chart("Finished sessions by length", charts.duration_bars(durations)),
            sessions=sum(count for _, count in durations),
            export_ranges=export_ranges(now, self.zone, getattr(prewarmer, "schedule", None)),
            attendance=attendance_view,
            prewarm=prewarm_view(prewarmer, now, service.prewarm_every),
            closing=closing_view(service, now),
            board=self.board_view(),
            resources=resources,
            sort=sort,
            near_limit=near_limit,
            near_count=count_near_limit(r.usage for r in rows),
            near_share=NEAR_LIMIT,
            memory_text=memory_text,
            cpu_text=cpu_text,
        )

    async def resources(self) -> Resources | None:
        """The servers' memory and CPU (None when the service reads none), bounded in time."""
        try:
            return await asyncio.wait_for(self.service.read_resources(), LIVE_TIMEOUT)
        except TimeoutError:
            return Resources(
                {}, f"Memory and CPU did not come within {LIVE_TIMEOUT:g} s; reload to try again"
            )

    async def live_servers(self, now: datetime, opted_out: set[str]):
        """(rows, listing, error): the servers now, from the hub; the last pass's if the hub
        does not answer within LIVE_TIMEOUT (``listing`` is None and ``error`` says why)."""
        policy = self.service.policy
        try:
            listing = await asyncio.wait_for(list_users(self.hub, LIVE_USERS, state="active"), LIVE_TIMEOUT)
        except (TimeoutError, HubAPIError) as e:
            self.service.log.warning(
                "Admin page: the hub's servers are unavailable (%s); showing the last pass", e
            )
            rows = [
                server_row(s, s.user in opted_out, policy, now)
                for s in sorted(self.service.culler.servers, key=lambda s: (s.user, s.name))
            ]
            reason = "did not answer" if isinstance(e, TimeoutError) else f"answered {e.status}"
            return rows, None, f"The hub {reason} within {LIVE_TIMEOUT:g} s"
        return server_rows(listing.users, opted_out, policy, now), listing, None

    async def attendance_view(self, timeout: float) -> dict:
        """The attendance table's rows, or why there are none."""
        try:
            return {"rows": attendance(await self.attendance_uses(timeout))}
        except web.HTTPError as e:
            return {"error": e.log_message}
        except (TimeoutError, HubAPIError):
            return {"error": f"The hub did not list its users within {timeout:g} s; reload to try again."}

    async def opt_out_page(self, user: dict, now: datetime, opted_out: set[str], exempt: bool) -> None:
        service = self.service
        as_of = None
        kept = user["name"] in opted_out
        try:
            status, model = await asyncio.wait_for(
                self.hub.request("GET", f"/users/{quote(user['name'], safe='')}"), LIVE_TIMEOUT
            )
            if status != 200:
                raise HubAPIError(status, "reading the user")
            mine = server_rows([model], opted_out, service.policy, now)  # running, starting, stopping
        except (TimeoutError, HubAPIError) as e:
            self.service.log.warning("Opt-out page: %s's servers are unavailable (%s)", user["name"], e)
            mine = [
                server_row(s, kept, service.policy, now)
                for s in service.culler.servers
                if s.user == user["name"]
            ]
            as_of = self.last_pass()
        night = service.policy.night
        self.render_page(
            "workshop-optout.html",
            now=now,
            night=night,
            next_night=night.next(now) if night else None,
            opted_out_tonight=kept,
            warning=warning(any(r.state != "stopping" for r in mine), kept, exempt, service.policy, now),
            exempt=exempt,
            message=self.get_argument("done", ""),
            mine=mine,
            as_of=as_of,
            stops=self.recent_stops(user["name"]),
        )

    def recent_stops(self, name: str) -> list[tuple[datetime, str]]:
        """The participant's last few servers stopped without them, and why."""
        reader = self.settings["board"]
        noted = reader.read().stops.get(name) if reader is not None else None
        return stop_history(self.service.store.recent_stops(name, 5), noted)

    def sample_charts(self):
        """Active users and running servers over the whole record, at most CHART_POINTS each."""
        peaks = [
            (at.astimezone(self.zone), values) for at, values in self.service.store.sample_peaks(CHART_POINTS)
        ]
        return [(at, active) for at, (active, _) in peaks], [(at, running) for at, (_, running) in peaks]


def closing_view(service, now: datetime) -> dict | None:
    """The admin page's closing block: when, whether announced or closed, and downloads."""
    closing = service.policy.closing
    if closing is None:
        return None
    return {
        "when": closing.local(),
        "from": (closing.at - closing.notice).astimezone(ZoneInfo(closing.zone)).strftime("%a %d %b %H:%M"),
        "closed": closing.closed(now),
        "announced": closing.announced(now),
        "downloaders": service.store.downloaders(),
    }


class OptOutHandler(ServiceHandler):
    """Keep my server tonight: the signed-in user's server is not stopped in the coming night
    window (one night; XSRF-checked form post). 400 without a night window."""

    @web.authenticated
    def post(self):
        service = self.service
        if service.policy.night is None:
            raise web.HTTPError(400, "There is no night-time stop to opt out of.")
        now = now_utc()
        night = service.culler.night_of(now)
        service.store.add_opt_out(self.current_user["name"], night, now)
        self.redirect(f"{self.settings['service_prefix']}?done=optout")


class AnnouncementsHandler(ServiceHandler):
    """Staff post (``action=post``: ``text``, ``expires`` in minutes) or remove (``action=remove``,
    ``id``) an announcement (XSRF-checked form post); the board file is rewritten atomically and
    the hub's pages show the change at their next view. A bad text or expiry: 400 saying why,
    nothing changed."""

    @web.authenticated
    def post(self):
        user = self.require_staff()
        path = self.service.board_file
        if not path:
            raise web.HTTPError(404, "Announcements need the board file: set WorkshopService.board_file.")
        now = now_utc()
        action = self.get_argument("action", "")
        text, expires, ident = (
            self.get_argument("text", ""),
            self.get_argument("expires", ""),
            self.get_argument("id", ""),
        )

        def change(board):
            if action == "post":
                return board.post(text, now, expiry(expires, now), by=user["name"])
            if action == "remove":
                return board.remove(ident)
            raise ValueError("Unknown action: post or remove an announcement.")

        try:
            update_board(path, change)
        except ValueError as e:
            raise web.HTTPError(400, str(e)) from None
        done = "posted" if action == "post" else "removed"
        self.service.log.info("Announcements: %s %s", user["name"], done)
        self.redirect(f"{self.settings['service_prefix']}?board={done}#announcements")


class ExportHandler(ServiceHandler):
    """Usage export, streamed: one record per session (``?start=&end=``, ISO 8601 with an
    offset). Staff only."""

    formats = {"csv": ("text/csv; charset=utf-8", sessions_csv), "json": ("application/json", sessions_json)}

    @web.authenticated
    async def get(self, fmt):
        self.require_staff()
        content_type, render = self.formats[fmt]
        start, end = _time_arg(self, "start"), _time_arg(self, "end")
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Disposition", f'attachment; filename="workshop-usage.{fmt}"')
        chunks = render(self.service.store.iter_sessions(start, end))
        loop = asyncio.get_running_loop()
        buffer, size = [], 0
        while True:
            # the database read happens off the event loop, a chunk at a time
            chunk = await loop.run_in_executor(None, next, chunks, None)
            if chunk is None:
                break
            buffer.append(chunk)
            size += len(chunk)
            if size >= 256 * 1024:
                self.write("".join(buffer))
                buffer, size = [], 0
                await self.flush()
        self.finish("".join(buffer))


class AttendanceHandler(ServiceHandler):
    """A line per login card: ``username,role,used,first_sign_in,revoked``. Staff only; 503 if
    the hub does not list its users in time."""

    @web.authenticated
    async def get(self):
        self.require_staff()
        try:
            uses = await self.attendance_uses(ATTENDANCE_TIMEOUT)
        except (TimeoutError, HubAPIError):
            raise web.HTTPError(
                503, f"The hub did not list its users within {ATTENDANCE_TIMEOUT:g} s; try again."
            ) from None
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="workshop-attendance.csv"')
        self.finish(attendance_csv(uses))


def archive_url(base_url: str, user: str) -> str:
    """Where the user's own server streams their whole home as one zip: jupyter-archive's
    download handler (``{server}/directories/{path}``) for the server's root, hidden files
    included (a ``.git`` is work too), symbolic links kept as links rather than followed (the
    ``~/shared`` link would otherwise pull the whole shared data in)."""
    query = urlencode(
        {
            "archiveToken": secrets.token_hex(8),
            "archiveFormat": "zip",
            "followSymlinks": "false",
            "downloadHidden": "true",
        }
    )
    return f"{base_url}user/{quote(user, safe='')}/directories/?{query}"


class DownloadHandler(ServiceHandler):
    """The closing banner's link: counted here (the admin page's "homes downloaded"), then on
    to the user's own server, which streams the archive (the hub offers to start a stopped
    server first and comes back to it)."""

    @web.authenticated
    def get(self):
        name = self.current_user["name"]
        self.service.store.record_download(name, now_utc())
        self.redirect(archive_url(os.environ.get("JUPYTERHUB_BASE_URL", "/"), name))


class ReportHandler(ServiceHandler):
    """The final report (staff): the page and its day-by-day CSV, from the usage database
    through :mod:`.report`; the cards as the admin page counts them (the hub's users)."""

    @web.authenticated
    async def get(self, fmt):
        self.require_staff()
        service = self.service
        try:
            cards, note = (
                await self.attendance_uses(LIVE_TIMEOUT),
                "Cards signed in: the hub has their user (an admin it made at its start counts once seen active).",
            )
        except web.HTTPError as e:
            cards, note = None, e.log_message
        except (TimeoutError, HubAPIError):
            cards, note = (
                None,
                f"The hub did not list its users within {LIVE_TIMEOUT:g} s; reload to count the cards.",
            )
        schedule = Schedule.parse(service.schedule) if service.schedule else None
        # people pre-warmed for when the schedule says no number: as the service counts them
        expected = sum(1 for c in cards or () if c.role == "participant" and not c.revoked)
        result = await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: report.gather(
                service.store,
                zone=service.timezone or "UTC",
                title=self._title(),
                users_per_node=service.users_per_node,
                price_per_node_hour=service.price_per_node_hour,
                currency=service.currency,
                schedule=schedule,
                expected=expected,
                lead=timedelta(minutes=service.prewarm_lead),
                hold=timedelta(minutes=service.prewarm_hold),
                cards=cards,
                cards_note=note,
            ),
        )
        if fmt == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="workshop-report.csv"')
            self.finish(report.report_csv(result))
        else:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(report.render_html(result, "report.csv"))

    def _title(self) -> str:
        cache = self.settings["accounts"]
        try:
            return cache.load().title if cache is not None else ""
        except (OSError, AccountsFileError):
            return ""


class MetricsHandler(web.RequestHandler):
    """Prometheus metrics (text format). Open, or ``Authorization: Bearer`` with
    ``metrics_token`` set."""

    def get(self):
        service = self.settings["workshop_service"]
        if service.metrics_token:
            expected = f"Bearer {service.metrics_token}"
            if not secrets.compare_digest(self.request.headers.get("Authorization", ""), expected):
                raise web.HTTPError(403)
        self.set_header("Content-Type", service.metrics.content_type)
        self.finish(service.metrics.render())


def make_app(service) -> web.Application:
    from .desk_web import desk_routes

    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{service.service_name}/")
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(str(TEMPLATES)),
            jinja2.FileSystemLoader(os.path.join(DATA_FILES_PATH, "templates")),
        ]
    )
    hub_auth = HubOAuth(api_token=service.api_token, api_url=service.api_url, cache_max_age=60)
    return web.Application(
        [
            (prefix, MainHandler),
            (prefix + "opt-out", OptOutHandler),
            (prefix + "announcements", AnnouncementsHandler),
            (prefix + r"usage\.(csv|json)", ExportHandler),
            (prefix + r"attendance\.csv", AttendanceHandler),
            (prefix + r"report\.(html|csv)", ReportHandler),
            (prefix + "download", DownloadHandler),
            (prefix + "metrics", MetricsHandler),
            *desk_routes(prefix),
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
        ],
        hub_auth=hub_auth,
        workshop_service=service,
        service_prefix=prefix,
        accounts=AccountsCache(service.accounts_file) if service.accounts_file else None,
        board=BoardReader(service.board_file) if service.board_file else None,
        jinja_env=jinja2.Environment(loader=loader, autoescape=True),
        cookie_secret=secrets.token_bytes(32),
        xsrf_cookies=True,
        login_url=hub_auth.login_url,
    )
