"""``jupyterhub-workshop service``: the workshop's managed JupyterHub service.

Each pass it lists ready servers from the hub, reconciles recorded sessions with them, decides
what to cull (``policy.decide``), records and stops, and samples usage. The web pages and
exports live in ``web.py``. Every knob is a traitlet: config file, command line or environment.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

from tornado.ioloop import IOLoop
from traitlets import Bool, Float, Integer, List, Unicode, default
from traitlets.config import Application

from .hub_api import HubAPI, HubAPIError
from .metrics import WorkshopMetrics
from .policy import CullPolicy, NightWindow, ServerInfo, decide
from .store import UsageStore
from .usage import node_hours

def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def server_infos(user: dict) -> list[ServerInfo]:
    """ServerInfo for each ready server of a hub user model."""
    infos = []
    for name, server in (user.get("servers") or {}).items():
        if not server.get("ready"):
            continue
        options = server.get("user_options") or {}
        infos.append(ServerInfo(
            user=user["name"], name=name, admin=bool(user.get("admin")),
            groups=frozenset(user.get("groups") or ()),
            started=parse_time(server.get("started")),
            last_activity=parse_time(server.get("last_activity")),
            ready=True, profile=options.get("profile"),
        ))
    return infos


class WorkshopService(Application):
    """Cull idle and night-time servers, record usage, serve the workshop admin page."""

    name = "jupyterhub-workshop-service"
    description = __doc__

    aliases = {
        "config": "WorkshopService.config_file",
        "db-url": "WorkshopService.db_url",
        "idle-timeout": "WorkshopService.idle_timeout",
        "max-age": "WorkshopService.max_age",
        "night-start": "WorkshopService.night_start",
        "night-end": "WorkshopService.night_end",
        "timezone": "WorkshopService.timezone",
        "cull-every": "WorkshopService.cull_every",
        "log-level": "Application.log_level",
    }
    flags = {
        "dry-run": ({"WorkshopService": {"dry_run": True}}, "Decide and record culls, stop nothing."),
    }

    config_file = Unicode(help="Python config file (c.WorkshopService.x = ...); default $WORKSHOP_SERVICE_CONFIG.").tag(config=True)

    @default("config_file")
    def _default_config_file(self):
        return os.environ.get("WORKSHOP_SERVICE_CONFIG", "")

    service_name = Unicode(help="This service's name in the hub (the URL is /services/NAME/).").tag(config=True)

    @default("service_name")
    def _default_service_name(self):
        return os.environ.get("JUPYTERHUB_SERVICE_NAME", "workshop")

    db_url = Unicode(
        help="""
        SQLAlchemy URL of the usage database: SQLite with WAL by default, any SQLAlchemy URL
        (PostgreSQL for larger installs). Default: $WORKSHOP_DB_URL, else
        sqlite:///workshop-usage.sqlite. Prefer the environment for URLs with passwords.
        """,
    ).tag(config=True)

    @default("db_url")
    def _default_db_url(self):
        return os.environ.get("WORKSHOP_DB_URL", "sqlite:///workshop-usage.sqlite")

    idle_timeout = Integer(3600, help="Stop servers idle this many seconds (0: never). Under ~6 min is meaningless: activity is reported every 5 min.").tag(config=True)
    max_age = Integer(0, help="Stop servers running longer than this many seconds regardless of activity (0: never).").tag(config=True)
    night_start = Unicode("", help="Local time the night window starts, e.g. 22:00 (empty: no night culling).").tag(config=True)
    night_end = Unicode("", help="Local time the night window ends, e.g. 06:00.").tag(config=True)
    timezone = Unicode("UTC", help="IANA time zone of the night window, e.g. America/Denver.").tag(config=True)
    warn_before = Integer(1800, help="Seconds before the night window that users are warned.").tag(config=True)
    exempt_groups = List(Unicode(), ["instructors"], help="Groups whose servers are not stopped at night.").tag(config=True)
    exempt_admins = Bool(True, help="Do not stop admins' servers at night.").tag(config=True)
    dry_run = Bool(False, help="Decide and record culls, but stop nothing.").tag(config=True)
    cull_every = Float(60, help="Seconds between passes (list servers, reconcile, cull, sample).").tag(config=True)
    concurrency = Integer(10, help="Hub API requests in flight at once (stops are bounded by it).").tag(config=True)
    api_retries = Integer(5, help="Retries of a hub API call that failed with 5xx, 429 or a timeout.").tag(config=True)
    api_timeout = Float(20, help="Seconds before a hub API call times out (and is retried).").tag(config=True)
    active_window = Integer(600, help="A user counts as active with server activity within this many seconds.").tag(config=True)
    staff_groups = List(Unicode(), ["instructors"], help="Groups who see the admin page (admins always do).").tag(config=True)
    users_per_node = Integer(0, help="Users that fit on one node, for node-hours and cost (0: not computed).").tag(config=True)
    price_per_node_hour = Float(0.0, help="Price of one node-hour, for the cost metric and admin page.").tag(config=True)
    currency = Unicode("USD", help="Currency shown with costs.").tag(config=True)
    metrics_token = Unicode("", help="If set, /metrics requires 'Authorization: Bearer TOKEN'. Empty: open (it holds no names).").tag(config=True)

    api_url = Unicode(help="Hub API URL (from JUPYTERHUB_API_URL).").tag(config=True)

    @default("api_url")
    def _default_api_url(self):
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    api_token = Unicode(help="Hub API token (from JUPYTERHUB_API_TOKEN).").tag(config=True)

    @default("api_token")
    def _default_api_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    service_url = Unicode(help="Where to listen (from JUPYTERHUB_SERVICE_URL).").tag(config=True)

    @default("service_url")
    def _default_service_url(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    # --- state ---------------------------------------------------------------------------

    def initialize(self, argv=None):
        super().initialize(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
        self.policy = self.build_policy()
        self.store = UsageStore(self.db_url)
        self.hub = HubAPI(self.api_url, self.api_token, concurrency=self.concurrency,
                          retries=self.api_retries, timeout=self.api_timeout, log=self.log)
        self._node_hours: float | None = None
        self._last_sample: tuple[datetime, int] | None = None
        self.metrics = WorkshopMetrics(self.price_per_node_hour)
        self.metrics.load(self.store.culls_by_reason(), self.store.session_durations(), self.current_node_hours())
        self.servers: list[ServerInfo] = []  # as of the last pass, for the admin page
        self.last_pass: datetime | None = None
        self._culled: dict[tuple[str, str], str] = {}  # (user, server) -> reason, until the session closes
        self._first_pass = True

    def build_policy(self) -> CullPolicy:
        night = None
        if self.night_start or self.night_end:
            night = NightWindow.parse(self.night_start, self.night_end, self.timezone)
        return CullPolicy(
            idle_timeout=timedelta(seconds=self.idle_timeout) if self.idle_timeout > 0 else None,
            max_age=timedelta(seconds=self.max_age) if self.max_age > 0 else None,
            night=night, exempt_groups=frozenset(self.exempt_groups), exempt_admins=self.exempt_admins,
            warn_before=timedelta(seconds=self.warn_before), dry_run=self.dry_run,
        )

    def current_node_hours(self) -> float:
        """Node-hours so far: from the stored samples once, then added up as samples come."""
        if self.users_per_node <= 0:
            return 0.0
        if self._node_hours is None:
            samples = self.store.samples()
            self._node_hours = node_hours(samples, self.users_per_node)
            self._last_sample = (samples[-1].at, samples[-1].running_servers) if samples else None
        return self._node_hours

    def add_sample(self, now: datetime, running: int) -> None:
        if self.users_per_node > 0:
            self.current_node_hours()
            if self._last_sample:
                at, before = self._last_sample
                self._node_hours += math.ceil(before / self.users_per_node) * (now - at).total_seconds() / 3600
            self._last_sample = (now, running)

    def night_of(self, now: datetime):
        return self.policy.night.night_of(now) if self.policy.night else None

    def opted_out(self, now: datetime) -> set[str]:
        night = self.night_of(now)
        return self.store.opted_out(night) if night else set()

    # --- one pass ------------------------------------------------------------------------

    def reconcile(self, servers: list[ServerInfo], now: datetime) -> None:
        """Open sessions for servers we have not seen; close sessions whose server is gone."""
        running = {(s.user, s.name): s for s in servers}
        recorded = {(session.user, session.server): session for session in self.store.open_sessions()}
        for key, server in running.items():
            if key not in recorded:
                self.store.open_session(server.user, server.name, server.profile, server.started or now)
        for key, session in recorded.items():
            if key in running:
                continue
            # gone since we last looked: culled by us, stopped by the user, or unknown after a restart
            reason = self._culled.pop(key, "unknown" if self._first_pass else "user")
            if self.store.close_session(session.user, session.server, now, reason):
                self.metrics.session_duration.observe(max(0.0, (now - session.started).total_seconds()))

    async def cull(self, servers: list[ServerInfo], now: datetime) -> list:
        decisions = decide(servers, self.opted_out(now), self.policy, now)

        async def stop(decision):
            server = decision.server
            self.store.record_cull(now, server.user, server.name, decision.reason, self.dry_run)
            if self.dry_run:
                self.log.info("[dry run] would stop %s/%s: %s", server.user, server.name, decision.detail)
                return
            self.log.info("Stopping %s/%s: %s", server.user, server.name, decision.detail)
            self._culled[(server.user, server.name)] = decision.reason
            try:
                outcome = await self.hub.stop_server(server.user, server.name)
            except HubAPIError as e:
                self._culled.pop((server.user, server.name), None)
                self.log.error("Could not stop %s/%s: %s", server.user, server.name, e)
                return
            self.metrics.culls.labels(decision.reason).inc()
            if outcome in ("stopped", "gone"):
                self._culled.pop((server.user, server.name), None)
                if self.store.close_session(server.user, server.name, now, decision.reason):
                    if server.started:
                        self.metrics.session_duration.observe(max(0.0, (now - server.started).total_seconds()))

        # the hub API client bounds how many stops are in flight
        await asyncio.gather(*(stop(d) for d in decisions))
        return decisions

    async def run_pass(self, now: datetime | None = None) -> list:
        now = now or datetime.now(timezone.utc)
        servers = []
        async for user in self.hub.users(state="ready"):
            servers.extend(server_infos(user))
        self.reconcile(servers, now)
        self._first_pass = False
        decisions = await self.cull(servers, now)
        culled = {(d.server.user, d.server.name) for d in decisions} if not self.dry_run else set()
        self.servers = [s for s in servers if (s.user, s.name) not in culled]
        active_since = now - timedelta(seconds=self.active_window)
        active = {s.user for s in self.servers if s.last_activity and s.last_activity >= active_since}
        self.store.record_sample(now, len(active), len(self.servers))
        self.add_sample(now, len(self.servers))
        self.metrics.running_servers.set(len(self.servers))
        self.metrics.active_users.set(len(active))
        self.metrics.set_node_hours(self.current_node_hours())
        self.last_pass = now
        return decisions

    async def loop(self) -> None:
        while True:
            try:
                await self.run_pass()
            except Exception:
                # a hub that is down or restarting: log, keep serving pages, try next pass
                self.log.exception("Workshop service pass failed; retrying in %ss", self.cull_every)
            await asyncio.sleep(self.cull_every)

    def start(self) -> None:
        from .web import make_app

        url = urlparse(self.service_url)
        app = make_app(self)
        app.listen(url.port or 80, url.hostname or "127.0.0.1", xheaders=True)
        self.log.info("Workshop service %s listening on %s (db %s)", self.service_name, self.service_url,
                      self.store.safe_url if hasattr(self.store, "safe_url") else "")
        loop = IOLoop.current()
        loop.add_callback(self.loop)
        loop.start()


def main(argv: list[str] | None = None) -> None:
    service = WorkshopService.instance()
    service.initialize(argv if argv is not None else sys.argv[1:])
    service.start()
