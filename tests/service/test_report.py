"""The final report: a known three-day event, seeded into SQLite and PostgreSQL, gives exactly
the numbers computed by hand; an empty database says so."""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.login.accounts import Account, dump_accounts
from jupyterhub_workshop.login.passwords import hash_password
from jupyterhub_workshop.schedule import Schedule
from jupyterhub_workshop.service.report import gather, render_html, report_csv
from jupyterhub_workshop.service.store import UsageStore
from jupyterhub_workshop.usage_accounting import node_seconds_by_day, split_by_day

DENVER = ZoneInfo("America/Denver")  # UTC-6 in July


def at(day: int, clock: str) -> datetime:
    hour, minute = map(int, clock.split(":"))
    return datetime(2026, 7, day, hour, minute, tzinfo=DENVER)


# (user, start, stop or None, reason): Mon 13 – Wed 15 July 2026, Denver time
SESSIONS = [
    ("a", at(13, "09:00"), at(13, "12:00"), "user"),  # 3 h
    ("b", at(13, "09:00"), at(13, "11:00"), "idle"),  # 2 h
    ("c", at(13, "10:00"), at(13, "11:30"), "user"),  # 1.5 h
    ("a", at(14, "09:00"), at(14, "10:00"), "user"),  # 1 h
    ("e", at(14, "09:10"), at(14, "09:20"), "user"),  # 10 min, between two passes
    ("b", at(14, "22:00"), at(15, "01:00"), "night"),  # 2 h on Tuesday, 1 h on Wednesday
    ("c", at(15, "13:00"), at(15, "14:00"), "max-age"),  # 1 h
    ("d", at(15, "13:00"), at(15, "13:30"), "user"),  # 30 min
    ("f", at(15, "13:45"), None, None),  # still running at the last sample, 14:00: 15 min
]
# (time, running servers, peak since the previous sample or None)
SAMPLES = [
    (at(13, "09:00"), 2, None),
    (at(13, "10:00"), 3, None),
    (at(13, "11:00"), 2, None),
    (at(13, "11:30"), 1, None),
    (at(13, "12:00"), 0, None),
    (at(14, "09:00"), 1, None),
    (at(14, "10:00"), 0, 2),  # e came and went between the passes
    (at(14, "22:00"), 1, None),
    (at(15, "01:00"), 0, None),
    (at(15, "13:00"), 2, None),
    (at(15, "13:30"), 1, None),
    (at(15, "14:00"), 1, 2),
]
SCHEDULE = {
    "timeZone": "America/Denver",
    "from": "2026-07-13",
    "until": "2026-07-15",
    "expected": 4,
    "sessions": [{"days": ["Mon", "Tue", "Wed"], "start": "09:00", "end": "12:00"}],
}


def seed(store: UsageStore) -> None:
    for user, start, stop, reason in SESSIONS:
        store.open_session(user, "", None, start)
        if stop is not None:
            store.close_session(user, "", stop, reason)
    for moment, running, peak in SAMPLES:
        store.record_sample(moment, running, running, None, peak)
    for user in ("a", "c", "a"):  # the closing banner's link, followed twice by a
        store.record_download(user, at(15, "12:00"))


@pytest.fixture
def store(db_url):
    s = UsageStore(db_url)
    yield s
    s.close()


def cards():
    digest = hash_password("not used here")
    accounts = [Account(name, digest, "participant") for name in "abcdefgh"]
    accounts += [Account("i1", digest, "instructor"), Account("i2", digest, "instructor")]
    accounts.append(Account("z", digest, "participant", revoked=True))
    return accounts


