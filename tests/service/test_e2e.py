"""The workshop service as a managed service of a real hub behind the real proxy.

Single-user servers are JupyterHub's mock single-user server run as local processes, so
servers start in about a second; the service talks to the hub only through its REST API
(sometimes through a real HTTP hop that injects failures).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.error
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from jupyterhub_workshop.login.issuing import Batch, generate
from jupyterhub_workshop.login.printing import read_cards_csv
from jupyterhub_workshop.service.store import UsageStore

from ..harness.browser import login, new_session
from ..harness.faulty import FaultyProxy
from ..harness.hub import HubProcess, free_port, wait_for

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(
    os.environ.get("WORKSHOP_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)


class ServiceHub:
    """A hub with workshop cards, mock single-user servers and the workshop service."""

    def __init__(self, root: Path, service_settings: dict, via_proxy: bool = False):
        self.root = root
        cards_dir = root / "cards"
        generate(cards_dir, Batch("ws", 4, 1))
        self.cards = {c.username: c for c in read_cards_csv(cards_dir / "cards.csv")}
        self.db = root / "usage.sqlite"
        self.service_port = free_port()
        self.proxy: FaultyProxy | None = None
        hub = HubProcess(root / "hub", "")
        # WorkshopService traits: the hub configuration writes them to the service's config file
        settings = {"db_url": f"sqlite:///{self.db}", "cull_every": 0.5, "api_retries": 6, **service_settings}
        self.service_config = root / "workshop-service.json"
        if via_proxy:
            self.proxy = FaultyProxy(f"http://127.0.0.1:{hub.hub_port}").start()
            settings["api_url"] = f"{self.proxy.url}/hub/api"
        hub.config_text += f"""
