"""The workshop service, a managed JupyterHub service: configuration and wiring.

Run it as ``jupyterhub-workshop-service`` or ``python -m jupyterhub_workshop.service``; every
knob is a traitlet (``--help-all``), set on the command line, in a ``--config`` file (Python or
JSON, as the hub configuration writes it) or, for the hub's own settings, from the environment
a managed service gets. The passes live in :mod:`.culler`, the pages in :mod:`.web`, pre-warm
(placeholders before each session of the schedule) in :mod:`.prewarm`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from urllib.parse import urlparse

from traitlets import Bool, Dict, Float, Integer, List, TraitError, Unicode, default, validate
from traitlets.config import Application

from ..closing import Closing, closing_trait_value
from ..schedule import DEFAULT_HOLD, DEFAULT_LEAD, Schedule
from ..times import now_utc
from .culler import Culler
from .desk import Confirmations, Desk, RateLimit
from .events import EventSpoolReader
from .hub_api import HubAPI, HubAPIError
from .metrics import WorkshopMetrics
from .policy import CullPolicy, NightWindow
from .prewarm import DeploymentScale, Prewarmer, night_overlaps, overlap_message
from .resource_sources import PodMetrics, ProcessTree
from .resources import Resources, count_near_limit
from .schema import SchemaError
from .store import UsageStore


class WorkshopService(Application):
    """Cull idle and night-time servers, record usage, serve the workshop admin page."""

    name = "jupyterhub-workshop-service"
    description = __doc__

    # option names follow jupyterhub-idle-culler's where they mean the same
    aliases = {
        "config": "WorkshopService.config_file",
        "db-url": "WorkshopService.db_url",
        "timeout": "WorkshopService.idle_timeout",
        "max-age": "WorkshopService.max_age",
        "cull-every": "WorkshopService.cull_every",
        "concurrency": "WorkshopService.concurrency",
        "night-start": "WorkshopService.night_start",
        "night-end": "WorkshopService.night_end",
        "timezone": "WorkshopService.timezone",
        "log-level": "Application.log_level",
    }
    flags = {
        "dry-run": ({"WorkshopService": {"dry_run": True}}, "Decide and record culls, stop nothing."),
    }

    config_file = Unicode(
        help="Config file, Python (c.WorkshopService.x = ...) or JSON; default $WORKSHOP_SERVICE_CONFIG."
    ).tag(config=True)

    @default("config_file")
    def _default_config_file(self):
        return os.environ.get("WORKSHOP_SERVICE_CONFIG", "")

    service_name = Unicode(help="This service's name in the hub (the URL is /services/NAME/).").tag(
        config=True
    )

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

    idle_timeout = Integer(
        3600,
        min=0,
        help="Stop servers idle this many seconds (0: never). Under ~6 min is meaningless: "
        "activity is reported every 5 min.",
    ).tag(config=True)
    max_age = Integer(
        0, min=0, help="Stop servers running longer than this many seconds regardless of activity (0: never)."
    ).tag(config=True)
    night_start = Unicode(
        "", help="Local time the night window starts, e.g. 22:00 (empty: no night culling)."
    ).tag(config=True)
    night_end = Unicode("", help="Local time the night window ends, e.g. 06:00.").tag(config=True)
    timezone = Unicode("UTC", help="IANA time zone of the night window, e.g. America/Denver.").tag(
        config=True
    )
    warn_before = Integer(1800, min=0, help="Seconds before the night window that users are warned.").tag(
        config=True
    )
    exempt_groups = List(
        Unicode(), ["instructors"], help="Groups whose servers are not stopped at night."
    ).tag(config=True)
    exempt_admins = Bool(True, help="Do not stop admins' servers at night.").tag(config=True)
    dry_run = Bool(False, help="Decide and record culls, but stop nothing.").tag(config=True)
    cull_every = Float(
        60, help="Seconds between passes (list servers, reconcile, cull, sample); more than 0."
    ).tag(config=True)

    @validate("cull_every")
    def _positive_cull_every(self, proposal):
        if proposal.value <= 0:
            raise TraitError(f"cull_every must be more than 0 seconds, not {proposal.value}")
        return proposal.value

    concurrency = Integer(
        10, min=1, help="Hub API requests in flight at once (stops are bounded by it)."
    ).tag(config=True)
    api_retries = Integer(
        5, min=0, help="Retries of a hub API call that failed with 5xx, 429 or a timeout."
    ).tag(config=True)
    api_timeout = Float(20, help="Seconds before a hub API call times out (and is retried).").tag(config=True)
    active_window = Integer(
        600, min=1, help="A user counts as active with server activity within this many seconds."
    ).tag(config=True)
    staff_groups = List(
        Unicode(), ["instructors"], help="Groups who see the admin page (admins always do)."
    ).tag(config=True)
    users_per_node = Integer(
        0, min=0, help="Users that fit on one node, for node-hours and cost (0: not computed)."
    ).tag(config=True)
    price_per_node_hour = Float(
        0.0, min=0, help="Price of one node-hour, for the cost metric and admin page."
    ).tag(config=True)
    currency = Unicode("USD", help="Currency shown with costs.").tag(config=True)
    accounts_file = Unicode(
        "",
        help="The workshop authenticator's accounts file (its accounts_file), read for the admin "
        "page's attendance and attendance.csv (empty: no attendance).",
    ).tag(config=True)
    desk_file = Unicode(
        "",
        help="""
        The card desk's file (the authenticator's ``desk_file``): the service writes the desk's
        reissued, revoked, restored and late cards there, the authenticator merges it over
        ``accounts_file``. Needs ``accounts_file`` too. Empty: no card desk.
        """,
    ).tag(config=True)
    card_desk_groups = List(
        Unicode(),
        ["instructors"],
        help="""
        Groups whose members may use the card desk for participant cards (hub admins may use it
        for every card: an instructor's card is an admin account).
        """,
    ).tag(config=True)
    desk_actions_per_minute = Integer(
        20, min=1, help="Card desk actions one staff member may do in any minute (more get 429)."
    ).tag(config=True)
    desk_cards_page_seconds = Integer(
        600,
        min=10,
        help="""
        Seconds the page showing new card passwords stays before it leaves itself for the desk
        (it is never cached either).
        """,
    ).tag(config=True)
    metrics_token = Unicode(
        "", help="If set, /metrics requires 'Authorization: Bearer TOKEN'. Empty: open (it holds no names)."
    ).tag(config=True)

    closing = Unicode(
        "",
        help="""
        When the workshop ends: an ISO 8601 time with its UTC offset, e.g.
        2026-07-17T18:00:00-06:00 (the same as the authenticator's ``closing``). From then on
        every running server is stopped with the reason ``closed`` (staff may start theirs
        again); nothing is deleted. The admin page shows it and how many people asked for
        their home as an archive through the closing banner's link. Empty: the hub does not
        close.
        """,
    ).tag(config=True)
    closing_notice_days = Float(
        2.0,
        min=0,
        help="Days before ``closing`` from which the hub's pages show the closing banner (its download link).",
    ).tag(config=True)

    @validate("closing")
    def _parsed_closing(self, proposal):
        return closing_trait_value(proposal.value)

    def closing_time(self) -> Closing | None:
        """The closing as the rule (:mod:`jupyterhub_workshop.closing`) takes it, or None."""
        return Closing.parse(self.closing, self.closing_notice_days, self.timezone or "UTC")

    board_file = Unicode(
        "",
        help="""
        The board file: staff announcements (posted on the admin page) and why each
        participant's server last stopped, written atomically by the service and read by the
        hub's pages (hubconfig.services.board_banner) when it changes. On the hub's persistent
        volume, so it survives restarts. Empty: no announcements, no stop notices.
        """,
    ).tag(config=True)

    events_file = Unicode(
        "",
        help="""
        The hub's server events: the JSON-lines spool file the hub's handler writes
        (hubconfig.services: workshop_service(events_file=F) sets this, install_server_events(c, F)
        installs the handler). Sessions then start and stop at the hub's own times, whoever
        started or stopped the server, and peaks between passes are kept. Empty: passes only (a
        session starts and stops when a pass sees it, and one shorter than a pass is missed).
        """,
    ).tag(config=True)
    events_poll_interval = Float(
        1.0, help="Seconds between looks at the events file for new events; more than 0."
    ).tag(config=True)

    @validate("events_poll_interval")
    def _positive_events_poll_interval(self, proposal):
        if proposal.value <= 0:
            raise TraitError(f"events_poll_interval must be more than 0 seconds, not {proposal.value}")
        return proposal.value

    schedule = Dict(
        {},
        help="""
        The workshop's timetable, to keep capacity warm before each session: a mapping with
        ``timeZone``, ``sessions`` (each ``{days, start, end}``, days as weekdays Mon..Sun or
        dates), optional ``from``/``until`` dates and ``expected`` people (default: the
        participant cards of ``accounts_file``). See jupyterhub_workshop.schedule. Empty: no
        pre-warm.
        """,
    ).tag(config=True)

    @validate("schedule")
    def _parsed_schedule(self, proposal):
        if proposal.value:
            try:
                Schedule.parse(proposal.value)
            except ValueError as e:
                raise TraitError(str(e)) from None
        return proposal.value

    prewarm_lead = Float(
        DEFAULT_LEAD.total_seconds() / 60,
        min=0,
        help="Minutes before each session's start from which capacity is kept warm (nodes take ~5 to boot).",
    ).tag(config=True)
    prewarm_hold = Float(
        DEFAULT_HOLD.total_seconds() / 60,
        min=0,
        help="Minutes after each session's start until which capacity is kept warm (when the arrivals are in).",
    ).tag(config=True)
    prewarm_deployment = Unicode(
        "",
        help="""
        The Deployment of placeholder pods whose replica count the service sets (through its
        scale subresource) to keep capacity warm: the chart's ``workshop-prewarm``. Empty: the
        service decides and shows the count, and scales nothing.
        """,
    ).tag(config=True)
    prewarm_namespace = Unicode(
        help="Namespace of prewarm_deployment. Default: $POD_NAMESPACE, else the pod's own namespace."
    ).tag(config=True)

    @default("prewarm_namespace")
    def _default_prewarm_namespace(self):
        namespace = os.environ.get("POD_NAMESPACE", "")
        path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        if not namespace and os.path.exists(path):
            with open(path) as f:
                namespace = f.read().strip()
        return namespace or "default"

    prewarm_every = Float(
        60,
        help="""
        Seconds between pre-warm steps (with a schedule): each decides the placeholders wanted
        now and sets the Deployment's replicas when they differ. Its own timer, not the pass:
        a slow or restarting hub does not delay the nodes; people with a server are counted
        from what the service knows (the hub's events and the last pass). More than 0.
        """,
    ).tag(config=True)

    @validate("prewarm_every")
    def _positive_prewarm_every(self, proposal):
        if proposal.value <= 0:
            raise TraitError(f"prewarm_every must be more than 0 seconds, not {proposal.value}")
        return proposal.value

    server_resources = Unicode(
        "",
        help="""
        Where the admin page reads each server's memory and CPU: ``kubernetes`` (the
        ``metrics.k8s.io`` pod metrics of the server pods in server_resources_namespace, as
        ``kubectl top`` reads them; needs metrics-server and the chart's Role), ``processes`` (the
        local twin: the process tree of each server noted in server_pids_dir), or empty (none).
        """,
    ).tag(config=True)

    @validate("server_resources")
    def _known_server_resources(self, proposal):
        if proposal.value not in ("", "kubernetes", "processes"):
            raise TraitError(
                f"server_resources must be 'kubernetes', 'processes' or empty, not {proposal.value!r}"
            )
        return proposal.value

    server_resources_namespace = Unicode(
        help="Namespace of the server pods (server_resources kubernetes). Default: as prewarm_namespace."
    ).tag(config=True)

    @default("server_resources_namespace")
    def _default_server_resources_namespace(self):
        return self._default_prewarm_namespace()

    server_pids_dir = Unicode(
        "",
        help="""
        Directory where the local spawner notes each server's process id
        (``WorkshopLocalSpawner.pid_dir``; server_resources processes).
        """,
    ).tag(config=True)

    near_limit_every = Float(
        60,
        help="""
        Seconds between readings of the servers' memory for the
        ``workshop_servers_near_memory_limit`` gauge (with server_resources; the admin page
        reads them at each view as well). More than 0.
        """,
    ).tag(config=True)

    @validate("near_limit_every")
    def _positive_near_limit_every(self, proposal):
        if proposal.value <= 0:
            raise TraitError(f"near_limit_every must be more than 0 seconds, not {proposal.value}")
        return proposal.value

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

    def initialize(self, argv=None):
        super().initialize(argv)
        if self.config_file:
            # traitlets skips a missing file and only logs one that fails to load: either would
            # leave the service culling on its defaults (no dry run, the default idle timeout)
            if not os.path.isfile(self.config_file):
                raise FileNotFoundError(f"workshop service config file not found: {self.config_file}")
            self.raise_config_file_errors = True
            self.load_config_file(self.config_file)
        self.policy = self.build_policy()
        self.store = UsageStore(self.db_url)
        self.desk = (
            Desk(self.accounts_file, self.desk_file) if self.accounts_file and self.desk_file else None
        )
        self.desk_rate = RateLimit(self.desk_actions_per_minute)
        self.desk_confirmations = Confirmations()
        self.hub = HubAPI(
            self.api_url,
            self.api_token,
            concurrency=self.concurrency,
            retries=self.api_retries,
            timeout=self.api_timeout,
            log=self.log,
        )
        self.metrics = WorkshopMetrics(self.price_per_node_hour, self.currency)
        events = EventSpoolReader(self.events_file, log=self.log) if self.events_file else None
        self.culler = Culler(
            self.hub,
            self.store,
            self.metrics,
            self.policy,
            active_window=timedelta(seconds=self.active_window),
            users_per_node=self.users_per_node,
            events=events,
            log=self.log,
            board_file=self.board_file or None,
        )
        self.prewarmer = self.build_prewarmer()
        self.resource_source = self.build_resource_source()

    def build_resource_source(self):
        """Where each server's memory and CPU come from (None: not shown)."""
        if self.server_resources == "kubernetes":
            return PodMetrics(self.server_resources_namespace)
        if self.server_resources == "processes":
            if not self.server_pids_dir:
                raise TraitError(
                    "server_resources processes needs server_pids_dir (WorkshopLocalSpawner.pid_dir)"
                )
            return ProcessTree(self.server_pids_dir)
        return None

    async def read_resources(self) -> Resources | None:
        """The servers' memory and CPU now (None without a source); the near-limit gauge follows."""
        if self.resource_source is None:
            return None
        found = await self.resource_source.usage()
        if not found.error:
            self.metrics.near_memory_limit.set(count_near_limit(found.usage.values()))
        return found

    async def run_resources(self) -> None:
        """Read the servers' memory every ``near_limit_every`` seconds (it never raises)."""
        while True:
            try:
                found = await self.read_resources()
                if found and found.error:
                    self.log.warning("Servers' memory and CPU: %s", found.error)
            except Exception:
                self.log.exception("Reading the servers' memory and CPU failed")
            await asyncio.sleep(self.near_limit_every)

    def build_policy(self) -> CullPolicy:
        """The cull policy, once the settings that must agree with it do (:meth:`check_prewarm`);
        the hub calls this to check the service's settings at its own start."""
        night = None
        if self.night_start or self.night_end:
            night = NightWindow.parse(self.night_start, self.night_end, self.timezone)
        self.check_prewarm(night)
        return CullPolicy(
            idle_timeout=timedelta(seconds=self.idle_timeout) if self.idle_timeout > 0 else None,
            max_age=timedelta(seconds=self.max_age) if self.max_age > 0 else None,
            night=night,
            exempt_groups=frozenset(self.exempt_groups),
            exempt_admins=self.exempt_admins,
            warn_before=timedelta(seconds=self.warn_before),
            dry_run=self.dry_run,
            closing=self.closing_time(),
            staff_groups=frozenset(self.staff_groups),
        )

    def check_prewarm(self, night: NightWindow | None) -> None:
        """TraitError for a schedule that cannot be kept as set: a placeholder Deployment needs
        ``users_per_node``, and no session may meet the night window — its run (the night cull
        would stop the servers of a session in progress) and, when placeholders are scaled, its
        pre-warm stretch (the cull would stop the servers the nodes are warmed for). Weekday
        sessions without ``until`` are checked for the next 60 days."""
        if not self.schedule:
            return
        schedule = Schedule.parse(self.schedule)
        if self.prewarm_deployment and self.users_per_node < 1:
            raise TraitError(
                "prewarm_deployment needs users_per_node: its placeholders are node-sized (one per "
                "users_per_node people); set users_per_node to the users that fit on one node"
            )
        if night is not None:
            # without a Deployment to scale nothing is warmed: only the sessions themselves count
            warmed = bool(self.prewarm_deployment)
            lead = timedelta(minutes=self.prewarm_lead if warmed else 0)
            hold = timedelta(minutes=self.prewarm_hold if warmed else 0)
            today = now_utc().astimezone(schedule.zone).date()
            overlaps = night_overlaps(schedule, night, lead, hold, today)
            if overlaps:
                raise TraitError(overlap_message(schedule, night, overlaps))

    def build_prewarmer(self) -> Prewarmer | None:
        if not self.schedule:
            return None
        scale = None
        if self.prewarm_deployment:
            scale = DeploymentScale(self.prewarm_deployment, self.prewarm_namespace)
        return Prewarmer(
            Schedule.parse(self.schedule),
            lead=timedelta(minutes=self.prewarm_lead),
            hold=timedelta(minutes=self.prewarm_hold),
            users_per_node=self.users_per_node,
            scale=scale,
            accounts_file=self.accounts_file,
            metrics=self.metrics,
            log=self.log,
        )

    async def run_prewarm(self) -> None:
        """A pre-warm step every ``prewarm_every`` seconds (it never raises)."""
        while True:
            await self.prewarmer.step(now_utc(), self.culler.running_users())
            await asyncio.sleep(self.prewarm_every)

    async def run_passes(self) -> None:
        while True:
            try:
                await self.culler.run_pass()
            except HubAPIError as e:
                # a hub that is down or restarting: keep serving pages, try next pass
                self.log.error("Workshop service pass failed: %s; retrying in %ss", e, self.cull_every)
            except Exception:
                self.log.exception("Workshop service pass failed; retrying in %ss", self.cull_every)
            await asyncio.sleep(self.cull_every)

    async def follow_events(self) -> None:
        """Apply the hub's server events as they come (the passes catch up too)."""
        profiles: asyncio.Task | None = None
        failing = ""
        try:
            while True:
                try:
                    if self.culler.drain_events() and (profiles is None or profiles.done()):
                        # in the background: a slow hub delays profiles, not the next events
                        profiles = asyncio.create_task(self.culler.fill_profiles())
                    failing = ""
                except Exception as e:
                    if str(e) != failing:  # once per kind of failure, not every second
                        self.log.exception("Reading the hub's server events from %s failed", self.events_file)
                    failing = str(e)
                await asyncio.sleep(self.events_poll_interval)
        finally:
            if profiles is not None:
                profiles.cancel()

    async def serve(self, stopping: asyncio.Event | None = None) -> None:
        """Serve the pages, follow events and run passes until ``stopping`` is set (SIGTERM
        or SIGINT when run by :func:`main`), then stop cleanly."""
        from .web import make_app

        if stopping is None:
            stopping = install_stop_signals()
        url = urlparse(self.service_url)
        server = make_app(self).listen(url.port or 80, url.hostname or "127.0.0.1", xheaders=True)
        self.log.info(
            "Workshop service %s listening on %s (db %s%s)",
            self.service_name,
            self.service_url,
            self.store.safe_url,
            f", events {self.events_file}" if self.events_file else "",
        )
        tasks = [asyncio.create_task(self.run_passes())]
        if self.events_file:
            tasks.append(asyncio.create_task(self.follow_events()))
        if self.prewarmer is not None:
            tasks.append(asyncio.create_task(self.run_prewarm()))
        if self.resource_source is not None:
            tasks.append(asyncio.create_task(self.run_resources()))
        try:
            await stopping.wait()
        finally:
            self.log.info("Workshop service stopping")
            for task in tasks:
                task.cancel()
            server.stop()
            # a stop in flight is abandoned: its cull is recorded, and whatever closes its
            # session after the next start closes it with the cull's reason
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                # the hub stops its services before its servers: what runs now ran until now
                self.culler.stopping()
            except Exception:
                self.log.exception("Could not note the servers running as the service stops")
            if self.prewarmer is not None:
                await self.prewarmer.close()
            if self.resource_source is not None:
                await self.resource_source.close()
            self.hub.close()
            self.store.close()


def install_stop_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, in the running loop.

    The handlers replace whatever the process inherited: a service started in the background
    by a script inherits "ignore SIGINT", and Python's own SIGINT handler would raise
    KeyboardInterrupt (a traceback) wherever the loop happens to be.
    """
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    return stopping


def main(argv: list[str] | None = None) -> None:
    async def run():
        # handlers first: a signal during start-up (migrations) stops the service as cleanly
        stopping = install_stop_signals()
        # built inside the event loop: the hub API client binds to the loop it is made in
        service = WorkshopService.instance()
        try:
            service.initialize(argv)
        except (SchemaError, TraitError) as e:  # a newer database, settings that cannot work
            service.log.critical("%s", e)
            return 1
        await service.serve(stopping)
        return 0

    sys.exit(asyncio.run(run()))