def test_a_known_three_day_event_gives_the_numbers_computed_by_hand(store):
    seed(store)
    report = gather(
        store,
        zone="America/Denver",
        title="ESIP",
        users_per_node=2,
        price_per_node_hour=1.5,
        schedule=Schedule.parse(SCHEDULE),
        accounts=cards(),
    )
    assert (report.start, report.end) == (at(13, "09:00"), at(15, "14:00"))
    assert [d.day.isoformat() for d in report.days] == ["2026-07-13", "2026-07-14", "2026-07-15"]
    # distinct users: a, b, c / a, e, b / b (past midnight), c, d, f; in all a–f
    assert [d.users for d in report.days] == [3, 3, 4]
    assert report.users == 6
    assert [d.sessions for d in report.days] == [3, 3, 3]
    assert (report.sessions, report.open_sessions) == (9, 1)
    # session-hours: 3 + 2 + 1.5 / 1 + 1/6 + 2 / 1 + 1 + 0.5 + 0.25
    assert [round(d.session_hours * 60) for d in report.days] == [390, 190, 165]
    assert round(report.session_hours * 60) == 745
    # the same hours as `plan --from-usage` counts from the usage export (usage_totals)
    from jupyterhub_workshop.usage_accounting import Session, usage_totals

    rows = [Session(s.user, s.server, "", s.started, s.stopped) for s in store.iter_sessions()]
    assert usage_totals(rows, 2, until=report.end)["server_hours"] == round(report.session_hours, 4)
    # finished: 10 min, 30 min, 1 h, 1 h, 1.5 h, 2 h, 3 h, 3 h -> median (60 + 90) / 2
    assert report.median_minutes == 75
    assert sum(count for _, count in report.durations) == 8
    # peaks: Monday's 3; Tuesday's 2 between two passes; Wednesday's 2
    assert [d.peak_servers for d in report.days] == [3, 2, 2]
    # node-hours at 2 users a node: 1 + 2 + 0.5 + 0.5 / 1 + 2 / 1 + 0.5 + 0.5
    assert [d.node_hours for d in report.days] == [4.0, 3.0, 2.0]
    assert report.node_hours == pytest.approx(9.0)
    # pre-warm 08:40–09:30 each day for 4 people: 08:40–09:00 2 placeholders (nobody yet);
    # 09:00–09:30 Monday 2 running -> 1, Tuesday 1 -> 2, Wednesday 0 -> 2: 70 + 100 + 100 min
    assert report.prewarm_node_hours == pytest.approx(4.5)
    assert report.cost == pytest.approx(13.5 * 1.5)
    assert report.cost_per_user == pytest.approx(13.5 * 1.5 / 6)
    assert report.culls == {"idle": 1, "night": 1, "max-age": 1, "closed": 0}
    assert [d.culls for d in report.days] == [
        {"idle": 1, "night": 0, "max-age": 0, "closed": 0},
        {"idle": 0, "night": 0, "max-age": 0, "closed": 0},
        {"idle": 0, "night": 1, "max-age": 1, "closed": 0},
    ]
    rows = {row.role: (row.issued, row.signed_in, row.never_signed_in, row.revoked) for row in report.cards}
    assert rows == {"participant": (9, 6, 3, 1), "instructor": (2, 0, 2, 0), "all": (11, 6, 5, 1)}
    assert report.schedule_span == (at(13, "0:00").date(), at(15, "0:00").date())

    table = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert table[1] == {
        "date": "2026-07-14",
        "users": "3",
        "sessions_started": "3",
        "session_hours": "3.1667",
        "peak_servers": "2",
        "node_hours": "3.0000",
        "culls_idle": "0",
        "culls_night": "0",
        "culls_max-age": "0",
        "culls_closed": "0",
    }
    page = render_html(report)
    for text in (
        "ESIP: final report",
        "13.5",
        "20.25 USD",
        "3.38 USD a person",
        "12 h 25 min",
        "median 1 h 15 min",
    ):
        assert text in page, text


def test_days_add_up_to_the_admin_pages_meter(store):
    seed(store)
    total = store.node_seconds(2).seconds
    by_day = node_seconds_by_day(((s.at, s.running_servers) for s in store.samples()), 2, DENVER)
    assert sum(by_day.values()) == pytest.approx(total)
    # a stretch over midnight and over a DST change is cut at the local midnights
    assert list(split_by_day(at(14, "22:00"), at(15, "01:00"), DENVER)) == [
        (at(14, "0:00").date(), 7200.0),
        (at(15, "0:00").date(), 3600.0),
    ]
    autumn = datetime(2026, 10, 31, 12, 0, tzinfo=DENVER)
    later = (autumn.astimezone(UTC) + timedelta(hours=48)).astimezone(DENVER)  # 48 real hours
    assert [s for _, s in split_by_day(autumn, later, DENVER)] == [
        12 * 3600.0,
        25 * 3600.0,  # Sunday 1 November has 25 hours
        11 * 3600.0,
    ]


