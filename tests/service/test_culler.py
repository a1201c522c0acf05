"""The pass and the events around a small hub API over real HTTP (tornado, in this process).

The stand-in answers what the pass asks (the paged user listing, one user, stopping a server)
and, like JupyterHub, writes a server-action event through the real spool handler before it
answers a stop. The e2e tests (test_e2e*.py) run the same against a real hub; these pin the
rules quickly: who a stop belongs to, and the peaks between samples.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from jupyterhub_workshop.service.culler import Culler
from jupyterhub_workshop.service.events import SERVER_ACTION, EventSpoolReader, ServerEventSpool
from jupyterhub_workshop.service.hub_api import HubAPI
from jupyterhub_workshop.service.metrics import WorkshopMetrics
from jupyterhub_workshop.service.policy import CullPolicy
from jupyterhub_workshop.service.store import UsageStore


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class StandInHub:
    """Users and their servers, served as JupyterHub's REST API serves them."""

    def __init__(self, spool_path=None):
        self.users: dict[str, dict] = {}
        self.delete_status = 204  # or an error status, or 0 for "never answers in time"
        self.spool = ServerEventSpool(spool_path) if spool_path else None
        self.deletes: list[str] = []

    def event(self, action: str, user: str, server: str = "", at: datetime | None = None) -> None:
        if self.spool is not None:
            capsule = {
                "__timestamp__": (at or datetime.now(UTC)).isoformat() + "Z",
                "__schema__": SERVER_ACTION,
                "__schema_version__": "1",
                "__metadata_version__": 1,
                "action": action,
                "username": user,
                "servername": server,
            }
            self.spool.handle(logging.makeLogRecord({"msg": capsule, "levelno": logging.INFO}))

    def start(
        self, user: str, server: str = "", *, started=None, last_activity=None, profile=None, event=True
    ):
        started = started or datetime.now(UTC)
        model = self.users.setdefault(user, {"name": user, "admin": False, "groups": [], "servers": {}})
        model["servers"][server] = {
            "name": server,
            "ready": True,
            "pending": None,
            "started": iso(started),
            "last_activity": iso(last_activity or started),
            "user_options": {"profile": profile} if profile else {},
        }
        if event:
            self.event("start", user, server, started)

    def stop(self, user: str, server: str = "", *, event=True, at=None) -> None:
        self.users[user]["servers"].pop(server, None)
        if event:
            self.event("stop", user, server, at)

    def app(self) -> web.Application:
        hub = self

        class Users(web.RequestHandler):
            def get(self):
                items = [u for u in hub.users.values() if u["servers"]]
                offset, limit = int(self.get_argument("offset", 0)), int(self.get_argument("limit", 200))
                page = items[offset : offset + limit]
                following = {"offset": offset + limit} if offset + limit < len(items) else None
                self.finish(
                    {
                        "items": page,
                        "_pagination": {
                            "offset": offset,
                            "limit": limit,
                            "total": len(items),
                            "next": following,
                        },
                    }
                )

        class User(web.RequestHandler):
            def get(self, name):
                if name not in hub.users:
                    raise web.HTTPError(404)
                self.finish(hub.users[name])

        class Server(web.RequestHandler):
            async def delete(self, name, server=""):
                hub.deletes.append(name)
                if hub.delete_status == 0:
                    raise web.HTTPError(599)  # stands for a request that got no answer
                if hub.delete_status != 204:
                    raise web.HTTPError(hub.delete_status)
                hub.stop(name, server)  # the event is written before the answer, as the hub does
                self.set_status(204)

        return web.Application(
            [
                (r"/hub/api/users", Users),
                (r"/hub/api/users/([^/]+)", User),
                (r"/hub/api/users/([^/]+)/server", Server),
                (r"/hub/api/users/([^/]+)/servers/([^/]*)", Server),
            ]
        )


@pytest.fixture
async def rig(tmp_path):
    made = []

    async def build(
        policy: CullPolicy, events: bool = True, active_window=timedelta(minutes=10), users_per_node=0
    ):
        spool = tmp_path / "events.jsonl" if events else None
        hub = StandInHub(spool)
        [sock] = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(hub.app())
        server.add_sockets([sock])
        api = HubAPI(f"http://127.0.0.1:{sock.getsockname()[1]}/hub/api", "token", retries=0, backoff=0.01)
        store = UsageStore(f"sqlite:///{tmp_path / 'usage.sqlite'}")
        metrics = WorkshopMetrics()
        reader = EventSpoolReader(spool) if events else None
        culler = Culler(
            api,
            store,
            metrics,
            policy,
            active_window=active_window,
            users_per_node=users_per_node,
            events=reader,
        )
        made.append((server, api, store))
        return hub, culler, store, metrics

    yield build
    for server, api, store in made:
        server.stop()
        api.close()
        store.close()


