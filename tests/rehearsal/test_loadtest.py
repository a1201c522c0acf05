"""`jupyterhub-workshop loadtest`: report rules as plain functions, then real hubs end to end."""

import asyncio
import contextlib
import csv
import io
import json
import re
import textwrap
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from yarl import URL

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.login.accounts import Account, AccountBook, revoke, save_accounts
from jupyterhub_workshop.login.overlay import DESK_FILE_NAME
from jupyterhub_workshop.login.printing import Card, cards_csv, read_cards_csv
from jupyterhub_workshop.rehearsal.loadtest import run as loadtest
from jupyterhub_workshop.rehearsal.loadtest.participant import (
    collect_output,
    jupyter_message,
    page_message,
    retry_after,
)
from jupyterhub_workshop.rehearsal.loadtest.plot import (
    STACK_ORDER,
    timeline_chart,
    write_plot,
)
from jupyterhub_workshop.rehearsal.loadtest.report import (
    STAGES,
    StepError,
    UserResult,
    arrival_offsets,
    build_report,
    describe_skipped,
    group_errors,
    percentile,
    render_csv,
    render_text,
    stage_status,
    timeline,
)

from ..conftest import issue_accounts
from ..harness.browser import login, new_session
from ..harness.hub import free_port, running_hub
from ..test_charts import read_stacks

# --- percentiles, arrivals, grouping -----------------------------------------------------


def test_percentile_interpolates_between_ranks():
    values = list(range(1, 11))  # 1..10
    assert percentile(values, 50) == 5.5
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile(values, 0) == 1 and percentile(values, 100) == 10
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 50) is None
    assert percentile([5, 1, 3], 50) == 3  # unsorted input


def test_arrivals_spread_over_the_ramp_one_per_slot():
    offsets = arrival_offsets(10, 20.0, seed=1)
    assert offsets == sorted(offsets)
    for i, t in enumerate(offsets):
        assert 2 * i <= t < 2 * (i + 1)  # one arrival in each 2 s slot
    assert len(set(offsets)) == 10  # nobody in the same millisecond
    assert arrival_offsets(10, 20.0, seed=1) == offsets  # repeatable
    assert arrival_offsets(10, 20.0, seed=2) != offsets
    assert arrival_offsets(3, 0) == [0.0, 0.0, 0.0]
    assert arrival_offsets(0, 10) == []


def _result(name, times=None, error=None, retries=None, started=0.0, finished=None):
    r = UserResult(name)
    for step, values in (times or {}).items():
        for v in values:
            r.record(step, v)
    r.error = error
    r.retries.update(retries or {})
    r.started = started
    r.finished = finished if error is None else None
    return r


def test_report_counts_steps_errors_and_retries():
    ok = [
        _result(
            f"u{i}",
            {
                "login": [0.1 * (i + 1)],
                "spawn": [2.0 + i],
                "kernel": [1.0],
                "code": [0.05, 0.07],
                "stop": [0.5],
            },
            started=i,
            finished=i + 5.0,
            retries={"spawn_throttled": i},
        )
        for i in range(3)
    ]
    bad = [
        _result("u3", {}, StepError("login", "invalid username or password (HTTP 403)", "u3: Invalid")),
        _result("u4", {"login": [0.2]}, StepError("spawn", "spawn failed", "timeout")),
        _result("u5", {}, StepError("login", "invalid username or password (HTTP 403)", "u5: Invalid")),
    ]
    report = build_report(ok + bad, url="http://hub", duration=12.0, settings={"ramp": 5, "code": "x"})
    assert (report["users"], report["succeeded"], report["failed"]) == (6, 3, 3)
    steps = report["steps"]
    assert set(steps) == {"login", "spawn", "kernel", "code", "stop"}
    assert steps["login"]["count"] == 4 and steps["login"]["errors"] == 2
    assert steps["spawn"]["count"] == 3 and steps["spawn"]["errors"] == 1
    assert steps["spawn"]["p50"] == 3.0 and steps["spawn"]["max"] == 4.0
    assert steps["code"]["count"] == 6  # every iteration is a sample
    assert report["total"]["count"] == 3 and report["total"]["p50"] == 5.0
    assert report["retries"] == {"spawn_throttled": 3}
    first = report["errors"][0]
    assert (first["step"], first["kind"], first["count"], first["users"]) == (
        "login",
        "invalid username or password (HTTP 403)",
        2,
        ["u3", "u5"],
    )
    assert report["errors"][1]["step"] == "spawn"
    json.dumps(report)  # serializable as is

    text = render_text(report)
    assert "succeeded 3/6, failed 3" in text
    assert "2 x login: invalid username or password (HTTP 403)  (u3, u5)" in text
    assert re.search(r"spawn\s+3\s+1\s+3\.00s", text)

    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [r["step"] for r in rows] == ["login", "spawn", "kernel", "code", "stop", "total"]
    assert rows[1]["count"] == "3" and float(rows[1]["p50"]) == 3.0 and rows[1]["errors"] == "1"


