"""The admin page's pieces that need no hub: its rows of servers from hub user models, and what
its template says about a listing cut at its bound. (tests/service/test_e2e.py runs the pages
against a real hub.)"""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import jinja2
import pytest
from jupyterhub._data import DATA_FILES_PATH

from jupyterhub_workshop import charts
from jupyterhub_workshop.service import web
from jupyterhub_workshop.service.policy import CullPolicy, NightWindow

NOW = datetime(2026, 7, 14, 20, 0, tzinfo=UTC)  # 14:00 in Denver
POLICY = CullPolicy(
    idle_timeout=timedelta(hours=1),
    night=NightWindow.parse("22:00", "06:00", "America/Denver"),
    exempt_groups=frozenset({"instructors"}),
)


def server(
    ready=True, pending=None, started=NOW - timedelta(minutes=30), activity=NOW - timedelta(minutes=5)
):
    return {
        "ready": ready,
        "pending": pending,
        "started": started.isoformat(),
        "last_activity": activity.isoformat(),
        "user_options": {"profile": "small"},
    }


def user(name, servers, groups=()):
    return {"name": name, "admin": False, "groups": list(groups), "servers": servers}


def test_rows_show_running_starting_and_stopping_servers_with_when_they_stop():
    users = [
        user("zed", {"": server()}),
        user("amy", {"": server(ready=False, pending="spawn"), "gpu": server()}),
        user("bob", {"": server(ready=False, pending="stop")}),
        user("ivy", {"": server()}, groups=["instructors"]),
    ]
    rows = web.server_rows(users, {"zed"}, POLICY, NOW)
    assert [(r.user, r.name, r.state) for r in rows] == [
        ("amy", "", "starting"),
        ("amy", "gpu", "running"),
        ("bob", "", "stopping"),
        ("ivy", "", "running"),
        ("zed", "", "running"),
    ]
    by_key = {(r.user, r.name): r for r in rows}
    assert by_key[("amy", "gpu")].stop == (NOW + timedelta(minutes=55), "idle")  # idle before the night
    assert by_key[("amy", "")].stop is None and by_key[("amy", "")].profile == "small"
    assert by_key[("zed", "")].kept_tonight and by_key[("zed", "")].stop[1] == "idle"
    assert not by_key[("amy", "gpu")].kept_tonight


class FakeHub:
    """The hub's paginated GET /users, as JupyterHub 5 and 6 answer it."""

    page_size = 2

    def __init__(self, names):
        self.names = names
        self.requests = []

    async def request(self, method, path, accept="application/json"):
        from urllib.parse import parse_qs, urlsplit

        self.requests.append(path)
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        offset, limit = int(query["offset"]), int(query["limit"])
        items = [{"name": n} for n in self.names[offset : offset + limit]]
        following = offset + limit < len(self.names)
        pagination = {"offset": offset, "limit": limit, "total": len(self.names)}
        pagination["next"] = {"offset": offset + limit} if following else None
        return 200, {"items": items, "_pagination": pagination}


async def test_a_listing_stops_at_its_bound_and_knows_how_many_more():
    hub = FakeHub([f"u{i}" for i in range(7)])
    listing = await web.list_users(hub, 5, state="active")
    assert [u["name"] for u in listing.users] == ["u0", "u1", "u2", "u3", "u4"]
    assert listing.total == 7 and listing.more == 2
    assert len(hub.requests) == 3 and all("state=active" in r for r in hub.requests)
    assert hub.requests[-1].endswith("offset=4&limit=1&state=active")  # never more than the bound
    everyone = await web.list_users(FakeHub(["a", "b", "c"]), 100)
    assert [u["name"] for u in everyone.users] == ["a", "b", "c"] and everyone.more == 0


def render_admin(**ns) -> str:
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(str(web.TEMPLATES)),
            jinja2.FileSystemLoader(f"{DATA_FILES_PATH}/templates"),
        ]
    )
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    service = SimpleNamespace(dry_run=False, users_per_node=0, cull_every=60, timezone="UTC")
    namespace = dict(
        base_url="/hub/",
        prefix="/",
        static_url=lambda path, include_version=True: f"/hub/static/{path}",
        user=SimpleNamespace(name="staff", json_escaped_name="staff"),
        login_url="/hub/login",
        logout_url="/hub/logout",
        services=[],
        parsed_scopes=set(),
        version_hash="",
        no_spawner_check=True,
        announcement="",
        admin_access=False,
        logo_url="",
        xsrf_token="x",
        service_prefix="/services/workshop/",
        local=lambda m: m.strftime("%a %H:%M") if m else "",
        clock=lambda m: m.strftime("%H:%M:%S") if m else "",
        service=service,
        zone_name="UTC",
        now=NOW,
        night=None,
        next_night=None,
        opted_out_tonight=False,
        exempt=True,
        message="",
        rows=[],
        running=0,
        starting=0,
        more_users=0,
        listed_users=0,
        live_error=None,
        last_pass=NOW - timedelta(seconds=42),
        culls={},
        opt_outs=[],
        node_hours=0,
        cost=0,
        active_chart=charts.line_chart("Active users", []),
        running_chart=charts.line_chart("Running servers", []),
        duration_chart=charts.bar_chart("Finished sessions by length", []),
        sessions=0,
        attendance={"error": "Attendance needs the accounts file: set WorkshopService.accounts_file."},
        prewarm={"enabled": False},
        closing=None,
    )
    namespace.update(ns)
    return env.get_template("workshop-admin.html").render(**namespace)


def test_the_page_says_what_it_left_out_and_what_is_not_live():
    page = render_admin(more_users=37, listed_users=1000)
    assert "Listed: the servers of the first 1000 users; 37 more users have servers" in page
    assert "Servers live from the hub at 20:00:00 (UTC)." in page
    assert "running servers as of 19:59:18 (UTC), the service's last pass (one every 60 s);" in page
    assert "set WorkshopService.accounts_file" in page
    assert "Listed: the servers" not in render_admin()


@pytest.mark.parametrize("error", ["The hub did not answer within 5 s", "The hub answered 503 within 5 s"])
def test_the_page_shows_the_last_pass_as_of_its_time_when_the_hub_does_not_answer(error):
    page = render_admin(live_error=error)
    assert f"{error}: servers as of 19:59:18 (UTC), the service's last pass." in page
    assert "Servers live from the hub" not in page


def test_the_admin_page_shows_the_closing_and_the_downloads():
    page = render_admin(
        closing={
            "when": "Fri 17 Jul at 18:00 (America/Denver)",
            "from": "Wed 15 Jul 18:00",
            "closed": False,
            "announced": True,
            "downloaders": 3,
        },
        culls={"closed": 0, "idle": 2},
    )
    assert (
        "The hub closes on <strong>Fri 17 Jul at 18:00 (America/Denver)</strong>; every hub page shows"
        in page
    )
    assert "<strong>3</strong> people have asked for their home" in page
    assert 'href="/services/workshop/report.html"' in page and "closed <strong>0</strong>" in page
    page = render_admin(closing=None)
    assert "No closing time is set" in page and "closed <strong>" not in page
    assert 'href="/services/workshop/report.html"' in page  # the report, closing or not
