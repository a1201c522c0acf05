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

import psutil
import pytest
import sqlalchemy as sa

from jupyterhub_workshop.login.issuing import Batch, generate
from jupyterhub_workshop.login.printing import read_cards_csv
from jupyterhub_workshop.service.store import UsageStore

from ..docs.screenshots import publish
from ..harness.browser import login, new_session
from ..harness.faulty import FaultyProxy
from ..harness.hub import HubProcess, free_port, wait_for

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(
    os.environ.get("WORKSHOP_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)


class ServiceHub:
    """A hub with workshop cards, mock single-user servers and the workshop service."""

    def __init__(
        self,
        root: Path,
        service_settings: dict,
        via_proxy: bool = False,
        extra_config: str = "",
        hub_env: dict | None = None,
        proxy_class: type[FaultyProxy] = FaultyProxy,
    ):
        self.root = root
        cards_dir = root / "cards"
        generate(cards_dir, Batch("ws", 4, 1))
        self.cards = {c.username: c for c in read_cards_csv(cards_dir / "cards.csv")}
        self.db = root / "usage.sqlite"
        self.service_port = free_port()
        self.proxy: FaultyProxy | None = None
        hub = HubProcess(root / "hub", "", env=hub_env)
        # the hub's server events reach the service through this spool file
        self.events_file = root / "workshop-events.jsonl"
        # WorkshopService traits: the hub configuration writes them to the service's config file
        # announcements and stop notices: written by the service, read by the hub's pages
        self.board_file = root / "workshop-board.json"
        settings = {
            "db_url": f"sqlite:///{self.db}",
            "cull_every": 0.5,
            "api_retries": 6,
            "board_file": str(self.board_file),
            **service_settings,
        }
        self.service_config = root / "workshop-service.json"
        if via_proxy:
            self.proxy = proxy_class(f"http://127.0.0.1:{hub.hub_port}").start()
            settings["api_url"] = f"{self.proxy.url}/hub/api"
        hub.config_text += f"""
import sys
from jupyterhub_workshop.hubconfig.services import (
    board_banner, install_server_events, workshop_roles, workshop_service,
)
c.JupyterHub.authenticator_class = "workshop"
c.WorkshopAuthenticator.accounts_file = {str(cards_dir / "accounts.yaml")!r}
c.WorkshopAuthenticator.instructors_are_admins = False
c.Authenticator.admin_users = {{"ws004"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(root / "homes" / "{username}")!r}
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.tests.mocksu"]
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.JupyterHub.services.append(workshop_service({settings!r}, {str(self.service_config)!r},
                                              url="http://127.0.0.1:{self.service_port}",
                                              events_file={str(self.events_file)!r}))
c.JupyterHub.load_roles.extend(workshop_roles())
install_server_events(c, {str(self.events_file)!r})
c.JupyterHub.template_vars = {{"announcement": board_banner({str(self.board_file)!r}, {settings.get("timezone", "UTC")!r})}}
{extra_config}
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

    def spawn(self, name: str, *, wait: bool = True) -> None:
        """Start ``name``'s server and, with ``wait``, wait until it runs (a server the night
        cull may stop at once is not waited for: it could be gone before a poll sees it)."""
        try:
            self.hub.api(f"/users/{name}", method="POST", data=b"{}")
        except urllib.error.HTTPError as e:
            if e.code != 409:  # already there (logged in before)
                raise
        self.hub.api(f"/users/{name}/server", method="POST", data=b"{}")
        if wait:
            wait_for(lambda: self.running(name), 30, message=f"{name}'s server")

    def hold(self, name: str) -> Path:
        """Keep ``name``'s spawns pending (a hub configured with hold_spawns) until the returned
        file is removed."""
        path = self.root / f"hold-{name}"
        path.touch()
        return path

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


ANY_TIMES = re.compile(r"\w{3} \d\d:\d\d( – \w{3} \d\d:\d\d)?")  # first sign-ins: "Tue 09:12 – Tue 09:40"


def attendance_cells(page: str, role: str) -> list:
    """The cells of the admin page's attendance row for ``role``; the first sign-ins cell as
    ANY_TIMES when it holds times."""
    row = re.search(rf'<tr id="attendance-{role}"[^>]*>(.*?)</tr>', page, re.S).group(1)
    cells = [re.sub(r"\s+", " ", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    return [ANY_TIMES if ANY_TIMES.fullmatch(cell) else cell for cell in cells]


def night_settings(active: bool) -> dict:
    zone = "America/Denver"
    now = datetime.now(ZoneInfo(zone))
    start = now - timedelta(hours=2) if active else now + timedelta(hours=3)
    end = now + timedelta(hours=2) if active else now + timedelta(hours=5)
    return {"night_start": f"{start:%H:%M}", "night_end": f"{end:%H:%M}", "timezone": zone, "idle_timeout": 0}


# --------------------------------------------------------------------------------------------
# night culling, opt-out, exemptions, access control, exports, admin page


def accounts_file(root: Path) -> dict:
    """The setting that gives the service the cards ServiceHub makes (for attendance)."""
    return {"accounts_file": str(root / "cards" / "accounts.yaml")}


def schedule_clear_of_the_night() -> dict:
    """A session tomorrow, 6 hours after the time of day now: clear of night_settings(active=True)
    (now ± 2 h), its pre-warm stretch included. No Deployment: the service decides and shows."""
    zone = "America/Denver"
    start = datetime.now(ZoneInfo(zone)) + timedelta(days=1, hours=6)
    end = start + timedelta(hours=1)
    session = {"days": [start.date().isoformat()], "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}
    return {"schedule": {"timeZone": zone, "sessions": [session]}, "users_per_node": 4}


def hold_spawns(root: Path) -> str:
    """Hub configuration: a user's spawn waits (pending) while the file ``root/hold-<name>`` exists,
    60 s at most; ServiceHub.hold makes one."""
    return f"""
import asyncio, os, time
async def _hold_spawn(spawner):
    hold, deadline = os.path.join({str(root)!r}, "hold-" + spawner.user.name), time.monotonic() + 60
    while os.path.exists(hold) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
c.Spawner.pre_spawn_hook = _hold_spawn
"""


@pytest.fixture(scope="module")
def night_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("night")
    settings = {**night_settings(active=True), **accounts_file(root), **schedule_clear_of_the_night()}
    settings["idle_timeout"] = 3600  # said on the participant's page; nothing here is idle that long
    hub = ServiceHub(root, settings, extra_config=hold_spawns(root)).start()
    yield hub
    hub.stop()


def login_widget(page: str) -> str:
    """The navigation bar's signed-in user and Logout, as the hub's page.html draws them."""
    found = re.search(r'<span id="login_widget">(.*?)</span>\s*</li>', page, re.S)
    return re.sub(r"\s+", " ", found.group(1)).strip() if found else ""


@pytest.mark.jh55  # the hub's own 403 page (error.html, page.html) as JupyterHub 5.5 and 6.1 draw it
async def test_participant_sees_only_the_opt_out_page(night_hub):
    hub = night_hub
    async with new_session() as s:
        assert (await login(s, hub.url, "ws001", hub.cards["ws001"].password)).ok
        status, page = await open_service(s, hub)
        assert status == 200
        assert "Keep my server tonight" in page and 'id="servers"' not in page
        assert "/hub/static/css/style.min.css" in page  # the hub's own page template and styles
        assert "You have no server running." in page
        async with s.get(f"{hub.url}/hub/home") as r:
            home = await r.text()
        for path in (
            "usage.csv",
            "usage.json",
            "attendance.csv",
            "usage.csv?start=2026-07-14T00:00:00Z",
            "report.html",
            "report.csv",
        ):
            async with s.get(hub.service_url + path) as r:
                status, denied = r.status, await r.text()
            assert status == 403 and r.content_type == "text/html", path
            # the hub's error page (its template and stylesheet), saying why, with the way back
            assert "/hub/static/css/style.min.css" in denied and '<div class="error">' in denied
            assert "403 : Forbidden" in denied and "Only workshop staff may open this page." in denied
            assert 'id="workshop-back"' in denied
            # signed in: the navigation bar shows who and Logout, exactly as the hub's own pages do
            assert login_widget(denied) == login_widget(home) and 'id="logout"' in login_widget(home)
            assert "ws001" in login_widget(denied)
            assert "ws002" not in denied and "wsinstructor01" not in denied  # nothing about anyone else


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
    # ws001 is stopped for the night within a pass (0.5 s) of running: wait for its cull, not for it
    hub.spawn("ws001", wait=False)
    for name in ("ws002", "ws004", "wsinstructor01"):
        hub.spawn(name)

    wait_for(
        lambda: hub.query("SELECT count(*) FROM workshop_culls WHERE username = 'ws001'")[0][0] == 1,
        60,
        message="ws001's night cull",
    )
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
    # ws001's next hub page says why, in the workshop's zone (the board the service wrote)
    [(culled,)] = hub.query("SELECT at FROM workshop_culls WHERE username = 'ws001'")
    at = datetime.fromisoformat(culled.replace("Z", "+00:00")).astimezone(ZoneInfo("America/Denver"))
    async with new_session() as s:
        assert (await login(s, hub.url, "ws001", hub.cards["ws001"].password)).ok
        async with s.get(f"{hub.url}/hub/home") as r:
            home = await r.text()
        assert (
            f"Your server was stopped at {at:%H:%M} by the night-time shutdown. "
            "Your files are safe — start it again below."
        ) in home
        # with no server, a participant sees it on each page until they start one
        async with s.get(f"{hub.url}/hub/home") as r:
            assert "by the night-time shutdown" in await r.text()
    async with new_session() as s:  # ws004: ws003 must stay a card that signed in and never came back
        assert (await login(s, hub.url, "ws004", hub.cards["ws004"].password)).ok
        async with s.get(f"{hub.url}/hub/home") as r:
            assert "Your server was stopped" not in await r.text()  # only ws001's own page


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
        # every card has signed in by now (test_opt_out_needs_xsrf_...); ws003 only posted the
        # login form and never came back nor had a server, but a sign-in is a sign-in
        assert hub.hub.api("/users/ws003")["last_activity"] is None
        assert attendance_cells(page, "participant") == ["Participants", "4", "4", ANY_TIMES, "0", "0"]
        assert attendance_cells(page, "instructor") == ["Instructors", "1", "1", ANY_TIMES, "0", "0"]
        # pre-warm: the schedule in its zone, the next stretch, the count decided (no Deployment)
        assert 'id="prewarm"' in page and "Schedule (America/Denver)" in page
        assert "4 people expected (the participant cards)" in page
        assert re.search(
            r'id="prewarm-next">\w{3} \d{2} \w{3} \d{2}:\d{2} – (\w{3} \d{2} \w{3} )?\d{2}:\d{2} ', page
        )
        assert re.search(r'id="prewarm-count">0<', page) and "decided: 0 — for 0 people" in page
        assert "no Deployment set (prewarm_deployment): nothing is scaled" in page
        status, csv_text = await open_service(s, hub, "usage.csv")
        assert status == 200
        header, *lines = csv_text.splitlines()
        assert header == "user,server,profile,started,stopped,duration_seconds,stop_reason,exported"
        assert any(line.startswith("ws001,") and ",night," in line for line in lines)
        # when it was taken: now, the same on every line
        assert len({line.rsplit(",", 1)[1] for line in lines}) == 1
        taken = datetime.fromisoformat(lines[0].rsplit(",", 1)[1].replace("Z", "+00:00"))
        assert abs(taken - datetime.now(UTC)) < timedelta(minutes=1)
        status, json_text = await open_service(s, hub, "usage.json")
        assert abs(datetime.fromisoformat(json.loads(json_text)["exported"]) - datetime.now(UTC)) < timedelta(
            minutes=1
        )
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
        # a "+" typed into the address (as the page's hint shows it) arrives as a space: still read
        status, typed = await open_service(s, hub, "usage.csv?start=2099-01-01T00:00+02:00")

        def sessions_of(csv_text):  # each export says when it was taken: compare what it holds
            return [line.rsplit(",", 1)[0] for line in csv_text.splitlines()]

        assert status == 200 and sessions_of(typed) == sessions_of(later)
        # the export links and the hint are the workshop's own days, not a fixed example
        today = datetime.now(ZoneInfo("America/Denver")).date()
        assert f"usage.csv?start={today}T00:00-0" in page and "2026-07-14" not in page
        # the final report, live: the same database, the hub's cards
        status, report_page = await open_service(s, hub, "report.html")
        assert status == 200 and "final report" in report_page
        assert "night 1" in report_page and 'href="report.csv"' in report_page
        # the cards as the attendance table counts them (the same function): all 4 signed in
        assert re.search(
            r'id="report-cards-participant">\s*<td>Participants</td>\s*<td>4</td><td>4</td>', report_page
        )
        status, day_csv = await open_service(s, hub, "report.csv")
        assert status == 200 and day_csv.startswith("date,users,sessions_started,")
        assert day_csv.splitlines()[-1].split(",")[7] == "1"  # today's night cull
    async with new_session() as s:  # Prometheus scrapes without a hub login
        status, metrics = await open_service(s, hub, "metrics")
    assert status == 200
    assert 'workshop_culls_total{reason="night"} 1.0' in metrics
    # running servers are the hub's own metric (jupyterhub_running_servers); active users are ours
    assert "workshop_running_servers" not in metrics
    assert re.search(r"^workshop_active_users \d+\.0$", metrics, re.M)
    assert "workshop_session_duration_seconds_count 1.0" in metrics
    assert "workshop_prewarm_active 0.0" in metrics and "workshop_prewarm_placeholders 0.0" in metrics


async def test_a_starting_server_is_said_to_be_starting_and_is_kept_tonight_once_it_runs(night_hub):
    hub = night_hub
    hold = hub.hold("ws003")
    try:
        async with new_session() as s:
            assert (await login(s, hub.url, "ws003", hub.cards["ws003"].password)).ok
            hub.hub.api("/users/ws003/server", method="POST", data=b"{}")  # 202: pending while held
            assert hub.hub.api("/users/ws003")["servers"][""]["pending"] == "spawn"
            status, page = await open_service(s, hub)
            assert status == 200 and "Your server is starting: it is not running yet." in page
            assert "You have no server running." not in page
            assert "Running servers are being stopped for the night" in page  # it will be one of them
            assert (
                "You can keep your server tonight now, while it starts: it is kept as soon as it runs."
                in page
            )
            xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
            async with s.post(hub.service_url + "opt-out", data={"_xsrf": xsrf}) as r:
                assert r.status == 200 and "will be kept running tonight" in await r.text()
        hold.unlink()
        wait_for(lambda: hub.running("ws003"), 30, message="ws003's server to start")
        hub.wait_passes(3)  # in the night window: a server not kept is stopped at the next pass
        assert hub.running("ws003")
        assert ("ws003",) not in hub.query("SELECT username FROM workshop_culls")
    finally:
        hold.unlink(missing_ok=True)


# What the browser test measures on each chart, table and page, in CSS px as laid out.
LAYOUT = """() => {
  const vw = window.innerWidth;
  const within = (r) => r.left >= -0.5 && r.right <= vw + 0.5;
  const texts = [];
  for (const svg of document.querySelectorAll('svg.workshop-chart')) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      texts.push({
        text: t.textContent,
        // the font size as drawn: the text's own size times the SVG's scale on the screen
        px: parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a,
        height: r.height,
        inside: r.left >= box.left - 0.5 && r.right <= box.right + 0.5
          && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5,
      });
    }
  }
  // Every table: each column's header visible in the viewport and its box (a table), or each
  // row's label for each column (cards); no cell's text cut; nothing scrolled out of sight.
  const tables = {};
  for (const table of document.querySelectorAll('.container table')) {
    const box = table.parentElement, boxRect = box.getBoundingClientRect();
    const cards = getComputedStyle(table).display !== 'table';
    const problems = [];
    const headers = table.tHead ? [...table.tHead.rows[0].cells] : [...table.querySelectorAll('tbody th')];
    const names = headers.map((th) => th.textContent.trim());
    if (!cards || !table.tHead) {
      for (const th of headers) {
        const r = th.getBoundingClientRect();
        if (!(r.width > 0 && within(r) && r.right <= boxRect.right + 0.5)) problems.push('header off-screen: ' + th.textContent.trim());
      }
    } else {
      for (const tr of table.tBodies[0].rows) {
        const cells = [...tr.cells].filter((td) => td.hasAttribute('data-label'));
        if (!cells.length) continue;  // "No servers running."
        if (cells.map((td) => td.dataset.label).join('|') !== names.join('|')) problems.push('data-labels are not the headers ' + names);
        for (const td of cells) {  // an empty cell (no profile) is left out of its card
          const label = getComputedStyle(td, '::before').content.replace(/^"|"$/g, '');
          const shown = getComputedStyle(td).display !== 'none';
          if (td.textContent.trim() ? !shown || label !== td.dataset.label : shown) problems.push('label: ' + td.dataset.label);
        }
        for (const td of cells) {
          if (!within(td.getBoundingClientRect())) problems.push('off-screen: ' + td.dataset.label);
        }
      }
    }
    for (const cell of table.querySelectorAll('tbody td, tbody th')) {
      if (cell.scrollWidth > cell.clientWidth + 1) problems.push('cut: ' + cell.textContent.trim());
    }
    if (box.scrollWidth > box.clientWidth + 1) problems.push('scrolls sideways: ' + box.scrollWidth + ' px in ' + box.clientWidth);
    tables[table.id] = {cards, width: Math.round(table.getBoundingClientRect().width),
                        box: Math.round(boxRect.width), headers: names, problems};
  }
  // whatever is drawn, out of the viewport to the side
  const outside = [];
  for (const el of document.querySelectorAll('.container *')) {
    if (el.closest('thead') && getComputedStyle(el.closest('thead')).clipPath !== 'none') continue;  // for screen readers
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && !within(r)) outside.push(el.tagName + '#' + el.id + ' ' + (el.textContent || '').trim().slice(0, 40));
  }
  return {texts, tables, outside, charts: document.querySelectorAll('svg.workshop-chart').length,
          documentWidth: document.documentElement.scrollWidth, viewport: vw,
          navbar: getComputedStyle(document.querySelector('nav')).display};
}"""

# On the participant's page: the button, and what is written around it (in CSS px).
OPTOUT_LAYOUT = """() => {
  const rect = (el) => el && el.getBoundingClientRect();
  const button = rect(document.getElementById('keep-tonight')), why = rect(document.getElementById('keep-why'));
  const idle = rect(document.getElementById('idle-rule'));
  return {button: button && {left: button.left, right: button.right, top: button.top, bottom: button.bottom},
          aboveButton: button && why ? button.top - why.bottom : null,
          idleAboveButton: idle && button ? button.top - idle.bottom : null,
          documentWidth: document.documentElement.scrollWidth, viewport: window.innerWidth};
}"""

# A signed-in user's name and Logout in the navigation bar, visible (opening the collapsed menu
# on a narrow screen, as a person would).
SIGNED_IN = """async () => {
  const toggler = document.querySelector('.navbar-toggler');
  if (toggler && getComputedStyle(toggler).display !== 'none') {
    toggler.click();
    const deadline = Date.now() + 5000;
    while (!document.querySelector('#thenavbar.show') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const logout = document.getElementById('logout');
  const r = logout && logout.getBoundingClientRect();
  return {widget: (document.getElementById('login_widget') || {}).innerText || '',
          logoutVisible: !!r && r.width > 0 && r.height > 0 && r.right <= window.innerWidth};
}"""

WIDTHS = (360, 400, 1280)  # phones, a laptop
TABLET = 768  # the narrowest width tables are tables at (Bootstrap's md): they fit there too


async def browser_login(browser, hub: ServiceHub, name: str, width: int):
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await page.goto(f"{hub.url}/hub/login")
    await page.fill("#username_input", name)
    await page.fill("#password_input", hub.cards[name].password)
    await page.click("#login_submit")
    await page.wait_for_function("!location.pathname.endsWith('/hub/login')")
    return context, page


async def test_pages_read_well_in_headless_chromium_at_360_400_and_1280_px(night_hub):
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
    shots, layouts, optout, signed_in = [], {}, {}, {}
    hold = hub.hold("ws001")
    async with playwright.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            context, page = await browser_login(browser, hub, "ws004", 1280)
            for width in (*WIDTHS, TABLET):
                await page.set_viewport_size({"width": width, "height": 900})
                await page.goto(hub.service_url)
                await page.wait_for_selector("#workshop-admin")
                assert await page.locator("#servers tbody tr").count() >= 3
                layouts[width] = await page.evaluate(LAYOUT)
                shots.append(ARTIFACTS / f"workshop-admin-{width}.png")
                await page.screenshot(path=str(shots[-1]), full_page=True)
            await context.close()

            # a participant whose server is starting, with the button to keep it tonight
            hub.hub.api("/users/ws001/server", method="POST", data=b"{}")  # pending while held
            context, page = await browser_login(browser, hub, "ws001", 1280)
            for width in WIDTHS:
                await page.set_viewport_size({"width": width, "height": 900})
                await page.goto(hub.service_url)
                await page.wait_for_selector("#workshop-optout")
                assert "is starting" in await page.inner_text("#my-server")
                optout[width] = await page.evaluate(OPTOUT_LAYOUT)
                shots.append(ARTIFACTS / f"workshop-participant-{width}.png")
                await page.screenshot(path=str(shots[-1]), full_page=True)

            # ... who opens a staff-only export: the hub's own error page, styled, saying who is
            # signed in with Logout as the hub's other pages do
            for width in (400, 1280):
                await page.set_viewport_size({"width": width, "height": 900})
                response = await page.goto(hub.service_url + "attendance.csv")
                assert response.status == 403
                assert (await page.inner_text(".error h1")).strip() == "403 : Forbidden"
                assert (
                    await page.evaluate("getComputedStyle(document.querySelector('nav')).display") != "inline"
                )
                assert await page.evaluate("document.documentElement.scrollWidth") <= width
                signed_in[width] = await page.evaluate(SIGNED_IN)
                shots.append(ARTIFACTS / f"workshop-403-{width}.png")
                await page.screenshot(path=str(shots[-1]), full_page=True)
            await context.close()
        finally:
            await browser.close()
            hold.unlink(missing_ok=True)
    (ARTIFACTS / "workshop-admin-layout.json").write_text(
        json.dumps(
            {
                width: {
                    "smallest_chart_text_px": round(min(t["px"] for t in layout["texts"]), 2),
                    **{k: v for k, v in layout.items() if k != "texts"},
                    "participant": optout.get(width),
                }
                for width, layout in layouts.items()
            },
            indent=2,
        )
    )
    for width, layout in layouts.items():
        assert layout["charts"] == 3 and layout["navbar"] != "inline"  # the hub's stylesheet applied
        assert len(layout["texts"]) > 30
        small = [(t["text"], round(t["px"], 1)) for t in layout["texts"] if t["px"] < 11 or t["height"] < 11]
        assert not small, f"chart text under 11 px at {width} px wide: {small}"
        outside = [t["text"] for t in layout["texts"] if not t["inside"]]
        assert not outside, f"chart text outside its chart at {width} px wide: {outside}"
        assert layout["documentWidth"] <= layout["viewport"], f"the page is wider than {width} px"
        assert not layout["outside"], f"off-screen at {width} px: {layout['outside']}"
        assert set(layout["tables"]) == {"servers", "attendance", "prewarm"}
        for name, table in layout["tables"].items():
            assert not table["problems"], f"{name} at {width} px: {table['problems']}"
            assert table["cards"] == (width < 768), (name, width)  # cards under Bootstrap's md width
        participant = optout.get(width) or optout[400]
        assert participant["documentWidth"] <= width and participant["button"]["right"] <= width
        assert participant["aboveButton"] >= 8 and participant["idleAboveButton"] >= 16, participant
    assert layouts[1280]["tables"]["servers"]["headers"][-1] == "Will be stopped"
    for width, seen in signed_in.items():
        assert "ws001" in seen["widget"] and "Logout" in seen["widget"] and seen["logoutVisible"], (
            width,
            seen,
        )
    assert all(shot.stat().st_size > 10_000 for shot in shots)
    # the documentation's picture of the admin page is this test's (tests/docs/screenshots.py)
    publish(
        ARTIFACTS / "workshop-admin-1280.png",
        "admin-page.png",
        "tests/service/test_e2e.py::test_admin_page_reads_well_in_headless_chromium_at_1280_and_400_px",
    )


# --------------------------------------------------------------------------------------------
# live pages between passes, attendance


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory):
    """A hub whose service makes one pass at start and then none for an hour: what its pages
    show of the servers comes from the hub at the time of the view."""
    root = tmp_path_factory.mktemp("live")
    # the local twin's spawner notes each server's process; the service shows its memory and CPU
    pids = root / "pids"
    settings = {
        "cull_every": 3600,
        **accounts_file(root),
        "server_resources": "processes",
        "server_pids_dir": str(pids),
    }
    twin = f"""
c.JupyterHub.spawner_class = "workshop-local"
c.WorkshopLocalSpawner.pid_dir = {str(pids)!r}
c.Spawner.mem_limit = "1G"
"""
    hub = ServiceHub(root, settings, via_proxy=True, extra_config=twin).start()
    wait_for(lambda: hub.samples() >= 1, 30, message="the service's first pass")
    yield hub
    hub.stop()


async def test_pages_show_the_servers_now_not_at_the_last_pass(live_hub):
    hub = live_hub
    [(last_pass,)] = hub.query("SELECT max(at) FROM workshop_samples")  # 2026-07-14T09:00:00.000000Z
    async with new_session() as participant, new_session() as staff:
        assert (await login(participant, hub.url, "ws001", hub.cards["ws001"].password)).ok
        assert (await login(staff, hub.url, "wsinstructor01", hub.cards["wsinstructor01"].password)).ok
        status, page = await open_service(participant, hub)
        assert status == 200 and "You have no server running." in page

        hub.spawn("ws001")
        status, page = await open_service(participant, hub)
        assert "Your server is running, started" in page and "as of" not in page
        status, page = await open_service(staff, hub)
        assert re.search(r'id="running-count">1<', page) and '<td data-label="User">ws001</td>' in page
        assert "Servers live from the hub at" in page
        # its memory (used / limit) and CPU, from its process tree, as psutil reads it
        [noted] = (hub.root / "pids").iterdir()
        root = psutil.Process(json.loads(noted.read_text())["pid"])
        rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        shown = re.search(r'<td data-label="Memory">(\d+) MiB / 1.0 GiB \(\d+%\)</td>', page)
        assert shown and int(shown.group(1)) * 2**20 == pytest.approx(rss, rel=0.10)
        assert re.search(r'<td data-label="CPU \(cores\)">\d+\.\d\d</td>', page)
        assert '<strong id="near-count">0</strong> servers at 90% of the memory limit' in page
        status, metrics = await open_service(staff, hub, "metrics")
        assert "workshop_servers_near_memory_limit 0.0" in metrics
        # what is not live says when it is from: the charts, from the one pass at start
        assert f"running servers as of {last_pass[11:19]} (UTC), the service's last pass" in page

        hub.hub.api("/users/ws001/server", method="DELETE")
        wait_for(lambda: not hub.running("ws001"), 30, message="ws001's server to stop")
        status, page = await open_service(participant, hub)
        assert "You have no server running." in page
        status, page = await open_service(staff, hub)
        assert re.search(r'id="running-count">0<', page) and "No servers running." in page
    assert hub.samples() == 1  # all of it without another pass


async def test_pages_show_the_last_pass_as_of_its_time_when_the_hub_does_not_answer(live_hub):
    hub = live_hub
    [(last_pass,)] = hub.query("SELECT max(at) FROM workshop_samples")
    async with new_session() as participant, new_session() as staff:
        assert (await login(participant, hub.url, "ws002", hub.cards["ws002"].password)).ok
        assert (await login(staff, hub.url, "wsinstructor01", hub.cards["wsinstructor01"].password)).ok
        for session in (participant, staff):  # signed in to the service (the hub's answer is cached)
            assert (await open_service(session, hub))[0] == 200
        hub.proxy.fail_next = 10**6  # from now on the hub's API answers the service only 503
        try:
            status, page = await open_service(staff, hub)
            assert status == 200
            assert f"The hub answered 503 within 5 s: servers as of {last_pass[11:19]} (UTC)" in page or (
                f"The hub did not answer within 5 s: servers as of {last_pass[11:19]} (UTC)" in page
            )
            assert "Servers live from the hub" not in page
            assert "The hub did not list its users within 5 s" in page  # attendance: none rather than wrong
            status, page = await open_service(participant, hub)
            assert status == 200 and f"(as of {last_pass[11:19]}: the hub did not answer just now)" in page
        finally:
            hub.proxy.fail_next = 0


async def test_the_live_listing_is_bounded_and_says_how_many_more(live_hub):
    from jupyterhub_workshop.service.hub_api import HubAPI
    from jupyterhub_workshop.service.web import list_users

    hub = live_hub
    hub.hub.api(
        "/users", method="POST", data=json.dumps({"usernames": ["guest1", "guest2", "guest3"]}).encode()
    )
    api = HubAPI(f"{hub.url}/hub/api", hub.hub.api_token, page_size=2)
    try:
        everyone = await list_users(api, 100)
        bounded = await list_users(api, 3)
    finally:
        api.close()
    assert len(everyone.users) == everyone.total >= 4 and everyone.more == 0  # in pages of 2
    assert [u["name"] for u in bounded.users] == [u["name"] for u in everyone.users][:3]
    assert bounded.total == everyone.total and bounded.more == everyone.total - 3


async def test_attendance_counts_cards_from_the_accounts_file_and_the_hub(live_hub):
    from jupyterhub_workshop.login.accounts import load_accounts, revoke, save_accounts

    hub = live_hub
    # signed in so far: ws001, ws002 and wsinstructor01 (the tests above); ws004 is in the hub's
    # admin_users, so the hub made it at start, but it never signed in
    assert hub.hub.api("/users/ws004")["last_activity"] is None
    accounts = hub.root / "cards" / "accounts.yaml"
    save_accounts(accounts, revoke(load_accounts(accounts), ["ws003"]))  # a lost card
    async with new_session() as staff:
        assert (await login(staff, hub.url, "wsinstructor01", hub.cards["wsinstructor01"].password)).ok
        status, page = await open_service(staff, hub)
        assert attendance_cells(page, "participant") == ["Participants", "4", "2", ANY_TIMES, "2", "1"]
        assert attendance_cells(page, "instructor") == ["Instructors", "1", "1", ANY_TIMES, "0", "0"]
        assert attendance_cells(page, "all") == ["All", "5", "3", ANY_TIMES, "2", "1"]
        async with staff.get(hub.service_url + "attendance.csv") as r:
            assert r.status == 200 and r.content_type == "text/csv"
            assert r.headers["Content-Disposition"] == 'attachment; filename="workshop-attendance.csv"'
            lines = (await r.text()).splitlines()
    assert lines[0] == "username,role,signed_in,first_sign_in,revoked"
    rows = {line.split(",")[0]: line.split(",")[1:] for line in lines[1:]}
    assert set(rows) == set(hub.cards)
    assert rows["ws003"] == ["participant", "false", "", "true"]
    assert rows["ws004"] == ["participant", "false", "", "false"]
    role, came, first, revoked = rows["ws001"]
    assert (role, came, revoked) == ("participant", "true", "false")
    created = datetime.fromisoformat(hub.hub.api("/users/ws001")["created"])
    assert datetime.fromisoformat(first) == created  # the hub's record of the first sign-in


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
        # stopped while the service is down: the hub's stop event waits in the spool for it
        hub.hub.api("/users/ws003/server", method="DELETE")
        wait_for(lambda: not hub.running("ws003"), 20, message="ws003 to stop")
        wait_for(
            lambda: (hub.service_pid() or victim) != victim, 30, message="the hub to restart the service"
        )
        wait_for(
            lambda: (
                hub.query("SELECT stop_reason FROM workshop_sessions WHERE username = 'ws003'") == [("user",)]
            ),
            30,
            message="the restarted service to close ws003's session as its user's stop",
        )
        rows_after = hub.query("SELECT id, username, started FROM workshop_sessions")
        assert rows_after == rows_before  # nothing lost, nothing duplicated
        assert hub.query(
            "SELECT username FROM workshop_sessions WHERE stopped IS NULL ORDER BY username"
        ) == [("ws001",), ("ws002",)]
        assert hub.query("SELECT count(*) FROM workshop_culls WHERE dry_run = 0")[0][0] == 0
    finally:
        hub.stop()