def test_errors_are_grouped_most_frequent_first_with_few_examples():
    results = [_result(f"a{i}", error=StepError("spawn", "timeout")) for i in range(7)]
    results += [_result("b", error=StepError("code", "unexpected output", "expected '42'"))]
    groups = group_errors(results, examples=3)
    assert [(g["step"], g["count"]) for g in groups] == [("spawn", 7), ("code", 1)]
    assert groups[0]["users"] == ["a0", "a1", "a2"]
    assert groups[1]["example"] == "expected '42'"


def test_timeline_counts_every_user_in_exactly_one_stage():
    transitions = [
        (0.0, 0, "login"),
        (1.0, 0, "spawn"),
        (0.5, 1, "login"),
        (1.5, 1, "failed"),
        (3.0, 0, "done"),
    ]
    tl = timeline(transitions, users=3, end=4.0)
    assert tl["stages"] == list(STAGES)
    for row in tl["samples"]:
        assert sum(row[1:]) == 3
    last = dict(zip(tl["stages"], tl["samples"][-1][1:]))
    assert (last["done"], last["failed"], last["waiting"]) == (1, 1, 1)
    at_1_2 = next(r for r in tl["samples"] if r[0] >= 1.2)
    assert dict(zip(tl["stages"], at_1_2[1:]))["spawn"] == 1


# --- the protocol helpers ----------------------------------------------------------------


def test_retry_after_seconds_dates_and_default():
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({}) == 5.0 and retry_after({}, default=1) == 1
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after({"Retry-After": later}) <= 30
    assert retry_after({"Retry-After": "soon"}) == 5.0


def test_page_message_reads_the_login_error_and_error_pages():
    assert (
        page_message('<p class="login_error">\n  Invalid username or password\n</p>')
        == "Invalid username or password"
    )
    assert page_message(
        "<h1>429</h1><p>Too many users trying to log in right now. Try again in 10 seconds.</p>"
    ).startswith("Too many users")


def test_jupyter_messages_and_output():
    msg = jupyter_message("execute_request", {"code": "1"}, session="s1", username="u")
    assert msg["header"]["version"] == "5.3" and msg["header"]["msg_type"] == "execute_request"
    assert (
        msg["header"]["session"] == "s1" and msg["channel"] == "shell" and len(msg["header"]["msg_id"]) == 32
    )
    iopub = [
        {"msg_type": "stream", "content": {"name": "stdout", "text": "42\n"}},
        {"msg_type": "execute_result", "content": {"data": {"text/plain": "'x'"}}},
        {"header": {"msg_type": "error"}, "content": {"ename": "NameError", "evalue": "y"}},
    ]
    assert collect_output(iopub) == "42\n'x'\nNameError: y\n"


