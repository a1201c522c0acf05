"""The service tells the truth, on a real hub behind the real proxy: sessions at the hub's own
start and stop times, the peaks between passes, and culls counted once through a ``kill -9``
in the middle of a night pass and through stops that fail.

Single-user servers are JupyterHub's mock single-user server (about a second to start); the hub
writes its server events to the spool file the hub configuration installs
(``install_server_events``) and the service reads it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from jupyterhub_workshop.service.app import WorkshopService

from ..harness.browser import login, new_session
from ..harness.faulty import FaultyProxy
from ..harness.hub import wait_for
from .test_e2e import ServiceHub, night_settings

pytestmark = pytest.mark.e2e

# the hub's log lines that go with its server events (same handler, same moment)
HUB_LOG = re.compile(
    r"^\[I (?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) JupyterHub base:\d+\] "
    r"User (?P<user>\S+?)(?: server)? took [\d.]+ seconds to (?P<action>start|stop)$",
    re.M,
)


def hub_log_times(hub: ServiceHub) -> dict[str, list[tuple[str, datetime]]]:
    """user -> [(action, time)] from the hub's log (the hub runs with TZ=UTC)."""
    times: dict[str, list] = {}
    for m in HUB_LOG.finditer(hub.hub.log_text()):
        at = datetime.strptime(m["at"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        times.setdefault(m["user"], []).append((m["action"], at))
    return times


def true_peak(intervals: list[tuple[datetime, datetime]]) -> int:
    """Most intervals open at once (a stop at the same instant as a start comes first)."""
    points = sorted(
        [(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda p: (p[0], p[1])
    )
    peak = running = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    return peak


def api_quiet(hub: ServiceHub, path: str, method: str = "GET", data: bytes | None = None):
    try:
        return hub.hub.api(path, method=method, data=data)
    except urllib.error.HTTPError as e:
        if e.code not in (400, 404, 409):
            raise
        return None


def start_servers(hub: ServiceHub, names: list[str]) -> None:
    """Start the servers of ``names`` at once (creating the users), wait until all are ready."""
    api_quiet(hub, "/users", method="POST", data=json.dumps({"usernames": names}).encode())
    with ThreadPoolExecutor(len(names)) as pool:
        list(pool.map(lambda n: hub.hub.api(f"/users/{n}/server", method="POST", data=b"{}"), names))
    wait_for(lambda: all(hub.running(n) for n in names), 60, interval=0.2, message=f"{names} to be ready")


def stop_servers(hub: ServiceHub, names: list[str]) -> None:
    with ThreadPoolExecutor(len(names)) as pool:
        list(pool.map(lambda n: hub.hub.api(f"/users/{n}/server", method="DELETE"), names))
    wait_for(
        lambda: not any(hub.hub.api(f"/users/{n}")["servers"] for n in names),
        60,
        interval=0.2,
        message=f"{names} to stop",
    )


def sample_times(hub: ServiceHub) -> list[datetime]:
    return [at for (at,) in hub.query("SELECT at FROM workshop_samples ORDER BY id")]


async def staff_download(hub: ServiceHub, path: str) -> str:
    async with new_session() as s:
        assert (await login(s, hub.url, "ws004", hub.cards["ws004"].password)).ok  # a hub admin
        async with s.get(hub.service_url + path) as r:
            assert r.status == 200
            return await r.text()


# --------------------------------------------------------------------------------------------
# sessions at the hub's times, peaks between passes


@pytest.fixture(scope="module")
def events_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("events")
    hub = ServiceHub(
        root,
        # passes far enough apart for the burst of sessions below (about 10 s) to fall between two
        {"cull_every": 20, "idle_timeout": 0},
        # the hub notices a server that died within a second (its default is every 30 s)
        extra_config="c.Spawner.poll_interval = 1",
        hub_env={"TZ": "UTC"},  # its log in UTC, to compare with the records
    ).start()
    yield hub
    hub.stop()


@pytest.mark.jh55  # the hub z2jh ships (JupyterHub 5.5) emits the same events
async def test_ten_short_sessions_between_two_passes_are_recorded_at_the_hub_times(events_hub):
    hub = events_hub
    names = [f"t{i:02d}" for i in range(1, 11)]
    wait_for(lambda: len(sample_times(hub)) >= 1, 60, message="the first pass")
    before = len(sample_times(hub))
    wait_for(lambda: len(sample_times(hub)) > before, 40, message="a pass to end")
    burst_from = datetime.now(UTC)
    # ten sessions, at most five at once, all between this pass and the next (20 s later)
    start_servers(hub, names[:5])
    stop_servers(hub, names[:3])
    start_servers(hub, names[5:8])
    stop_servers(hub, names[3:8])
    start_servers(hub, names[8:])
    stop_servers(hub, names[8:])
    burst_to = datetime.now(UTC)
    passes_in_burst = sum(burst_from <= parse(at) <= burst_to for at in sample_times(hub))
    after = len(sample_times(hub))
    wait_for(lambda: len(sample_times(hub)) > after, 40, message="the next pass")

    log = hub_log_times(hub)
    intervals = {}
    for name in names:
        actions = log.get(name, [])
        assert [a for a, _ in actions] == ["start", "stop"], (name, actions)
        intervals[name] = (actions[0][1], actions[1][1])
    peak = true_peak(list(intervals.values()))
    assert peak == 5

    rows = list(csv.DictReader(io.StringIO(await staff_download(hub, "usage.csv"))))
    recorded = {row["user"]: row for row in rows if row["user"] in names}
    assert sorted(recorded) == names  # every one of them, none missed between passes
    for name, (started, stopped) in intervals.items():
        row = recorded[name]
        assert abs(parse(row["started"]) - started) <= timedelta(seconds=1), (name, row, started)
        assert abs(parse(row["stopped"]) - stopped) <= timedelta(seconds=1), (name, row, stopped)
        assert row["stop_reason"] == "user"

    # what the admin page's charts read: the peaks, not only what each pass saw
    with hub.store() as store:
        peaks = store.sample_peaks(300)
        at_passes = [(s.active_users, s.running_servers) for s in store.samples()]
    assert max(running for _, (_, running) in peaks) == peak
    assert max(active for _, (active, _) in peaks) == peak  # each had just started: all active
    if passes_in_burst == 0:  # (on a slow machine a pass may fall inside the burst)
        assert max(running for _, running in at_passes) < peak  # the passes alone miss it


async def test_a_server_that_dies_on_its_own_is_closed_as_unknown(events_hub):
    hub = events_hub
    start_servers(hub, ["t11"])
    wait_for(
        lambda: hub.query("SELECT count(*) FROM workshop_sessions WHERE username = 't11'")[0][0] == 1,
        10,
        message="t11's start event to open its session",
    )
    pid = hub.hub.api("/users/t11")["servers"][""]["state"]["pid"]
    os.kill(pid, signal.SIGKILL)  # the hub notices on its next poll; it emits no event for it
    wait_for(lambda: not hub.running("t11"), 20, message="the hub to notice t11's server died")
    wait_for(
        lambda: (
            hub.query("SELECT stop_reason FROM workshop_sessions WHERE username = 't11'") == [("unknown",)]
        ),
        45,
        message="the next pass to close t11's session",
    )


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------------------------
# culls counted once: kill -9 in the middle of a night pass; a stop that fails


class WatchingProxy(FaultyProxy):
    """FaultyProxy that also notes each DELETE as it arrives, and can fail the next DELETEs."""

    def __init__(self, target: str):
        super().__init__(target)
        self.deletes_arrived: list[str] = []
        self.fail_deletes = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "DELETE":
            self.deletes_arrived.append(request.path)
            if self.fail_deletes > 0:
                self.fail_deletes -= 1
                self.seen.append((request.method, request.path_qs, 503))
                return web.json_response({"status": 503, "message": "injected failure"}, status=503)
        return await super()._handle(request)

    def deletes_answered(self) -> list[tuple[str, int]]:
        return [(path, status) for method, path, status in self.seen if method == "DELETE"]


def watched_hub(root, settings: dict) -> ServiceHub:
    """A ServiceHub whose service reaches the hub through a WatchingProxy."""
    return ServiceHub(root, settings, via_proxy=True, hub_env={"TZ": "UTC"}, proxy_class=WatchingProxy)


def test_a_kill_9_in_the_middle_of_a_night_pass_counts_each_cull_once(tmp_path):
    names = [f"n{i:02d}" for i in range(1, 13)]
    hub = watched_hub(tmp_path, {**night_settings(active=True), "concurrency": 3, "api_retries": 2})
    hub.start()
    try:
        # the servers start while the service is paused, so one night pass meets all twelve
        paused = hub.service_pid()
        os.kill(paused, signal.SIGSTOP)
        try:
            start_servers(hub, names)
        finally:
            hub.proxy.delete_delay = 1.5
            os.kill(paused, signal.SIGCONT)

        def mid_pass():
            answered = len(hub.proxy.deletes_answered())
            return answered >= 3 and len(hub.proxy.deletes_arrived) > answered

        wait_for(mid_pass, 60, interval=0.05, message="some stops done and some in flight")
        os.kill(paused, signal.SIGKILL)
        in_flight = set(hub.proxy.deletes_arrived) - {path for path, _ in hub.proxy.deletes_answered()}
        in_flight_users = {path.split("/")[-2] for path in in_flight}
        assert in_flight_users, "the kill must land while stops are in flight"
        wait_for(
            lambda: (hub.service_pid() or paused) != paused, 30, message="the hub to restart the service"
        )
        wait_for(
            lambda: (
                not any(hub.running(n) for n in names)
                and hub.query("SELECT count(*) FROM workshop_sessions WHERE stopped IS NULL")[0][0] == 0
            ),
            90,
            message="every server stopped and every session closed",
        )
        reasons = dict(hub.query("SELECT username, stop_reason FROM workshop_sessions"))
        assert reasons == {name: "night" for name in names}  # none "unknown", sent-before-kill included
        assert {reasons[user] for user in in_flight_users} == {"night"}
        with hub.store() as store:
            assert store.culls_by_reason() == {"night": 12}
        assert hub.query("SELECT count(*) FROM workshop_culls WHERE dry_run = 0")[0][0] == 12
        text = fetch_text(f"{hub.service_url}metrics")
        assert 'workshop_culls_total{reason="night"} 12.0' in text
        # each stop at the hub's time: the records and the hub's log agree
        log = hub_log_times(hub)
        stops = dict(hub.query("SELECT username, stopped FROM workshop_sessions"))
        for name in names:
            [logged] = [at for action, at in log[name] if action == "stop"]
            assert abs(parse(stops[name]) - logged) <= timedelta(seconds=1), name
    finally:
        hub.stop()


def fetch_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_a_stop_that_fails_is_tried_again_and_counted_once(tmp_path):
    hub = watched_hub(tmp_path, {"idle_timeout": 2, "api_retries": 1})
    hub.start()
    try:
        hub.proxy.fail_deletes = 2  # both tries of the first pass's stop: 503
        hub.spawn("ws001")
        wait_for(lambda: not hub.running("ws001"), 60, message="ws001 to be stopped as idle in the end")
        wait_for(
            lambda: (
                hub.query("SELECT stop_reason FROM workshop_sessions WHERE username = 'ws001'") == [("idle",)]
            ),
            20,
            message="ws001's session closed as idle",
        )
        statuses = [status for _, status in hub.proxy.deletes_answered()]
        assert statuses[:2] == [503, 503] and statuses[2] in (202, 204), statuses
        assert hub.query("SELECT username, reason, dry_run FROM workshop_culls") == [("ws001", "idle", 0)]
        with hub.store() as store:
            assert store.culls_by_reason() == {"idle": 1}
        hub.wait_passes(2)
        assert 'workshop_culls_total{reason="idle"} 1.0' in fetch_text(f"{hub.service_url}metrics")
        assert "Could not stop ws001/" in (tmp_path / "hub" / "hub.log").read_text()
    finally:
        hub.stop()


def test_the_service_restarted_catches_up_on_events_it_missed(tmp_path):
    """Events written while the service is down wait in the spool: after a restart the sessions
    start and stop at the hub's times, not at the next pass."""
    hub = ServiceHub(tmp_path, {"cull_every": 1, "idle_timeout": 0}, hub_env={"TZ": "UTC"})
    hub.start()
    try:
        paused = hub.service_pid()
        os.kill(paused, signal.SIGSTOP)  # a service that is not reading (as while it restarts)
        try:
            start_servers(hub, ["ws001", "ws002"])
            stop_servers(hub, ["ws001"])
        finally:
            os.kill(paused, signal.SIGKILL)
            os.kill(paused, signal.SIGCONT)
        wait_for(
            lambda: (hub.service_pid() or paused) != paused, 30, message="the hub to restart the service"
        )
        wait_for(
            lambda: hub.query("SELECT count(*) FROM workshop_sessions")[0][0] == 2,
            30,
            message="both sessions recorded",
        )
        log = hub_log_times(hub)
        rows = {
            u: (started, stopped, reason)
            for u, started, stopped, reason in hub.query(
                "SELECT username, started, stopped, stop_reason FROM workshop_sessions"
            )
        }
        assert abs(parse(rows["ws001"][0]) - log["ws001"][0][1]) <= timedelta(seconds=1)
        assert abs(parse(rows["ws001"][1]) - log["ws001"][1][1]) <= timedelta(seconds=1)
        assert rows["ws001"][2] == "user" and rows["ws002"][1:] == (None, None)
    finally:
        hub.stop()


# the hub's shutdown: it stops its services, then its servers
SHUTDOWN = re.compile(
    r"^\[\w (?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) JupyterHub \w+:\d+\] "
    r"(?P<what>Stopping service workshop|Cleaning up single-user servers)",
    re.M,
)


async def test_a_hub_stopped_with_servers_running_ends_their_sessions_when_it_stopped(tmp_path):
    """Stopping a hub stops its services, then its servers, with no server event for those: the
    sessions end when the hub stopped, not when the service came back (an hour later on its
    clock), and the node-hours of that hour are not billed."""
    names = ["ws001", "ws002", "ws003"]
    hub = ServiceHub(
        tmp_path, {"cull_every": 2, "idle_timeout": 0, "users_per_node": 1}, hub_env={"TZ": "UTC"}
    )
    try:
        hub.start()
        start_servers(hub, names)
        wait_for(
            lambda: hub.query("SELECT max(running_servers) FROM workshop_samples")[0][0] == 3,
            30,
            message="a pass that counts the three servers",
        )
    finally:
        hub.hub.stop()  # SIGTERM, as the demo's Ctrl-C or a pod's deletion
    shutdown = {
        m["what"]: datetime.strptime(m["at"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        for m in SHUTDOWN.finditer(hub.hub.log_text())
    }
    service_stopped, cleanup = (
        shutdown["Stopping service workshop"],
        shutdown["Cleaning up single-user servers"],
    )
    # back later, without the managed service: the one in this test comes back on a clock
    # moved one hour on
    hub.hub.config_text += """
c.JupyterHub.services = [s for s in c.JupyterHub.services if s["name"] != "workshop"]
c.JupyterHub.load_roles = [r for r in c.JupyterHub.load_roles if r["name"] not in ("workshop-service", "user")]
"""
    service = WorkshopService()
    try:
        hub.hub.start()
        service.initialize(
            [
                "--config",
                str(hub.service_config),
                f"--WorkshopService.api_url={hub.url}/hub/api",
                f"--WorkshopService.api_token={hub.hub.api_token}",
            ]
        )
        try:
            await service.culler.run_pass(now=cleanup + timedelta(hours=1))
            node_hours = service.culler.node_hours()
        finally:
            service.hub.close()
            service.store.close()
    finally:
        hub.stop()
    rows = hub.query(
        "SELECT username, started, stopped, stop_reason FROM workshop_sessions ORDER BY username"
    )
    assert [(user, reason) for user, _, _, reason in rows] == [(name, "unknown") for name in names]
    for user, _, stopped, _ in rows:
        # the service noted them running as the hub stopped it, just before the hub stopped them
        assert service_stopped <= parse(stopped) <= cleanup, (user, stopped, shutdown)
    first = min(parse(started) for _, started, _, _ in rows)
    assert 0 < node_hours <= 3 * (cleanup - first).total_seconds() / 3600
