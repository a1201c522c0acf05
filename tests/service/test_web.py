"""The admin page's pieces that need no hub: its rows of servers from hub user models, and what
its template says about a listing cut at its bound. (tests/service/test_e2e.py runs the pages
against a real hub.)"""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import jinja2
import pytest
from jupyterhub._data import DATA_FILES_PATH

from jupyterhub_workshop import charts
from jupyterhub_workshop.schedule import Schedule
from jupyterhub_workshop.service import resources, web
from jupyterhub_workshop.service.policy import CullPolicy, NightWindow
from jupyterhub_workshop.times import parse_typed_time

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


def render(template: str, **ns) -> str:
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(str(web.TEMPLATES)),
            jinja2.FileSystemLoader(f"{DATA_FILES_PATH}/templates"),
        ]
    )
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    service = SimpleNamespace(dry_run=False, users_per_node=0, cull_every=60, timezone="UTC", desk=None)
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
        export_ranges=web.export_ranges(NOW, UTC),
        attendance={"error": "Attendance needs the accounts file: set WorkshopService.accounts_file."},
        prewarm={"enabled": False},
        closing=None,
        resources=None,
        sort="",
        near_limit=resources.near_limit,
        near_count=0,
        near_share=resources.NEAR_LIMIT,
        memory_text=resources.memory_text,
        cpu_text=resources.cpu_text,
    )
    namespace.update(ns)
    return env.get_template(template).render(**namespace)


def render_admin(**ns) -> str:
    return render("workshop-admin.html", **ns)


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


def test_exports_offer_today_in_the_workshop_zone_and_the_schedule_s_days():
    late = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)  # Saturday evening in Denver
    schedule = Schedule.parse(
        {
            "timeZone": "Europe/Berlin",
            "sessions": [{"days": ["2026-07-14", "2026-07-16"], "start": "09:00", "end": "17:00"}],
        }
    )
    today, workshop = web.export_ranges(late, ZoneInfo("America/Denver"), schedule)
    assert (today.label, today.start, today.end) == (
        "Today, Sat 05 Dec",
        "2026-12-05T00:00-07:00",
        "2026-12-06T00:00-07:00",
    )
    assert workshop.label == "The workshop's schedule, 14 Jul – 16 Jul 2026"
    assert (workshop.start, workshop.end) == ("2026-07-14T00:00+02:00", "2026-07-17T00:00+02:00")
    # the link's query reads back as the times the export handler expects
    query = {k: v[0] for k, v in parse_qs(workshop.query).items()}
    assert parse_typed_time(query["start"]) == datetime(2026, 7, 13, 22, 0, tzinfo=UTC)
    # a schedule of today only adds nothing; weekday sessions without an end give no span
    one_day = Schedule.parse(
        {"timeZone": "UTC", "sessions": [{"days": ["2026-07-14"], "start": "09:00", "end": "10:00"}]}
    )
    assert [r.label for r in web.export_ranges(NOW, UTC, one_day)] == ["Today, Tue 14 Jul"]
    weekly = Schedule.parse(
        {"timeZone": "UTC", "sessions": [{"days": ["Mon"], "start": "09:00", "end": "10:00"}]}
    )
    assert len(web.export_ranges(NOW, UTC, weekly)) == 1


def test_every_table_cell_is_labelled_with_its_column_and_the_hint_breaks_only_at_the_ampersand():
    rows = web.server_rows(
        [user("amy", {"": server(), "gpu": server(ready=False, pending="spawn")})], set(), POLICY, NOW
    )
    attendance = {
        "error": None,
        "rows": [
            {
                "role": "participant",
                "issued": 4,
                "signed_in": 3,
                "first_sign_in": NOW,
                "last_first_sign_in": NOW,
                "never_signed_in": 1,
                "revoked": 0,
            }
        ],
    }
    page = render_admin(rows=rows, attendance=attendance)
    for table in ("servers", "attendance"):
        html = re.search(rf'<table [^>]*id="{table}".*?</table>', page, re.S).group(0)
        headers = re.findall(r'<th scope="col">(.*?)</th>', html)
        assert len(headers) == 6 and 'class="table' in html and "workshop-rows" in html
        for row in re.findall(r"<tr[^>]*>\s*<td.*?</tr>", html, re.S):
            assert re.findall(r'<td data-label="([^"]*)"', row) == headers, table
    hint = re.search(r'id="export-hint">.*?<code>(.*?)</code>', page, re.S).group(1)
    assert hint == (
        '<span class="text-nowrap">?start=2026-07-14T00:00Z</span><wbr>'
        '<span class="text-nowrap">&amp;end=2026-07-15T00:00Z</span>'
    )
    assert 'href="/services/workshop/usage.csv?start=2026-07-14T00:00Z&amp;end=2026-07-15T00:00Z"' in page


def render_optout(mine, **ns) -> str:
    defaults = dict(warning=None, exempt=False, opted_out_tonight=False, mine=mine, as_of=None)
    service = SimpleNamespace(idle_timeout=3600, dry_run=False)
    return render("workshop-optout.html", **{**defaults, "night": POLICY.night, "service": service, **ns})


