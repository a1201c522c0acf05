"""The workshop service's work: apply the hub's server events as they come, and one pass every
``cull_every`` seconds that reconciles the records with the hub, culls and samples usage.

Sessions start and stop at the times of the hub's own events (:mod:`.events`), whoever started
or stopped the server. The pass reconciles what events do not tell: servers that died on their
own, and whatever happened while the service was down (closed as ``unknown``).

Culls are crash-safe: the decision is recorded against the session it closes, with when its
stop was sent, before the stop is sent. Whatever closes that session afterwards (the hub's stop
event, the pass that finds the server gone, after a ``kill -9`` and a restart too) closes it
with the cull's reason, and the counts by reason are counted from the sessions closed by a
cull, so each cull is counted once.

The decisions are pure (:mod:`.policy`, :mod:`.tally`); this module is the IO around them: the
hub's REST API (:mod:`.hub_api`), the usage store (:mod:`.store`) and the metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta

from ..times import now_utc, parse_machine_time
from .events import EventSpoolReader, SpoolPosition
from .hub_api import HubAPI, HubAPIError
from .metrics import WorkshopMetrics
from .policy import CullDecision, CullPolicy, ServerInfo, decide
from .store import ListedServer, SessionChange, UsageStore
from .tally import UsageTally

#: The spool's name in the usage database (where reading it stopped).
SPOOL_NAME = "server-actions"


def server_info(user: dict, name: str, server: dict) -> ServerInfo:
    """What the policy needs of one server of a hub user model."""
    return ServerInfo(
        user=user["name"],
        name=name,
        admin=bool(user.get("admin")),
        groups=frozenset(user.get("groups") or ()),
        started=parse_machine_time(server.get("started")),
        last_activity=parse_machine_time(server.get("last_activity")),
        ready=bool(server.get("ready")),
        profile=(server.get("user_options") or {}).get("profile"),
    )


def server_infos(user: dict) -> list[ServerInfo]:
    """ServerInfo for each server a hub user model lists (ready, starting or stopping)."""
    return [server_info(user, name, server) for name, server in (user.get("servers") or {}).items()]


class Culler:
    """The service's passes and events, and what the pages need from them."""

    def __init__(
        self,
        hub: HubAPI,
        store: UsageStore,
        metrics: WorkshopMetrics,
        policy: CullPolicy,
        *,
        active_window: timedelta,
        users_per_node: int = 0,
        events: EventSpoolReader | None = None,
        log: logging.Logger | None = None,
        board_file: str | None = None,
    ):
        self.hub = hub
        self.board_file = board_file  # where participants are told why their server stopped
        self.store = store
        self.metrics = metrics
        self.policy = policy
        self.events = events
        self.log = log or logging.getLogger(__name__)
        self.servers: list[ServerInfo] = []  # ready and not culled, as of the last pass (admin page)
        self.tally = UsageTally(active_window)
        # until the first pass lists them: the sessions left open, activity unknown
        self.tally.running = {(s.user, s.server): None for s in store.open_sessions()}
        self._position: SpoolPosition | None = None
        self._profiles_wanted: set[tuple[str, str]] = set()
        self._first_pass = True
        # node-seconds so far, summed by the database once, then added up as samples come
        self._node = store.node_seconds(users_per_node) if users_per_node > 0 else None
        span = store.sample_span()
        self._last_sample = span[1] if span else None
        metrics.load(store.culls_by_reason(), self._node.seconds if self._node else 0.0)

    def node_hours(self) -> float:
        """Node-hours up to the last sample (0 when users per node is not set)."""
        return self._node.hours if self._node else 0.0

    def running_users(self) -> int:
        """People with a running server, as the service knows now: the hub's events keep this
        current between passes, the pass corrects it from the hub's listing."""
        return len({user for user, _ in self.tally.running})

    def night_of(self, now: datetime) -> date | None:
        return self.policy.night.night_of(now) if self.policy.night else None

    def opted_out(self, now: datetime) -> set[str]:
        night = self.night_of(now)
        return self.store.opted_out(night) if night else set()

    # --- events ----------------------------------------------------------------------

    def _changed(self, changes: list[SessionChange], from_events: bool = False) -> None:
        """Follow sessions the store opened or closed: the tally and the metrics."""
        for change in changes:
            if change.opened:
                self.tally.started(change.key, change.started)
                if from_events:
                    self._profiles_wanted.add(change.key)
            else:
                self.tally.stopped(change.key, change.stopped)
                self.metrics.session_closed((change.stopped - change.started).total_seconds(), change.reason)

    def drain_events(self) -> int:
        """Apply the events the hub has written since the last call; how many were read."""
        if self.events is None:
            return 0
        path = str(self.events.path)
        if self._position is None:
            self._position = self.store.spool_position(SPOOL_NAME, path)
            if self._position is None:  # the first time: what came before is not ours
                self._position = self.events.start_position()
                self.store.save_spool_position(SPOOL_NAME, path, self._position)
                self.log.info("Reading the hub's server events from %s", path)
        count = 0
        started: dict[str, datetime] = {}
        for batch in self.events.read(self._position):
            changes = self.store.apply_server_events(batch.events, (SPOOL_NAME, path, batch.position))
            self._position = batch.position
            self._changed(changes, from_events=True)
            count += len(batch.events)
            started.update({e.user: e.at for e in batch.events if e.action == "start"})
        if started:
            self.tell_stops([], started)
        return count

    async def fill_profiles(self) -> None:
        """Profiles of the sessions events opened, from the hub's user model (``user_options``)
        while the server runs: a session shorter than a pass still gets its profile."""
        wanted, self._profiles_wanted = self._profiles_wanted, set()
        by_user = defaultdict(list)
        for user, server in wanted:
            by_user[user].append(server)

        async def lookup(user: str, servers: list[str]) -> None:
            try:
                model = await self.hub.user(user)
            except HubAPIError as e:
                self.log.debug("Profile of %s not read: %s", user, e)
                return
            for name in servers:
                profile = ((model or {}).get("servers", {}).get(name, {}).get("user_options") or {}).get(
                    "profile"
                )
                if profile is not None:
                    self.store.set_profile(user, name, profile)

        await asyncio.gather(*(lookup(user, servers) for user, servers in by_user.items()))

    # --- the pass --------------------------------------------------------------------

    def reconcile(self, listed: list[ServerInfo], now: datetime, listed_from: datetime | None = None) -> None:
        """Open sessions for ready servers not recorded; close those whose server is gone.

        Without events, a server gone after the first pass was stopped by its user, as far as
        the service can tell; with events such a stop closed the session already, so a server
        still recorded and gone died on its own (or went while the service was down): unknown.
        """
        ready = [s for s in listed if s.ready]
        present = {(s.user, s.name) for s in listed}
        vanished = "unknown" if self.events is not None or self._first_pass else "user"
        running = [ListedServer(s.user, s.name, s.profile, s.started) for s in ready]
        changes = self.store.reconcile(running, present, now, vanished, listed_from)
        self._changed(changes)
        self._first_pass = False
        self._resample(changes, now)

    def _resample(self, changes: list[SessionChange], now: datetime) -> None:
        """Sessions closed at an earlier time (nobody saw them stop) stopped counting then: a
        sample at that moment with the servers left, or the running count of the last sample
        would hold (and be billed as node-hours) through the hours the service was away."""
        ended = [c.stopped for c in changes if not c.opened and c.stopped < now]
        if not ended:
            return
        # never before the last sample: what came before it is recorded history
        at = max(ended) if self._last_sample is None else max(max(ended), self._last_sample)
        active, running = self.tally.counts(at)
        self.store.record_sample(at, active, running)
        self._last_sample = at
        if self._node is not None:
            self._node.add(at, running)
            self.metrics.set_node_seconds(self._node.seconds)

    def stopping(self, at: datetime | None = None) -> None:
        """The service stops: with the hub's events read to the end, the servers of the sessions
        still open were running now (a hub that shuts down stops its services, then its
        servers, and writes no event for those stops)."""
        if self.events is None:
            return  # without events a stop since the last pass is unknown: the pass is the last word
        self.drain_events()
        self.store.seen_running(at or now_utc())

    async def _stop(self, decision: CullDecision, now: datetime, confirmed: dict) -> None:
        server = decision.server
        key = (server.user, server.name)
        if self.policy.dry_run:
            self.store.record_cull(now, server.user, server.name, decision.reason, True)
            self.log.info("[dry run] would stop %s/%s: %s", server.user, server.name, decision.detail)
            return
        # recorded before it is sent: after a crash, whatever closes the session is this cull
        cull_id = self.store.record_cull(
            now, server.user, server.name, decision.reason, False, sent=now_utc()
        )
        self.log.info("Stopping %s/%s: %s", server.user, server.name, decision.detail)
        try:
            outcome = await self.hub.stop_server(server.user, server.name)
        except HubAPIError as e:
            if e.status != 599:  # an answer, not a lost request: the stop did not happen
                self.store.clear_stop_sent([cull_id])
            self.log.error("Could not stop %s/%s (next pass tries again): %s", server.user, server.name, e)
            return
        if outcome in ("stopped", "gone"):
            confirmed[key] = now_utc()
        # "timeout": still stopping; its stop event (or a later pass) closes the session

    async def cull(self, servers: list[ServerInfo], now: datetime) -> list[CullDecision]:
        decisions = decide(servers, self.opted_out(now), self.policy, now)
        if not self.policy.dry_run:
            # a stop sent earlier for a server that runs on, ready, and is no longer due (it
            # was refused or lost): it is not this server's next stop
            decided = {(d.server.user, d.server.name) for d in decisions}
            ready = {(s.user, s.name) for s in servers if s.ready}
            abandoned = [
                cull_id
                for key, (cull_id, _) in self.store.sent_culls().items()
                if key in ready and key not in decided
            ]
            self.store.clear_stop_sent(abandoned)
        confirmed: dict[tuple[str, str], datetime] = {}
        # the hub API client bounds how many stops are in flight
        await asyncio.gather(*(self._stop(d, now, confirmed) for d in decisions))
        reasons = {(d.server.user, d.server.name): d.reason for d in decisions}
        self.tell_stops(
            [(user, server, reasons[user, server], at) for (user, server), at in confirmed.items()]
        )
        if confirmed:
            # the hub writes its stop event before it answers: the events close these sessions
            # at the hub's own stop time; without events, the answer's time closes them
            self.drain_events()
            for (user, server), at in confirmed.items():
                change = self.store.close_open_session(user, server, at, "unknown")
                if change is not None:
                    self._changed([change])
        return decisions

    def tell_stops(
        self, stops: list[tuple[str, str, str, datetime]], started: dict[str, datetime] | None = None
    ) -> None:
        """Note on the board why these servers stopped (user, server, reason, when), and forget
        the notices of users who have ``started`` a server since theirs (user: when): "shown
        until they next start a server". One locked write, only when something changed."""
        started = started or {}
        if not self.board_file or not (stops or started):
            return
        from ..board import Stop, update_board

        def change(board):
            for user, server, reason, at in stops:
                board = board.stopped(user, Stop(reason, at, server))
            gone = {u for u, stop in board.stops.items() if u in started and started[u] > stop.at}
            if gone:  # replace(): the board's other parts (restart notices) stay as they are
                board = replace(board, stops={u: s for u, s in board.stops.items() if u not in gone})
            return board

        try:
            update_board(self.board_file, change)
        except (OSError, ValueError) as e:
            self.log.error("Could not note the stops on the board %s: %s", self.board_file, e)

    def sample(self, at: datetime) -> None:
        """Record active users and running servers now, with their peaks since the last sample."""
        sample = self.tally.take(at)
        self.store.record_sample(
            at,
            sample.active_users,
            sample.running_servers,
            sample.peak_active_users,
            sample.peak_running_servers,
        )
        self._last_sample = at
        if self._node is not None:
            self._node.add(at, sample.running_servers)
            self.metrics.set_node_seconds(self._node.seconds)
        self.metrics.active_users.set(sample.active_users)

    async def run_pass(self, now: datetime | None = None) -> list[CullDecision]:
        clock = now is None
        self.drain_events()  # what happened since the last pass, in order, before the listing
        # a server whose start event comes after this moment may be missing from the listing
        listed_from = now_utc() if clock else now
        listed = []
        async for user in self.hub.users(state="active"):
            listed.extend(server_infos(user))
        now = now_utc() if clock else now
        self.drain_events()  # and what happened while the listing was made
        self.reconcile(listed, now, listed_from)
        stopping = {(s.user, s.name) for s in listed if not s.ready}
        self.tally.refresh(
            {
                (s.user, s.name): s.last_activity
                for s in listed
                if s.ready or ((s.user, s.name) in stopping and (s.user, s.name) in self.tally.running)
            },
            now,
        )
        ready = [s for s in listed if s.ready]
        # without events (or one missed): a server listed as started after the notice
        latest: dict[str, datetime] = {}
        for s in listed:
            if s.started is not None:
                latest[s.user] = max(latest.get(s.user, s.started), s.started)
        self.tell_stops([], latest)
        decisions = await self.cull(ready, now)
        culled = set() if self.policy.dry_run else {(d.server.user, d.server.name) for d in decisions}
        self.servers = [s for s in ready if (s.user, s.name) not in culled]
        self.sample(now_utc() if clock else now)
        return decisions
