"""One pass of the workshop service: list ready servers, reconcile recorded sessions with them,
decide what to stop (``policy.decide``), record and stop, and sample usage.

The decisions are pure (:mod:`.policy`); this module is the IO around them: the hub's REST API
(:mod:`.hub_api`), the usage store (:mod:`.store`) and the metrics (:mod:`.metrics`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta

from ..times import now_utc, parse_machine_time
from ..usage_accounting import NodeHours
from .hub_api import HubAPI, HubAPIError
from .metrics import WorkshopMetrics
from .policy import CullDecision, CullPolicy, ServerInfo, decide
from .store import UsageStore


def server_infos(user: dict) -> list[ServerInfo]:
    """ServerInfo for each ready server of a hub user model."""
    infos = []
    for name, server in (user.get("servers") or {}).items():
        if not server.get("ready"):
            continue
        options = server.get("user_options") or {}
        infos.append(
            ServerInfo(
                user=user["name"],
                name=name,
                admin=bool(user.get("admin")),
                groups=frozenset(user.get("groups") or ()),
                started=parse_machine_time(server.get("started")),
                last_activity=parse_machine_time(server.get("last_activity")),
                ready=True,
                profile=options.get("profile"),
            )
        )
    return infos


class Culler:
    """The service's passes, and what the pages need from the last one."""

    def __init__(
        self,
        hub: HubAPI,
        store: UsageStore,
        metrics: WorkshopMetrics,
        policy: CullPolicy,
        *,
        active_window: timedelta,
        users_per_node: int = 0,
        log: logging.Logger | None = None,
    ):
        self.hub = hub
        self.store = store
        self.metrics = metrics
        self.policy = policy
        self.active_window = active_window
        self.log = log or logging.getLogger(__name__)
        self.servers: list[ServerInfo] = []  # as of the last pass, for the admin page
        self._culled: dict[tuple[str, str], str] = {}  # (user, server) -> reason, until the session closes
        self._first_pass = True
        self._node_hours: NodeHours | None = None
        if users_per_node > 0:
            # node-hours so far: from the stored samples once, then added up as samples come
            samples = ((sample.at, sample.running_servers) for sample in store.samples())
            self._node_hours = NodeHours.from_samples(samples, users_per_node)
        metrics.load(store.culls_by_reason(), store.session_durations(), self.node_hours())

    def node_hours(self) -> float:
        """Node-hours up to the last sample (0 when users per node is not set)."""
        return self._node_hours.hours if self._node_hours else 0.0

    def night_of(self, now: datetime) -> date | None:
        return self.policy.night.night_of(now) if self.policy.night else None

    def opted_out(self, now: datetime) -> set[str]:
        night = self.night_of(now)
        return self.store.opted_out(night) if night else set()

    def _session_closed(self, started: datetime | None, stopped: datetime) -> None:
        if started is not None:
            self.metrics.session_duration.observe(max(0.0, (stopped - started).total_seconds()))

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
                self._session_closed(session.started, now)

    async def _stop(self, decision: CullDecision, now: datetime) -> None:
        server = decision.server
        key = (server.user, server.name)
        self.store.record_cull(now, server.user, server.name, decision.reason, self.policy.dry_run)
        if self.policy.dry_run:
            self.log.info("[dry run] would stop %s/%s: %s", server.user, server.name, decision.detail)
            return
        self.log.info("Stopping %s/%s: %s", server.user, server.name, decision.detail)
        self._culled[key] = decision.reason
        try:
            outcome = await self.hub.stop_server(server.user, server.name)
        except HubAPIError as e:
            self._culled.pop(key, None)
            self.log.error("Could not stop %s/%s: %s", server.user, server.name, e)
            return
        self.metrics.culls.labels(decision.reason).inc()
        if outcome in ("stopped", "gone"):
            self._culled.pop(key, None)
            if self.store.close_session(server.user, server.name, now, decision.reason):
                self._session_closed(server.started, now)

    async def cull(self, servers: list[ServerInfo], now: datetime) -> list[CullDecision]:
        decisions = decide(servers, self.opted_out(now), self.policy, now)
        # the hub API client bounds how many stops are in flight
        await asyncio.gather(*(self._stop(d, now) for d in decisions))
        return decisions

    def sample(self, now: datetime) -> None:
        """Record how many users are active and servers running, for the charts and metrics."""
        active_since = now - self.active_window
        active = {s.user for s in self.servers if s.last_activity and s.last_activity >= active_since}
        self.store.record_sample(now, len(active), len(self.servers))
        if self._node_hours is not None:
            self._node_hours.add(now, len(self.servers))
        self.metrics.running_servers.set(len(self.servers))
        self.metrics.active_users.set(len(active))
        self.metrics.set_node_hours(self.node_hours())

    async def run_pass(self, now: datetime | None = None) -> list[CullDecision]:
        now = now or now_utc()
        servers = []
        async for user in self.hub.users(state="ready"):
            servers.extend(server_infos(user))
        self.reconcile(servers, now)
        self._first_pass = False
        decisions = await self.cull(servers, now)
        culled = set() if self.policy.dry_run else {(d.server.user, d.server.name) for d in decisions}
        self.servers = [s for s in servers if (s.user, s.name) not in culled]
        self.sample(now)
        return decisions