def words(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize(
    "servers, said, why",
    [
        ({"": server()}, "Your server is running, started", "Running something long overnight?"),
        (
            {"": server(ready=False, pending="spawn")},
            "Your server is starting: it is not running yet.",
            "You can keep your server tonight now, while it starts: it is kept as soon as it runs.",
        ),
        ({}, "You have no server running.", "also keeps a server you start later tonight"),
    ],
)
def test_a_participant_is_told_what_their_server_is_doing_and_what_keeping_it_does(servers, said, why):
    page = words(render_optout(web.server_rows([user("amy", servers)], set(), POLICY, NOW)))
    assert said in page and why in page and "Keep my server tonight" in page
    assert ("You have no server running." in page) == (not servers)
    # the rules come before the button, not crowded under it
    assert page.index("Servers without activity for 60 minutes are stopped.") < page.index(
        "Keep my server tonight"
    )


@pytest.mark.jh55  # the hub's error.html and page.html of JupyterHub 5.5 and 6.1
def test_the_error_page_shows_the_signed_in_user_and_logout_as_the_hub_s_pages_do():
    message = "Only workshop staff may open this page."
    error = render(
        "workshop-error.html",
        status_code=403,
        status_message="Forbidden",
        message=message,
        message_html="",
        extra_error_html="",
    )
    home = render("page.html")  # what every other page of the hub draws in its navigation bar

    def widget(page):
        return re.sub(
            r"\s+", " ", re.search(r'<span id="login_widget">(.*?)</span>\s*</li>', page, re.S).group(1)
        )

    assert widget(error) == widget(home) and 'id="logout"' in widget(error) and ">staff<" in widget(error)
    assert message in error and 'id="workshop-back"' in error


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


def usage_rows():
    def row(user, usage):
        return web.ServerRow(user, "", None, NOW, NOW, "running", None, False, usage)

    return [
        row("ana", resources.Usage(1 * 2**30, 2 * 2**30, 0.25)),
        row("bo", resources.Usage(int(1.9 * 2**30), 2 * 2**30, 1.0)),
        row("cy", None),
    ]


def test_the_servers_table_shows_memory_and_cpu_and_marks_the_near_limit():
    page = render_admin(rows=usage_rows(), resources=resources.Resources({}), near_count=1, running=3)
    assert "1.0 GiB / 2.0 GiB (50%)" in page and "0.25" in page
    [near] = re.findall(r'<tr class="workshop-near-limit">.*?</tr>', page, re.S)
    assert "bo" in near and "1.9 GiB / 2.0 GiB (95%)" in near and "near limit" in near
    assert '<strong id="near-count">1</strong> server at 90% of the memory limit or more' in page
    assert 'href="/services/workshop/?sort=memory#servers" id="sort-memory"' in page
    assert 'data-label="Memory"' in page  # the phone's cards label it


def test_the_page_says_why_there_are_no_numbers_and_omits_them_when_not_read():
    page = render_admin(rows=usage_rows(), resources=resources.Resources({}, "metrics-server not available"))
    assert "Memory and CPU: metrics-server not available." in page
    assert "Memory" not in render_admin(rows=usage_rows())


def test_sorting_by_memory_puts_the_most_pressed_first():
    by_name = {(r.user, ""): r.usage for r in usage_rows()}
    rows = [replace(r, usage=None) for r in usage_rows()]
    found = resources.Resources(by_name)
    assert [r.user for r in web.with_usage(rows[::-1], found, "memory")] == ["bo", "ana", "cy"]
    assert [r.user for r in web.with_usage(rows, found)] == ["ana", "bo", "cy"]
    assert web.with_usage(rows, found)[1].usage == by_name["bo", ""]


def test_the_servers_table_shows_a_restart_in_place_of_the_current_run():
    from jupyterhub_workshop.board import Restart

    rows = web.server_rows(
        [user("amy", {"": server()}), user("bo", {"": server()}), user("cy", {"": server()})],
        set(),
        POLICY,
        NOW,
    )
    restarts = {
        "amy": Restart("OOMKilled", NOW - timedelta(minutes=10), "", "uid-a", 2),
        "bo": Restart("Error", NOW - timedelta(hours=3), "", "uid-b", 1),  # an earlier run's
        "cy": Restart("OOMKilled", NOW - timedelta(minutes=5), "gpu", "uid-c", 1),  # another server's
    }
    rows = web.with_restarts(rows, restarts)
    assert [r.restart_text for r in rows] == ["restarted: ran out of memory (×2)", "", ""]
    page = render_admin(rows=rows)
    [badge] = re.findall(r'<span class="badge[^"]*workshop-restarted"[^>]*>(.*?)</span>', page)
    assert re.fullmatch(r"restarted: ran out of memory \(×2\) Tue\s19:50", badge)  # the page in UTC here
    assert web.with_restarts(rows, {}) == rows