def test_url_and_card_selection():
    assert loadtest.normalize_url("https://hub.example.org/") == "https://hub.example.org"
    assert loadtest.normalize_url("http://127.0.0.1:8000/hub/") == "http://127.0.0.1:8000"
    assert loadtest.normalize_url("https://x.org/jupyter/") == "https://x.org/jupyter"
    with pytest.raises(ValueError):
        loadtest.normalize_url("hub.example.org")
    cards = [Card("i1", "p", "instructor"), Card("p1", "p"), Card("p2", "p")]
    picked, skipped = loadtest.pick_cards(cards, 3)
    assert [c.username for c in picked] == ["p1", "p2", "i1"] and skipped == []
    with pytest.raises(ValueError, match="only 3 cards$"):
        loadtest.pick_cards(cards, 4)


def test_cards_that_cannot_sign_in_now_are_skipped_not_tried(sample_hash):
    now = datetime(2026, 7, 15, 12, tzinfo=UTC)
    day = timedelta(days=1)
    accounts = {
        a.username: a
        for a in [
            Account("p1", sample_hash),
            Account("p2", sample_hash, revoked=True),
            Account("p3", sample_hash, valid_until=now - day),
            Account("p4", sample_hash, valid_from=now + day),
            Account("p5", sample_hash, valid_from=now - day, valid_until=now + day),
        ]
    }
    cards = [Card(f"p{i}", "x") for i in range(1, 8)]  # p6, p7: not in the file, the hub will say
    picked, skipped = loadtest.pick_cards(cards, 3, accounts, now)
    assert [c.username for c in picked] == ["p1", "p5", "p6"]
    assert skipped == [
        ("p2", "revoked"),
        ("p3", "expired at 2026-07-14 12:00+00:00"),
        ("p4", "works from 2026-07-16 12:00+00:00"),
    ]
    picked, skipped = loadtest.pick_cards(cards, 1, accounts, now)
    assert [c.username for c in picked] == ["p1"] and skipped == []  # only those passed over count
    with pytest.raises(ValueError) as refused:
        loadtest.pick_cards(cards[:4], 2, accounts, now)
    assert str(refused.value) == (
        "--users 2: the cards file has only 1 card that can sign in now (3 cards skipped: revoked: p2; "
        "expired at 2026-07-14 12:00+00:00: p3; works from 2026-07-16 12:00+00:00: p4)"
    )
    many = [(f"p{i}", "revoked") for i in range(7)]
    assert describe_skipped(many) == "revoked: p0, p1, p2, p3, p4 and 2 more"