def test_an_empty_database_says_so(store):
    report = gather(store, zone="UTC", users_per_node=2, price_per_node_hour=1.0)
    assert report.empty and report.days == []
    page = render_html(report)
    assert "No usage was recorded in this database" in page
    assert 'id="report-days"' not in page and "0.00 USD" not in page
    assert report_csv(report).splitlines() == [
        "date,users,sessions_started,session_hours,peak_servers,node_hours,culls_idle,culls_night,culls_max-age,culls_closed"
    ]


def test_the_command_writes_the_page_and_its_csv(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    with UsageStore(url) as s:
        seed(s)
    (tmp_path / "schedule.yaml").write_text(str(SCHEDULE).replace("'", '"'))
    (tmp_path / "accounts.yaml").write_text(dump_accounts(cards(), title="ESIP Summer Meeting"))
    out = tmp_path / "final.html"
    argv = ["report", "--db", url, "--out", str(out), "--schedule", str(tmp_path / "schedule.yaml")]
    argv += [
        "--accounts",
        str(tmp_path / "accounts.yaml"),
        "--users-per-node",
        "2",
        "--price-per-node-hour",
        "1.5",
    ]
    assert main(argv) == 0
    page = out.read_text()
    assert "ESIP Summer Meeting: final report" in page and 'href="final.csv"' in page
    assert "America/Denver" in page and "20.25 USD" in page
    assert (tmp_path / "final.csv").read_text().count("\n") == 4
    assert "9 sessions, 6 people" in capsys.readouterr().out
    assert main(["report", "--db", f"sqlite:///{tmp_path / 'nothing.sqlite'}", "--out", str(out)]) == 1
    assert "no usage database" in capsys.readouterr().err


def test_the_page_prints_on_one_a4_and_one_letter_page(tmp_path):
    """Chromium's print-to-PDF, as an organizer's browser prints it: one page on each paper,
    for the three-day event, an empty database and a fortnight."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is needed to print")
    chromium = next(
        (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None
    )
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with UsageStore(f"sqlite:///{tmp_path / 'full.db'}") as store:
        seed(store)
        full = gather(
            store, zone="America/Denver", users_per_node=2, price_per_node_hour=1.5, accounts=cards()
        )
    with UsageStore(f"sqlite:///{tmp_path / 'empty.db'}") as store:
        empty = gather(store)
    with UsageStore(f"sqlite:///{tmp_path / 'fortnight.db'}") as store:  # a two-week hackweek
        for day in range(14):
            start = at(6, "09:00") + timedelta(days=day)
            store.open_session("a", "", None, start)
            store.close_session("a", "", start + timedelta(hours=3), "idle")
            store.record_sample(start, 1, 1)
            store.record_sample(start + timedelta(hours=3), 0, 0)
        fortnight = gather(
            store, zone="America/Denver", users_per_node=2, price_per_node_hour=1.5, accounts=cards()
        )
    pages = {"full": render_html(full), "empty": render_html(empty), "fortnight": render_html(fortnight)}
    counts = {}
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            for name, html in pages.items():
                (tmp_path / f"{name}.html").write_text(html)
                page = browser.new_page()  # a fresh page: pdf() prints with print CSS
                page.goto((tmp_path / f"{name}.html").as_uri())
                for paper in ("A4", "Letter"):
                    pdf = page.pdf(format=paper)
                    counts[name, paper] = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
                    (tmp_path / f"{name}-{paper}.pdf").write_bytes(pdf)
                # nothing wider than the printed column (A4's 186 mm at 96 px/inch: 703 px)
                page.set_viewport_size({"width": 703, "height": 1000})
                page.emulate_media(media="print")
                assert page.evaluate("document.documentElement.scrollWidth") <= 703, name
                page.close()
        finally:
            browser.close()
    assert counts == {(n, p): 1 for n in pages for p in ("A4", "Letter")}