IDLE_5_MIN = CullPolicy(idle_timeout=timedelta(minutes=5))


def reasons(store: UsageStore) -> dict[str, str | None]:
    return {s.user: s.stop_reason for s in store.iter_sessions()}


async def test_without_events_a_server_gone_after_the_first_pass_was_its_user(rig):
    hub, culler, store, _ = await rig(IDLE_5_MIN, events=False)
    hub.start("a", event=False)
    hub.start("b", event=False)
    await culler.run_pass()
    hub.stop("a", event=False)
    await culler.run_pass()
    assert reasons(store) == {"a": "user", "b": None}


async def test_with_events_a_server_gone_without_one_died_on_its_own(rig):
    hub, culler, store, _ = await rig(IDLE_5_MIN)
    hub.start("a")
    hub.start("b")
    await culler.run_pass()
    hub.stop("a", event=False)  # no event: the hub noticed it had died
    hub.stop("b")
    await culler.run_pass()
    assert reasons(store) == {"a": "unknown", "b": "user"}


async def test_a_cull_closes_its_session_at_the_hub_stop_time_and_counts_once(rig):
    hub, culler, store, metrics = await rig(IDLE_5_MIN)
    old = datetime.now(UTC) - timedelta(hours=1)
    hub.start("a", started=old, last_activity=old, profile="large")
    decisions = await culler.run_pass()
    assert [d.reason for d in decisions] == ["idle"] and hub.deletes == ["a"]
    [session] = store.iter_sessions()
    assert (session.stop_reason, session.profile) == ("idle", "large")
    await culler.run_pass()
    assert store.culls_by_reason() == {"idle": 1}
    assert 'workshop_culls_total{reason="idle"} 1.0' in metrics.render().decode()


async def test_a_refused_stop_then_a_user_stop_is_not_a_cull(rig):
    hub, culler, store, metrics = await rig(IDLE_5_MIN)
    old = datetime.now(UTC) - timedelta(hours=1)
    hub.start("a", started=old, last_activity=old)
    hub.delete_status = 403  # the hub answered: nothing was stopped
    await culler.run_pass()
    assert store.sent_culls() == {}
    hub.stop("a")  # then the user stops it
    await culler.run_pass()
    assert reasons(store) == {"a": "user"} and store.culls_by_reason() == {}
    assert 'workshop_culls_total{reason="idle"} 0.0' in metrics.render().decode()


async def test_a_stop_lost_on_the_way_still_counts_as_the_cull(rig):
    hub, culler, store, _ = await rig(IDLE_5_MIN)
    old = datetime.now(UTC) - timedelta(hours=1)
    hub.start("a", started=old, last_activity=old)
    hub.delete_status = 0  # no answer: it may have reached the hub
    await culler.run_pass()
    assert set(store.sent_culls()) == {("a", "")}
    hub.stop("a")  # it had: the hub stops it
    await culler.run_pass()
    assert reasons(store) == {"a": "idle"} and store.culls_by_reason() == {"idle": 1}


async def test_a_stop_no_longer_due_is_forgotten(rig):
    hub, culler, store, _ = await rig(IDLE_5_MIN)
    old = datetime.now(UTC) - timedelta(hours=1)
    hub.start("a", started=old, last_activity=old)
    hub.delete_status = 0
    await culler.run_pass()
    hub.users["a"]["servers"][""]["last_activity"] = iso(datetime.now(UTC))  # back at work
    await culler.run_pass()
    assert store.sent_culls() == {}
    hub.stop("a")
    await culler.run_pass()
    assert reasons(store) == {"a": "user"}


async def test_dry_run_records_one_decision_per_session(rig):
    hub, culler, store, _ = await rig(CullPolicy(idle_timeout=timedelta(minutes=5), dry_run=True))
    old = datetime.now(UTC) - timedelta(hours=1)
    hub.start("a", started=old, last_activity=old)
    for _ in range(3):
        await culler.run_pass()
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT username, dry_run FROM workshop_culls").all()
    assert [(user, bool(dry)) for user, dry in rows] == [("a", True)] and hub.deletes == []
    assert reasons(store) == {"a": None} and store.culls_by_reason() == {}