def test_the_accounts_file_beside_the_cards_is_read_and_skipped_cards_reported(tmp_path, capsys):
    accounts, by_name = issue_accounts("ws", participants=3, instructors=0)
    (tmp_path / "cards.csv").write_text(cards_csv(list(by_name.values())))
    save_accounts(tmp_path / "accounts.yaml", revoke(AccountBook(accounts), ["ws001"]))
    args = ["loadtest", "--url", f"http://127.0.0.1:{free_port()}", "--cards", str(tmp_path / "cards.csv")]
    out = tmp_path / "r.json"
    # nothing answers there: the tried card fails, the revoked one is neither tried nor failed
    assert main([*args, "--users", "1", "--ramp", "0", "--json", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"Skipping 1 card that cannot sign in now by {tmp_path / 'accounts.yaml'} (revoked: ws001)" in (
        captured.err
    )
    assert "skipped 1 card that cannot sign in now, not counted (revoked: ws001)" in captured.out
    report = json.loads(out.read_text())
    assert (report["users"], report["failed"]) == (1, 1)
    assert [u["username"] for u in report["per_user"]] == ["ws002"]
    assert report["skipped"] == [{"username": "ws001", "why": "revoked"}]
    # an accounts file named on the command line is read instead; a missing one is an error
    assert main([*args, "--users", "3", "--accounts", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in capsys.readouterr().err
    assert main([*args, "--users", "3"]) == 2
    assert "only 2 cards that can sign in now (1 card skipped: revoked: ws001)" in capsys.readouterr().err


def test_cards_the_card_desk_reissued_or_revoked_are_skipped_by_the_desk_file_beside_them(tmp_path):
    # the demo's layout: the desk file beside the accounts file; the hub merges it over the file
    accounts, by_name = issue_accounts("ws", participants=3, instructors=0)
    save_accounts(tmp_path / "accounts.yaml", accounts)
    reissued = replace(accounts[0], password_hash=accounts[1].password_hash)  # a new password
    save_accounts(tmp_path / DESK_FILE_NAME, [reissued, replace(accounts[2], revoked=True)])
    book, changed = loadtest.accounts_as_the_hub_sees_them(tmp_path / "accounts.yaml")
    assert changed == {"ws001"} and book["ws003"].revoked
    cards = list(by_name.values())
    with pytest.raises(ValueError, match="reissued at the card desk: ws001; revoked: ws003"):
        loadtest.pick_cards(cards, 2, book, reissued=changed)
    picked, skipped = loadtest.pick_cards(cards, 1, book, reissued=changed)
    assert [c.username for c in picked] == ["ws002"] and skipped == [("ws001", loadtest.REISSUED)]
    # without a desk file: the accounts file alone, nothing reissued
    (tmp_path / DESK_FILE_NAME).unlink()
    assert loadtest.accounts_as_the_hub_sees_them(tmp_path / "accounts.yaml")[1] == frozenset()


def test_stage_status_counts_every_stage_and_retries():
    status = stage_status(Counter(waiting=1, spawn=1, failed=1), retries=2)
    assert (
        status == "waiting 1 | login 0 | spawn 1 | kernel 0 | code 0 | stop 0 | done 0 | failed 1 | retries 2"
    )
    assert "retries" not in stage_status(Counter(done=3))


# --- the plot ------------------------------------------------------------------------------


def test_plot_stacks_the_users_of_each_stage_over_time():
    # three users: one done, one failed, one still waiting at the end
    tl = timeline(
        [(1.0, 0, "login"), (2.0, 0, "spawn"), (3.0, 0, "done"), (1.0, 1, "login"), (2.5, 1, "failed")],
        users=3,
        end=4.0,
    )
    svg = timeline_chart(tl, "users per stage")
    n = len(tl["samples"])  # one column per sample: what the drawing shows there is what was counted
    drawn = [dict(read_stacks(svg, (k + 0.5) / n)) for k in range(n)]
    assert drawn == [{st: c for st, c in zip(tl["stages"], row[1:]) if c} for row in tl["samples"]]
    assert drawn[0] == {"waiting": 3} and drawn[-1] == {"failed": 1, "done": 1, "waiting": 1}
    # finished users at the bottom, those still to come on top
    order = [stage for stage, _ in read_stacks(svg, 0.99)]
    assert order == ["failed", "done", "waiting"] == [s for s in STACK_ORDER if s in order]
    assert "<title>users per stage</title>" in svg


def test_plot_is_svg_or_an_html_page_holding_it(tmp_path):
    tl = timeline([(0.5, 0, "login"), (1.0, 0, "done")], users=1, end=2.0)
    write_plot(tmp_path / "t.svg", tl, "one user")
    svg = (tmp_path / "t.svg").read_text()
    assert svg.startswith("<svg") and svg.strip() == timeline_chart(tl, "one user")
    write_plot(tmp_path / "t.HTML", tl, "one & only")
    page = (tmp_path / "t.HTML").read_text()
    assert page.startswith("<!doctype html>") and "<title>one &amp; only</title>" in page
    inner = page[page.index("<svg") : page.index("</svg>") + len("</svg>")]
    assert read_stacks(inner, 0.99) == [("done", 1)]
    with pytest.raises(ValueError, match="PNG is no longer written"):
        write_plot(tmp_path / "t.png", tl, "x")
    assert not (tmp_path / "t.png").exists()


# --- main without a hub ----------------------------------------------------------------------


def test_a_plot_name_other_than_svg_or_html_is_refused_before_the_test(tmp_path, capsys):
    cards = tmp_path / "cards.csv"
    cards.write_text(cards_csv([Card("a", "b")]))
    unreachable = f"http://127.0.0.1:{free_port()}"
    assert (
        main(
            [
                "loadtest",
                "--url",
                unreachable,
                "--cards",
                str(cards),
                "--users",
                "1",
                "--plot",
                str(tmp_path / "timeline.png"),
            ]
        )
        == 2
    )
    captured = capsys.readouterr()
    assert "timeline.png" in captured.err and ".svg" in captured.err and ".html" in captured.err
    assert captured.out == ""  # refused before any participant ran
    with pytest.raises(SystemExit):
        main(["loadtest", "--help"])
    assert "no PNG" in " ".join(capsys.readouterr().out.split())


def test_bad_cards_file_and_too_few_cards_exit_2(tmp_path, capsys):
    assert (
        main(
            ["loadtest", "--url", "http://127.0.0.1:1", "--cards", str(tmp_path / "none.csv"), "--users", "1"]
        )
        == 2
    )
    assert "none.csv" in capsys.readouterr().err
    cards = tmp_path / "cards.csv"
    cards.write_text(cards_csv([Card("a", "b")]))
    assert main(["loadtest", "--url", "http://127.0.0.1:1", "--cards", str(cards), "--users", "2"]) == 2
    assert "only 1 card" in capsys.readouterr().err
    assert (
        main(
            [
                "loadtest",
                "--url",
                "http://127.0.0.1:1",
                "--cards",
                str(cards),
                "--users",
                "1",
                "--progress-interval",
                "0",
            ]
        )
        == 2
    )
    assert "--progress-interval must be more than 0" in capsys.readouterr().err


def test_unreachable_hub_is_reported_per_user_not_a_crash(tmp_path, capsys):
    cards = tmp_path / "cards.csv"
    cards.write_text(cards_csv([Card("a", "x"), Card("b", "y")]))
    out = tmp_path / "r.json"
    code = main(
        [
            "loadtest",
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--cards",
            str(cards),
            "--users",
            "2",
            "--ramp",
            "0",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "r.html"),
        ]
    )
    assert code == 1
    report = json.loads(out.read_text())
    assert (report["users"], report["succeeded"], report["failed"]) == (2, 0, 2)
    (group,) = report["errors"]
    assert group["step"] == "login" and group["kind"].startswith("connection error") and group["count"] == 2
    err = capsys.readouterr().err
    assert (
        err.splitlines()[-1].startswith("users finished: 2/2") and "failed 2" in err
    )  # the live display's last line
    page = (tmp_path / "r.html").read_text()
    assert read_stacks(page[page.index("<svg") : page.index("</svg>") + 6], 0.99) == [("failed", 2)]


# --- the participant against a scripted hub: busy logins, a reasonless spawn failure -----------


@contextlib.asynccontextmanager
async def scripted_hub(passwords: dict[str, str]):
    """A stand-in hub (aiohttp on 127.0.0.1) for the protocol corners a real hub shows only
    under load: it answers each user's first login with 503 + Retry-After: 0, and ends the
    progress stream with a bare "Spawn failed" although the server comes up (as JupyterHub does
    when a spawn finished but its proxy route is still being added). Yields (url, seen)."""
    from aiohttp import web

    seen = Counter()

    async def login_page(request):
        resp = web.Response(
            text='<form><input type="hidden" name="_xsrf" value="tok"/>'
            '<input name="username"/><input name="password" type="password"/></form>',
            content_type="text/html",
        )
        resp.set_cookie("_xsrf", "tok", path="/hub/")
        return resp

    async def login(request):
        form = await request.post()
        assert form["_xsrf"] == "tok"
        name = form["username"]
        seen[f"login {name}"] += 1
        if seen[f"login {name}"] == 1:
            return web.Response(status=503, text="<p>busy</p>", headers={"Retry-After": "0"})
        if passwords.get(name) != form["password"]:
            return web.Response(
                status=403,
                content_type="text/html",
                text='<p class="login_error">Invalid username or password</p>',
            )
        resp = web.HTTPFound("/hub/spawn")
        resp.set_cookie("user", name, path="/")
        raise resp

    async def spawn(request):
        seen[f"spawn {request.cookies['user']}"] += 1
        raise web.HTTPFound(f"/hub/spawn-pending/{request.cookies['user']}")

    async def progress(request):
        assert request.headers["X-XSRFToken"] == "tok"
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"progress": 50, "message": "starting"}\n\n')
        await resp.write(b'data: {"progress": 100, "failed": true, "message": "Spawn failed"}\n\n')
        return resp

    async def user_model(request):
        name = request.match_info["name"]
        if not seen[f"spawn {name}"]:  # before the participant starts it, no server runs
            return web.json_response({"name": name, "pending": None, "servers": {}})
        seen[f"poll {name}"] += 1
        return web.json_response(
            {"name": name, "pending": None, "servers": {"": {"ready": True, "url": f"/user/{name}/"}}}
        )

    async def server(request):
        return web.Response(text="hello")

    async def stop(request):
        assert request.headers["X-XSRFToken"] == "tok"
        seen[f"stop {request.match_info['name']}"] += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/hub/login", login_page)
    app.router.add_post("/hub/login", login)
    app.router.add_get("/hub/spawn", spawn)
    app.router.add_get("/hub/api/users/{name}/server/progress", progress)
    app.router.add_get("/hub/api/users/{name}", user_model)
    app.router.add_delete("/hub/api/users/{name}/server", stop)
    app.router.add_get("/user/{name}/", server)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", seen
    finally:
        await runner.cleanup()


async def test_busy_login_is_retried_and_a_spawn_failed_without_reason_is_rechecked():
    from jupyterhub_workshop.rehearsal.loadtest.participant import Options

    async with scripted_hub({"ann": "pw"}) as (url, seen):
        report = await loadtest.run_loadtest(
            Options(url=url, code="", stop=True), [Card("ann", "pw")], stream=io.StringIO()
        )
    assert report["succeeded"] == 1, report["errors"]
    assert report["retries"] == {"login_busy": 1, "spawn_failed_without_reason": 1}
    assert report["retry_wait_seconds"] == {"login_busy": 0.0}
    assert (seen["login ann"], seen["stop ann"]) == (2, 1) and seen["poll ann"] >= 1
    assert [report["steps"][s]["count"] for s in ("login", "spawn", "kernel", "code", "stop")] == [
        1,
        1,
        0,
        0,
        1,
    ]


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [False, True], ids=["log", "terminal"])
async def test_the_live_display_shows_users_per_stage(terminal, monkeypatch):
    from jupyterhub_workshop.rehearsal.loadtest.participant import Options

    monkeypatch.setenv("COLUMNS", "400")  # a wide terminal: nothing cut off
    stream = Terminal() if terminal else io.StringIO()
    async with scripted_hub({"ann": "pw", "bob": "pw2"}) as (url, seen):
        await loadtest.run_loadtest(
            Options(url=url, code="", stop=True),
            [Card("ann", "pw"), Card("bob", "nope")],
            stream=stream,
            interval=0.01,
        )
    text = stream.getvalue()
    if terminal:  # one line, redrawn in place
        assert text.count("\n") == 1 and text.endswith("\n") and text.count("\r") >= 2
        first, final = text.split("\r")[1], text.split("\r")[-1]
    else:  # plain lines, and only when something changed
        assert "\r" not in text and "\x1b" not in text
        lines = text.splitlines()
        without_clock = [re.sub(r" \[[^]]*\]", "", line) for line in lines]
        assert all(a != b for a, b in zip(without_clock, without_clock[1:]))
        first, final = lines[0], lines[-1]
    assert first.startswith("users finished:") and "0/2" in first and "waiting 2 | login 0" in first
    assert final.startswith("users finished:") and "2/2" in final and "done 1 | failed 1 | retries 3" in final


async def test_a_wrong_card_fails_only_its_participant():
    from jupyterhub_workshop.rehearsal.loadtest.participant import Options

    cards = [Card("ann", "pw"), Card("bob", "not-bobs"), Card("cy", "pw3")]
    async with scripted_hub({"ann": "pw", "bob": "pw2", "cy": "pw3"}) as (url, seen):
        report = await loadtest.run_loadtest(
            Options(url=url, code="", stop=True), cards, ramp=0.1, stream=io.StringIO()
        )
    assert (report["succeeded"], report["failed"]) == (2, 1)
    (group,) = report["errors"]
    assert (group["step"], group["kind"], group["users"]) == (
        "login",
        "invalid username or password (HTTP 403)",
        ["bob"],
    )
    assert group["example"] == "bob: Invalid username or password"
    assert report["steps"]["stop"]["count"] == 2 and seen["stop bob"] == 0  # bob never got a server
    assert [u["ok"] for u in report["per_user"]] == [True, False, True]


# --- end to end: the local demo hub --------------------------------------------------------


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    """The local demo hub (`jupyterhub-workshop demo`'s state, cards and configuration) with two
    changes: it refuses spawns beyond three pending (429, ``Retry-After: 1``), and its spawn
    timeouts fit a small machine (a JupyterLab server needs ~5 CPU-seconds to start; ten of
    them together pass the default 30 s ``http_timeout`` on two busy cores)."""
    from jupyterhub_workshop.rehearsal import demo

    tmp = tmp_path_factory.mktemp("loadtest-demo")
    port = free_port()
    state = tmp / "state"
    log = tmp / "demo.log"
    config = demo.prepare(state, port=port, out=io.StringIO())
    config.write_text(
        config.read_text()
        + textwrap.dedent("""
        c.Spawner.http_timeout = 180
        c.Spawner.start_timeout = 240
        c.JupyterHub.concurrent_spawn_limit = 3
        c.JupyterHub.tornado_settings = {"spawn_throttle_retry_range": (1, 2)}
        """)
    )
    with running_hub(config, state, log, port) as url:
        yield url, state, log


@pytest.mark.e2e
def test_ten_participants_complete_every_step_and_throttled_spawns_are_retried(demo_hub, tmp_path, capsys):
    url, state, log = demo_hub
    users = 10
    out = tmp_path / "report"
    mark = len(log.read_text())
    code = main(
        [
            "loadtest",
            "--url",
            url + "/",
            "--cards",
            str(state / "cards.csv"),
            "--users",
            str(users),
            "--ramp",
            "10",
            "--iterations",
            "2",
            "--json",
            f"{out}.json",
            "--csv",
            f"{out}.csv",
            "--plot",
            f"{out}.svg",
        ]
    )
    captured = capsys.readouterr()
    hub_log = log.read_text()[mark:]
    assert code == 0, captured.out + "\n" + hub_log[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["users"], report["succeeded"], report["failed"]) == (users, users, 0)
    steps = report["steps"]
    for step in ("login", "spawn", "kernel", "stop"):
        assert steps[step]["count"] == users and steps[step]["errors"] == 0, step
        assert 0 < steps[step]["p50"] <= steps[step]["p95"] <= steps[step]["max"]
    assert steps["code"]["count"] == 2 * users  # --iterations 2: the kernel answered 42 twice each
    assert report["settings"]["expect"] == "42"
    assert "succeeded 10/10, failed 0" in captured.out
    rows = {r["step"]: r for r in csv.DictReader(open(f"{out}.csv"))}
    assert rows["kernel"]["count"] == str(users) and rows["code"]["count"] == str(2 * users)
    assert read_stacks((tmp_path / "report.svg").read_text(), 0.999) == [("done", users)]
    assert "done 10 | failed 0" in captured.err.splitlines()[-1]  # plain progress lines (not a terminal)

    # JupyterLab starts take seconds each, arrivals come every second: the hub refused spawns
    # past three pending, and every refusal was waited out (Retry-After) and retried
    throttled = report["retries"].get("spawn_throttled", 0)
    assert throttled >= 1
    assert len(re.findall(r"pending spawns, throttling", hub_log)) == throttled
    assert report["retry_wait_seconds"]["spawn_throttled"] >= throttled * 1.0
    assert "spawn throttled" in captured.out

    assert hub_log.count("Kernel started") == users
    for card in read_cards_csv(state / "cards.csv")[:users]:  # every server was stopped again
        assert re.search(rf"20[24] DELETE /hub/api/users/{card.username}/server", hub_log), card.username


@pytest.mark.e2e
def test_wrong_card_is_reported_as_a_login_error_not_a_crash(demo_hub, tmp_path, capsys):
    url, state, log = demo_hub
    cards = read_cards_csv(state / "cards.csv")
    wrong = Card(cards[10].username, "wrong-password")
    path = tmp_path / "cards.csv"
    path.write_text(cards_csv([wrong]))
    code = main(
        [
            "loadtest",
            "--url",
            url,
            "--cards",
            str(path),
            "--users",
            "1",
            "--ramp",
            "0",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1  # gates a rehearsal
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["users"], report["succeeded"], report["failed"]) == (1, 0, 1)
    (group,) = report["errors"]
    assert (group["step"], group["kind"], group["users"]) == (
        "login",
        "invalid username or password (HTTP 403)",
        [wrong.username],
    )
    assert "Invalid username or password" in group["example"]  # the hub's own message
    assert report["steps"]["login"]["errors"] == 1 and report["steps"]["spawn"]["count"] == 0
    assert f"1 x login: invalid username or password (HTTP 403)  ({wrong.username})" in out


@pytest.mark.e2e
def test_servers_someone_already_runs_are_used_but_left_running(demo_hub, tmp_path, capsys):
    url, state, log = demo_hub
    person, rehearsed = read_cards_csv(state / "cards.csv")[12:14]
    cards = tmp_path / "cards.csv"
    cards.write_text(cards_csv([person, rehearsed]))
    # a participant at the workshop has a server running with this card...
    only_person = tmp_path / "person.csv"
    only_person.write_text(cards_csv([person]))
    args = ["loadtest", "--url", url, "--users", "1", "--ramp", "0", "--code", ""]
    assert main([*args, "--cards", str(only_person), "--keep"]) == 0
    mark = len(log.read_text())
    # ...when the organizer rehearses with the same cards: both are used, only the test's own stopped
    assert main([*args, "--cards", str(cards), "--users", "2", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["found_running"] == [person.username] and report["succeeded"] == 2
    assert f"1 server already running before the test, left running ({person.username})" in out
    hub_log = log.read_text()[mark:]
    assert re.search(rf"20[24] DELETE /hub/api/users/{rehearsed.username}/server", hub_log)
    assert not re.search(rf"DELETE /hub/api/users/{person.username}/server", hub_log)

    async def stop_the_persons_server():
        async with new_session() as s:
            assert (await login(s, url, person.username, person.password)).ok
            xsrf = s.cookie_jar.filter_cookies(URL(f"{url}/hub/")).get("_xsrf").value
            async with s.delete(
                f"{url}/hub/api/users/{person.username}/server", headers={"X-XSRFToken": xsrf}
            ) as r:
                assert r.status in (202, 204)

    asyncio.run(stop_the_persons_server())