import sys
from jupyterhub_workshop.hubconfig.services import workshop_roles, workshop_service
c.JupyterHub.authenticator_class = "workshop"
c.WorkshopAuthenticator.accounts_file = {str(cards_dir / "accounts.yaml")!r}
c.WorkshopAuthenticator.instructors_are_admins = False
c.Authenticator.admin_users = {{"ws004"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(root / "homes" / "{username}")!r}
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.tests.mocksu"]
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.JupyterHub.services.append(workshop_service({settings!r}, {str(self.service_config)!r},
                                              url="http://127.0.0.1:{self.service_port}"))
c.JupyterHub.load_roles.extend(workshop_roles())
"""
        self.hub = hub
        self.url = hub.url
        self.service_url = f"{hub.url}/services/workshop/"

    def start(self) -> ServiceHub:
        self.hub.start()
        wait_for(lambda: self.service_pid(), 30, message="the workshop service process")
        return self

    def stop(self) -> None:
        self.hub.stop()
        if self.proxy:
            self.proxy.stop()

    def service_pid(self) -> int | None:
        # the service's command line names its config file, unique to this hub
        out = subprocess.run(
            ["pgrep", "-f", f"service --config {self.service_config}"], capture_output=True, text=True
        ).stdout.split()
        return int(out[0]) if out else None

    def store(self) -> UsageStore:
        return UsageStore(f"sqlite:///{self.db}")

    def query(self, sql: str) -> list[tuple]:
        engine = sa.create_engine(f"sqlite:///{self.db}")
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(sa.text(sql))]
        finally:
            engine.dispose()

    def spawn(self, name: str) -> None:
        try:
            self.hub.api(f"/users/{name}", method="POST", data=b"{}")
        except urllib.error.HTTPError as e:
            if e.code != 409:  # already there (logged in before)
                raise
        self.hub.api(f"/users/{name}/server", method="POST", data=b"{}")
        wait_for(lambda: self.running(name), 30, message=f"{name}'s server")

    def running(self, name: str) -> bool:
        server = self.hub.api(f"/users/{name}")["servers"].get("")
        return bool(server and server.get("ready"))

    def samples(self) -> int:
        return self.query("SELECT count(*) FROM workshop_samples")[0][0]

    def wait_passes(self, n: int) -> None:
        """Let the service complete ``n`` more passes (each records one sample)."""
        target = self.samples() + n
        wait_for(lambda: self.samples() >= target, 30, message=f"{n} more service passes")


async def open_service(session, hub: ServiceHub, path: str = "") -> tuple[int, str]:
    async with session.get(hub.service_url + path) as r:
        return r.status, await r.text()


def night_settings(active: bool) -> dict:
    zone = "America/Denver"
    now = datetime.now(ZoneInfo(zone))
    start = now - timedelta(hours=2) if active else now + timedelta(hours=3)
    end = now + timedelta(hours=2) if active else now + timedelta(hours=5)
    return {"night_start": f"{start:%H:%M}", "night_end": f"{end:%H:%M}", "timezone": zone, "idle_timeout": 0}


# --------------------------------------------------------------------------------------------
# night culling, opt-out, exemptions, access control, exports, admin page


@pytest.fixture(scope="module")
def night_hub(tmp_path_factory):
    hub = ServiceHub(tmp_path_factory.mktemp("night"), night_settings(active=True)).start()
    yield hub
    hub.stop()


async def test_participant_sees_only_the_opt_out_page(night_hub):
    hub = night_hub
    async with new_session() as s:
        assert (await login(s, hub.url, "ws001", hub.cards["ws001"].password)).ok
        status, page = await open_service(s, hub)
        assert status == 200
        assert "Keep my server tonight" in page and 'id="servers"' not in page
        assert "/hub/static/css/style.min.css" in page  # the hub's own page template and styles
        for path in ("usage.csv", "usage.json"):
            status, _ = await open_service(s, hub, path)
            assert status == 403


async def test_opt_out_needs_xsrf_and_keeps_the_server_through_the_night(night_hub):
    hub = night_hub
    async with new_session() as s:
        assert (await login(s, hub.url, "ws002", hub.cards["ws002"].password)).ok
        status, page = await open_service(s, hub)
        async with s.post(hub.service_url + "opt-out", data={}, allow_redirects=False) as r:
            assert r.status == 403  # no XSRF token
        assert hub.query("SELECT count(*) FROM workshop_opt_outs")[0][0] == 0
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
        async with s.post(hub.service_url + "opt-out", data={"_xsrf": xsrf}) as r:
            assert r.status == 200
            assert "will be kept running tonight" in await r.text()
    assert [row[0] for row in hub.query("SELECT username FROM workshop_opt_outs")] == ["ws002"]

    # everyone logs in (the instructor joins the exempt group) and starts a server
    for name in ("ws001", "ws003", "ws004", "wsinstructor01"):
        async with new_session() as s:
            assert (await login(s, hub.url, name, hub.cards[name].password)).ok
    for name in ("ws001", "ws002", "ws004", "wsinstructor01"):
        hub.spawn(name)

    wait_for(lambda: not hub.running("ws001"), 30, message="ws001's server to be stopped for the night")
    hub.wait_passes(3)
    for survivor in ("ws002", "ws004", "wsinstructor01"):  # opted out, admin, exempt group
        assert hub.running(survivor), survivor
    assert hub.query("SELECT username, reason, dry_run FROM workshop_culls") == [("ws001", "night", 0)]
    wait_for(
        lambda: (
            hub.query("SELECT stop_reason FROM workshop_sessions WHERE username = 'ws001'") == [("night",)]
        ),
        10,
        message="ws001's session to be closed as a night cull",
    )


async def test_staff_see_the_admin_page_exports_and_metrics(night_hub):
    hub = night_hub
    wait_for(
        lambda: hub.query("SELECT count(*) FROM workshop_culls")[0][0] >= 1, 30, message="the night cull"
    )
    async with new_session() as s:
        assert (await login(s, hub.url, "ws004", hub.cards["ws004"].password)).ok  # a hub admin
        status, page = await open_service(s, hub)
        assert status == 200
        assert 'id="servers"' in page and "ws002" in page and "kept tonight" in page
        assert re.search(r"night <strong>1</strong>", page)
        assert page.count("<svg") == 3  # active users, running servers, session durations
        status, csv_text = await open_service(s, hub, "usage.csv")
        assert status == 200
        assert csv_text.splitlines()[0] == "user,server,profile,started,stopped,duration_seconds,stop_reason"
        assert any(line.startswith("ws001,") and line.endswith(",night") for line in csv_text.splitlines())
        status, json_text = await open_service(s, hub, "usage.json")
        sessions = json.loads(json_text)["sessions"]
        assert {(x["user"], x["stop_reason"]) for x in sessions} >= {("ws001", "night"), ("ws002", None)}
        status, before = await open_service(s, hub, "usage.csv?end=2000-01-01T00:00:00Z")
        assert before.splitlines()[1:] == []
        status, naive = await open_service(s, hub, "usage.csv?end=2000-01-01")
        assert status == 400 and "no UTC offset" in naive  # typed times carry their offset
        status, later = await open_service(
            s, hub, "usage.csv?start=2099-01-01T00:00:00%2B02:00"
        )  # only still-open sessions overlap
        assert not any(line.startswith("ws001,") for line in later.splitlines())
        assert any(line.startswith("ws002,") for line in later.splitlines())
    async with new_session() as s:  # Prometheus scrapes without a hub login
        status, metrics = await open_service(s, hub, "metrics")
    assert status == 200
    assert 'workshop_culls_total{reason="night"} 1.0' in metrics
    assert re.search(r"^workshop_running_servers 3\.0$", metrics, re.M)
    assert "workshop_session_duration_seconds_count 1.0" in metrics


async def test_admin_page_renders_in_headless_chromium(night_hub):
    playwright = pytest.importorskip(
        "playwright.async_api", reason="playwright (pip) is needed for the browser test"
    )
    chromium = next(
        (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None
    )
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    hub = night_hub
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with playwright.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1400})
            await page.goto(f"{hub.url}/hub/login")
            await page.fill("#username_input", "ws004")
            await page.fill("#password_input", hub.cards["ws004"].password)
            await page.click("#login_submit")
            await page.wait_for_function("!location.pathname.endsWith('/hub/login')")
            await page.goto(hub.service_url)
            await page.wait_for_selector("#workshop-admin")
            assert await page.locator("svg.workshop-chart").count() == 3
            assert await page.locator("#servers tbody tr").count() >= 3
            # the hub's stylesheet applied: the navbar is laid out, not an unstyled list
            assert await page.evaluate("getComputedStyle(document.querySelector('nav')).display") != "inline"
            shot = ARTIFACTS / "workshop-admin-page.png"
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()
    assert shot.stat().st_size > 10_000


# --------------------------------------------------------------------------------------------
# idle culling through a hub that fails and stalls


def test_idle_culls_survive_hub_errors_and_spare_active_servers(tmp_path):
    hub = ServiceHub(tmp_path, {"idle_timeout": 3, "api_timeout": 2}, via_proxy=True)
    hub.proxy.fail_next = 4  # the service's first requests get 503s
    hub.start()
    try:
        # the first faults must all be served before the next ones are armed, or they overwrite each other
        wait_for(lambda: hub.proxy.fail_next == 0, 30, message="the service to meet its first four 503s")
        hub.spawn("ws001")
        hub.spawn("ws002")
        hub.proxy.stall_next = 1  # one request never answers: the client times out and retries
        hub.proxy.fail_next = 2

        def keep_ws002_active():
            body = json.dumps(
                {
                    "servers": {"": {"last_activity": datetime.now(UTC).isoformat()}},
                    "last_activity": datetime.now(UTC).isoformat(),
                }
            ).encode()
            hub.hub.api("/users/ws002/activity", method="POST", data=body)
            faults_served = hub.proxy.fail_next == 0 and hub.proxy.stall_next == 0
            return faults_served and not hub.running("ws001")

        wait_for(keep_ws002_active, 40, interval=0.5, message="ws001 to be stopped as idle")
        assert hub.running("ws002")
        statuses = [status for _, _, status in hub.proxy.seen]
        assert statuses.count(503) >= 6 and 0 in statuses  # failures and the stall were really served
        assert hub.query("SELECT username, reason FROM workshop_culls") == [("ws001", "idle")]
        wait_for(
            lambda: (
                hub.query("SELECT stop_reason FROM workshop_sessions WHERE username = 'ws001'") == [("idle",)]
            ),
            10,
            message="ws001's session to be closed as idle",
        )
        assert "retrying" in hub.hub.log_text()
    finally:
        hub.stop()


# --------------------------------------------------------------------------------------------
# dry run, and a kill -9 in the middle of a pass


def test_dry_run_stops_nothing_and_a_killed_service_loses_no_session(tmp_path):
    hub = ServiceHub(tmp_path, {"idle_timeout": 2, "dry_run": True}, via_proxy=True)
    hub.start()
    try:
        for name in ("ws001", "ws002", "ws003"):
            hub.spawn(name)
        wait_for(
            lambda: (
                hub.query("SELECT count(DISTINCT username) FROM workshop_culls WHERE dry_run = 1")[0][0] == 3
            ),
            30,
            message="dry-run culls of all three",
        )
        hub.wait_passes(2)
        assert all(hub.running(n) for n in ("ws001", "ws002", "ws003"))
        assert hub.query("SELECT count(*) FROM workshop_sessions WHERE stopped IS NULL")[0][0] == 3
        rows_before = hub.query("SELECT id, username, started FROM workshop_sessions")

        # kill -9 while a pass is waiting on the hub
        hub.proxy.delete_delay = 0
        seen = len(hub.proxy.seen)
        hub.proxy.stall_next = 1
        wait_for(
            lambda: any(status == 0 for _, _, status in hub.proxy.seen[seen:]),
            10,
            message="a pass to be in flight",
        )
        victim = hub.service_pid()
        os.kill(victim, signal.SIGKILL)
        hub.hub.api("/users/ws003/server", method="DELETE")  # stopped while the service is down
        wait_for(lambda: not hub.running("ws003"), 20, message="ws003 to stop")
        wait_for(
            lambda: (hub.service_pid() or victim) != victim, 30, message="the hub to restart the service"
        )
        wait_for(
            lambda: (
                hub.query("SELECT stop_reason FROM workshop_sessions WHERE username = 'ws003'")
                == [("unknown",)]
            ),
            30,
            message="the restarted service to close ws003's session",
        )
        rows_after = hub.query("SELECT id, username, started FROM workshop_sessions")
        assert rows_after == rows_before  # nothing lost, nothing duplicated
        assert hub.query(
            "SELECT username FROM workshop_sessions WHERE stopped IS NULL ORDER BY username"
        ) == [("ws001",), ("ws002",)]
        assert hub.query("SELECT count(*) FROM workshop_culls WHERE dry_run = 0")[0][0] == 0
    finally:
        hub.stop()