async def test_peaks_between_passes_come_from_the_events(rig):
    hub, culler, store, metrics = await rig(CullPolicy(idle_timeout=None))
    await culler.run_pass()
    for name in "abcde":
        hub.start(name)
    culler.drain_events()  # as the service does every second
    for name in "abc":
        hub.stop(name)
    culler.drain_events()
    for name in "fgh":
        hub.start(name)
    for name in "defgh":
        hub.stop(name)
    await culler.run_pass()  # the pass itself sees nothing running
    last = store.samples()[-1]
    assert (last.running_servers, last.peak_running_servers) == (0, 5)
    assert (last.active_users, last.peak_active_users) == (0, 5)
    assert max(running for _, (_, running) in store.sample_peaks(300)) == 5
    assert sorted(reasons(store)) == list("abcdefgh") and set(reasons(store).values()) == {"user"}
    assert "workshop_session_duration_seconds_count 8.0" in metrics.render().decode()


async def test_profiles_of_sessions_opened_by_events(rig):
    hub, culler, store, _ = await rig(IDLE_5_MIN)
    culler.drain_events()  # the service has started reading (what came before is history)
    hub.start("a", profile="gpu")
    culler.drain_events()
    await culler.fill_profiles()
    hub.stop("a")
    culler.drain_events()
    [session] = store.iter_sessions()
    assert (session.profile, session.stop_reason) == ("gpu", "user")


def test_stand_in_event_lines_are_what_the_reader_reads(tmp_path):
    hub = StandInHub(tmp_path / "events.jsonl")
    hub.event("start", "a")
    [line] = (tmp_path / "events.jsonl").read_text().splitlines()
    assert json.loads(line)["__schema__"] == SERVER_ACTION


async def test_servers_the_hub_stopped_while_the_service_was_away_end_when_last_known(rig):
    """A hub stopped for the night stops its services, then its servers, and writes no event
    for those stops: the sessions end when the service stopped, and neither they nor the
    node-hours run on until it comes back an hour later."""
    t1 = datetime.now(UTC)
    hub, culler, store, _ = await rig(CullPolicy(idle_timeout=None), users_per_node=1)
    culler.drain_events()
    for name in "abc":
        hub.start(name, started=t1 - timedelta(minutes=5))
    await culler.run_pass(now=t1)
    hub.stop("c", at=t1 + timedelta(seconds=20))  # its event: read before the service stops
    culler.stopping(t1 + timedelta(seconds=40))  # the hub's SIGTERM
    for name in "ab":
        hub.stop(name, event=False)  # the hub's shutdown
    back = t1 + timedelta(hours=1)
    restarted = Culler(
        culler.hub,
        store,
        WorkshopMetrics(),
        culler.policy,
        active_window=timedelta(minutes=10),
        users_per_node=1,
        events=culler.events,
    )
    await restarted.run_pass(now=back)
    rows = {s.user: (s.stopped, s.stop_reason) for s in store.iter_sessions()}
    assert rows == {
        "a": (t1 + timedelta(seconds=40), "unknown"),
        "b": (t1 + timedelta(seconds=40), "unknown"),
        "c": (t1 + timedelta(seconds=20), "user"),
    }
    # the last pass counted three servers; they count until the service stopped, then none
    assert restarted.node_hours() == pytest.approx(3 * 40 / 3600)
    assert store.node_seconds(1).hours == pytest.approx(restarted.node_hours())
    assert [s.running_servers for s in store.samples()] == [3, 0, 0]


async def test_a_killed_service_ends_what_went_meanwhile_at_its_last_pass(rig):
    t1 = datetime.now(UTC)
    hub, culler, store, _ = await rig(CullPolicy(idle_timeout=None))
    hub.start("a", started=t1 - timedelta(minutes=5))
    await culler.run_pass(now=t1)
    await culler.run_pass(now=t1 + timedelta(minutes=1))
    hub.stop("a", event=False)  # died on its own, or went with the hub while the service was gone
    await culler.run_pass(now=t1 + timedelta(hours=1))
    [session] = store.iter_sessions()
    assert (session.stopped, session.stop_reason) == (t1 + timedelta(minutes=1), "unknown")


async def test_without_events_a_stop_found_by_a_pass_is_at_that_pass(rig):
    t1 = datetime.now(UTC)
    hub, culler, store, _ = await rig(IDLE_5_MIN, events=False)
    hub.start("a", event=False, started=t1 - timedelta(minutes=5), last_activity=t1)
    await culler.run_pass(now=t1)
    hub.stop("a", event=False)
    await culler.run_pass(now=t1 + timedelta(minutes=1))
    [session] = store.iter_sessions()
    assert (session.stopped, session.stop_reason) == (t1 + timedelta(minutes=1), "user")
