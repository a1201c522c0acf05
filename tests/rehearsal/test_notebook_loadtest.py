"""`loadtest --notebook`: the pure parts (notebooks, think times, resources, per-cell numbers,
the verdict, the page) and bad input refused before anyone signs in."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import nbformat
import pytest

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.rehearsal.loadtest.html import render_html
from jupyterhub_workshop.rehearsal.loadtest.notebook import (
    NotebookError,
    check_unique,
    lesson_from_json,
    parse_think,
    read_notebook,
    server_notebook_path,
    think_times,
)
from jupyterhub_workshop.rehearsal.loadtest.notebook_report import (
    cell_rows,
    notebook_section,
    render_notebook_text,
    resources_section,
    verdict,
)
from jupyterhub_workshop.rehearsal.loadtest.report import CellRun, StepError, UserResult, build_report
from jupyterhub_workshop.rehearsal.loadtest.resources import (
    Metrics,
    Usage,
    parse_kernel_usage,
    parse_metrics,
)

MIB = 1024**2
SCHEMA = Path(__file__).parents[2] / "jupyterhub_workshop" / "rehearsal" / "loadtest" / "report.schema.json"


def nb_json(cells, kernel="python3") -> dict:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel}
    nb.cells = [nbformat.v4.new_markdown_cell("# title")] + [nbformat.v4.new_code_cell(c) for c in cells]
    return json.loads(nbformat.writes(nb))


# --- notebooks --------------------------------------------------------------------------------


def test_a_notebook_becomes_its_code_cells_numbered_as_the_notebook_shows_them(tmp_path):
    path = tmp_path / "lesson1.ipynb"
    data = nb_json(["import numpy as np", "   ", "x = np.ones(3)\nx.sum()"], kernel="python3")
    path.write_text(json.dumps(data))
    lesson = read_notebook(path)
    assert (lesson.name, lesson.server_path, lesson.kernel_name) == (
        "lesson1.ipynb",
        "lesson1.ipynb",
        "python3",
    )
    assert [(c.key, c.number) for c in lesson.cells] == [("lesson1.ipynb:2", 2), ("lesson1.ipynb:4", 4)]
    assert lesson.cells[1].headline == "x = np.ones(3)"  # the blank cell is skipped, numbers are kept
    assert lesson.content["cells"][0]["cell_type"] == "markdown"  # uploaded whole


def test_an_nbformat_3_notebook_is_read_too():
    v3 = nbformat.v3.new_notebook(
        worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell(input="1 + 1")])]
    )
    lesson = lesson_from_json(nbformat.writes(v3, version=3), "old.ipynb", "old.ipynb", upload=False)
    assert [c.source for c in lesson.cells] == ["1 + 1"] and lesson.content is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json at all", "old.ipynb: not a valid Jupyter notebook"),
        (
            '{"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
            "not a valid Jupyter notebook",
        ),
        ('{"nbformat": 4}', "not a valid Jupyter notebook"),
        ('{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "has no code cells to run"),
    ],
)
def test_bad_notebooks_are_refused_with_their_name(text, message):
    with pytest.raises(NotebookError, match=message):
        lesson_from_json(text, "old.ipynb", "old.ipynb", upload=True)


def test_a_file_that_is_not_a_notebook_or_missing_is_refused(tmp_path):
    (tmp_path / "lesson.py").write_text(json.dumps(nb_json(["1"])))
    with pytest.raises(NotebookError, match=r"lesson.py: a notebook's name ends in .ipynb"):
        read_notebook(tmp_path / "lesson.py")
    with pytest.raises(NotebookError, match="cannot read it"):
        read_notebook(tmp_path / "missing.ipynb")
    (tmp_path / "binary.ipynb").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(NotebookError, match="not UTF-8"):
        read_notebook(tmp_path / "binary.ipynb")


def test_server_paths_are_relative_notebooks_and_names_unique():
    assert server_notebook_path("shared/lesson1.ipynb") == "shared/lesson1.ipynb"
    for bad in ("/srv/shared/a.ipynb", "../a.ipynb", "", "shared/data.csv"):
        with pytest.raises(NotebookError):
            server_notebook_path(bad)
    check_unique(["a.ipynb", "b.ipynb"])
    with pytest.raises(NotebookError, match="two notebooks are named a.ipynb"):
        check_unique(["a.ipynb", "b.ipynb", "a.ipynb"])


def test_think_times_are_seeded_per_participant_and_none_before_the_first_cell():
    assert (
        parse_think("5-20") == (5.0, 20.0) and parse_think("3") == (3.0, 3.0) and parse_think("0") == (0, 0)
    )
    for bad in ("x", "20-5", "-1", "1-x"):
        with pytest.raises(ValueError, match="--think"):
            parse_think(bad)
    a = think_times(0, "demo001", 10, (5, 20))
    assert a[0] == 0 and len(a) == 10 and all(5 <= t <= 20 for t in a[1:])
    assert think_times(0, "demo001", 10, (5, 20)) == a  # repeatable
    assert think_times(0, "demo002", 10, (5, 20)) != a  # participants do not think in step
    assert think_times(1, "demo001", 10, (5, 20)) != a
    assert think_times(0, "x", 3, (2, 2)) == [0, 2, 2]


# --- resources ---------------------------------------------------------------------------------


def test_metrics_answers_are_read_and_anything_else_refused():
    m = parse_metrics(
        {"rss": 300 * MIB, "limits": {"memory": {"rss": 1024 * MIB, "warn": False}}, "cpu_percent": 12.5}
    )
    assert m == Metrics(300 * MIB, 12.5, 1024 * MIB)
    assert parse_metrics({"rss": 5, "limits": {"memory": {"rss": 0}}}) == Metrics(
        5, None, None
    )  # no CPU, no limit
    with pytest.raises(ValueError):
        parse_metrics({"message": "Forbidden"})
    assert parse_kernel_usage({"content": {"kernel_memory": 123, "kernel_cpu": 0.0}}) == 123
    assert parse_kernel_usage({"content": {"reason": "not_supported"}}) is None


def test_a_participants_samples_become_peaks_near_and_at_the_limit():
    u = Usage()
    limit = 1000 * MIB
    u.add(0.0, Metrics(200 * MIB, 0.0, limit), None, None)
    u.add(1.0, Metrics(850 * MIB, 150.0, limit), 600 * MIB, "a.ipynb:2")
    u.add(2.0, Metrics(910 * MIB, 50.0, limit), None, "a.ipynb:3")
    s = u.summary()
    assert (s["peak_memory"], s["peak_kernel_memory"], s["memory_limit"]) == (910 * MIB, 600 * MIB, limit)
    assert (s["peak_cpu"], s["mean_cpu"]) == (1.5, pytest.approx(0.667, abs=1e-3))  # cores
    assert s["near_limit"] and not s["hit_limit"]
    assert u.peak_by_cell() == {"a.ipynb:2": 850 * MIB, "a.ipynb:3": 910 * MIB}
    u.add(3.0, Metrics(limit, None, limit), None, "a.ipynb:3")
    assert u.summary()["hit_limit"]
    assert Usage().summary() is None


# --- per-cell numbers and the verdict ----------------------------------------------------------


def lesson_of(n=3):
    return lesson_from_json(nb_json([f"cell{i}" for i in range(n)]), "l.ipynb", "l.ipynb", upload=True)


def person(name, runs, peaks=None, limit=None, error=None):
    r = UserResult(name)
    r.cells = [CellRun(k, s, st, *(e[0] if e else ())) for k, s, st, *e in runs]
    r.started, r.finished = (0.0, 5.0) if error is None else (0.0, None)
    r.error = error
    if peaks is not None:
        r.usage = Usage()
        for i, (cell, rss) in enumerate(peaks):
            r.usage.add(i, Metrics(rss, 100.0, limit), None, cell)
    return r


def test_crowd_latency_is_a_ratio_to_the_leads_with_a_floor():
    lesson = lesson_of()
    keys = [c.key for c in lesson.cells]
    lead = person(
        "lead", [(keys[0], 2.0, "ok"), (keys[1], 0.001, "ok"), (keys[2], 0.5, "error", ("ValueError", "x"))]
    )
    crowd = [
        person(
            f"p{i}",
            [
                (keys[0], 2.0 * (i + 1), "ok"),
                (keys[1], 0.02, "ok"),
                (keys[2], 0.5, "error", ("ValueError", "x")),
            ],
        )
        for i in range(4)
    ]
    rows = cell_rows([lesson], lead, crowd)
    assert (
        rows[0]["crowd"]["p50"] == 5.0 and rows[0]["ratio"]["p50"] == 2.5 and rows[0]["ratio"]["max"] == 4.0
    )
    assert rows[1]["ratio"]["p50"] == 2.0  # 20 ms against the 10 ms floor, not 20x a 1 ms lead
    assert rows[2]["failures"] == [
        {
            "status": "error",
            "ename": "ValueError",
            "evalue": "x",
            "count": 4,
            "users": ["p0", "p1", "p2", "p3"],
        }
    ]
    assert rows[2]["regressions"] == 0  # the lead failed it too
    assert verdict(rows, None, crowd, lead=True) == {"ok": True, "reasons": []}


def test_failing_a_cell_the_lead_passed_or_the_memory_limit_fails_the_rehearsal():
    lesson = lesson_of(2)
    k1, k2 = (c.key for c in lesson.cells)
    lead = person("lead", [(k1, 1.0, "ok"), (k2, 1.0, "ok")])
    crowd = [
        person("p0", [(k1, 1.0, "ok"), (k2, 300.0, "timeout", ("Timeout", "interrupted after 300s"))]),
        person("p1", [(k1, 1.0, "died", ("KernelDied", "the kernel died"))]),  # stopped after the death
        person(
            "p2",
            [(k1, 1.0, "ok"), (k2, 1.0, "ok")],
            peaks=[(k1, 950 * MIB), (k2, 1000 * MIB)],
            limit=1000 * MIB,
        ),
    ]
    rows = cell_rows([lesson], lead, crowd)
    assert rows[0]["regressions"] == 1 and rows[1]["regressions"] == 1
    assert rows[1]["crowd"]["not_run"] == 1 and rows[1]["crowd"]["timeouts"] == 1
    assert rows[0]["memory"]["near_limit"] == ["p2"]
    res = resources_section(lead, crowd, 2.0)
    assert res["hit_limit"] == ["p2"] and res["unmeasured"] == ["p0", "p1"]
    v = verdict(rows, res, crowd, lead=True)
    assert not v["ok"]
    assert v["reasons"] == [
        "1 participant failed l.ipynb:2 which the lead passed (KernelDied: the kernel died)",
        "1 participant failed l.ipynb:3 which the lead passed (Timeout: interrupted after 300s)",
        "2 participants hit the memory limit or lost the kernel (p1, p2)",
    ]
    crowd.append(person("p3", [], error=StepError("spawn", "timeout")))
    assert "1 participant did not finish (see errors)" in verdict(rows, res, crowd, lead=True)["reasons"]


def test_without_a_lead_any_failed_cell_fails():
    lesson = lesson_of(1)
    (k,) = (c.key for c in lesson.cells)
    crowd = [person("p0", [(k, 1.0, "error", ("NameError", "x"))])]
    rows = cell_rows([lesson], None, crowd)
    assert rows[0]["regressions"] == 1 and rows[0]["ratio"]["p50"] is None
    assert verdict(rows, None, crowd, lead=False)["reasons"] == [
        "1 participant failed l.ipynb:2 (no lead run to compare with) (NameError: x)"
    ]


def full_report(with_resources=True):
    lesson = lesson_of(2)
    k1, k2 = (c.key for c in lesson.cells)
    peaks = (lambda a, b: [(k1, a), (k2, b)]) if with_resources else (lambda a, b: None)
    lead = person(
        "lead",
        [(k1, 0.5, "ok"), (k2, 0.1, "error", ("ZeroDivisionError", "division by zero"))],
        peaks(300 * MIB, 310 * MIB),
        2048 * MIB,
    )
    crowd = []
    for i in range(3):
        r = person(
            f"p{i}",
            [(k1, 0.5 + i, "ok"), (k2, 0.1, "error", ("ZeroDivisionError", "division by zero"))],
            peaks(300 * MIB + i * 50 * MIB, 320 * MIB),
            2048 * MIB,
        )
        r.started, r.finished = 0.0, 5.0
        if not with_resources:
            r.resources_missing = "jupyter-resource-usage is not installed (HTTP 404)"
        crowd.append(r)
    report = build_report(
        crowd,
        url="http://hub",
        duration=6.0,
        settings={"notebooks": ["l.ipynb"]},
        transitions=[(0.0, 0, "login"), (5.0, 0, "done")],
    )
    report.update(notebook_section([lesson], lead, crowd, {"think": [0, 0]}, 2.0))
    return report


def test_the_report_follows_its_schema_with_and_without_resources():
    schema = json.loads(SCHEMA.read_text())
    for with_resources in (True, False):
        report = json.loads(json.dumps(full_report(with_resources)))
        jsonschema.validate(report, schema)
    assert "resources" not in report  # missing extension: no section, never zeros
    assert report["resources_missing"].startswith("jupyter-resource-usage is not installed")


def test_the_summary_names_slow_and_failed_cells_memory_and_the_verdict():
    text = render_notebook_text(full_report())
    assert "l.ipynb:2                   0.50s    1.50s    2.40s    2.50s    4.8x  cell0" in text
    assert "3 x error: ZeroDivisionError: division by zero  (lead: ZeroDivisionError too" in text
    assert (
        "memory per participant (peak, server and kernels): p50 350 MiB, p95 395 MiB, max 400 MiB; limit 2048 MiB"
        in text
    )
    assert "everyone stayed under 90% of the limit" in text and "verdict: PASS" in text
    text = render_notebook_text(full_report(with_resources=False))
    assert "resources: not measured. jupyter-resource-usage is not installed" in text
    assert "p50 0 " not in text


def test_the_page_holds_the_admin_pages_charts_and_a_row_per_cell():
    page = render_html(full_report())
    assert page.count("<svg") == 5  # latency, failures, memory, CPU, stages
    assert "time per cell (ms)" in page and "participants by peak memory" in page
    assert page.count("<tr>") == 3 + 4  # header + two cells; header + three participants
    assert page.index("<td>p2</td>") < page.index("<td>p0</td>")  # the largest peak first
    page = render_html(full_report(with_resources=False))
    assert page.count("<svg") == 3 and "Resources not measured" in page
    assert "<h2>Participants</h2>" not in page


# --- bad input: refused before anyone signs in, nothing written -------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "lesson.ipynb: not a valid Jupyter notebook"),
        (json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), "has no code cells"),
    ],
)
def test_bad_notebooks_exit_2_before_the_hub_is_asked_and_write_nothing(tmp_path, capsys, content, message):
    (tmp_path / "lesson.ipynb").write_text(content)
    (tmp_path / "cards.csv").write_text("username,password,role\nu,p,participant\n")
    code = main(
        [
            "loadtest",
            "--url",
            "http://127.0.0.1:9",
            "--cards",
            str(tmp_path / "cards.csv"),
            "--users",
            "1",
            "--notebook",
            str(tmp_path / "lesson.ipynb"),
            "--json",
            str(tmp_path / "r.json"),
            "--html",
            str(tmp_path / "r.html"),
        ]
    )
    assert code == 2 and message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv", "lesson.ipynb"]


def test_an_html_report_needs_notebooks_and_an_html_name(tmp_path, capsys):
    (tmp_path / "cards.csv").write_text("username,password,role\nu,p,participant\n")
    base = ["loadtest", "--url", "http://127.0.0.1:9", "--cards", str(tmp_path / "cards.csv"), "--users", "1"]
    assert main([*base, "--html", str(tmp_path / "r.html")]) == 2
    assert "--html draws the notebook rehearsal" in capsys.readouterr().err
    (tmp_path / "l.ipynb").write_text(json.dumps(nb_json(["1"])))
    assert main([*base, "--notebook", str(tmp_path / "l.ipynb"), "--html", str(tmp_path / "r.svg")]) == 2
    assert "name the page .html" in capsys.readouterr().err
    assert main([*base, "--notebook", str(tmp_path / "l.ipynb"), "--think", "9-1"]) == 2
    assert "--think '9-1'" in capsys.readouterr().err


# --- the kernel protocol's corners, against a stand-in kernel websocket --------------------------


async def test_a_cell_past_its_timeout_is_interrupted_and_a_dying_kernel_is_recorded():
    """A real kernel cannot be made to die on cue here, nor to ignore an interrupt: a stand-in
    server speaks the kernel websocket for those (``hang`` runs until interrupted, ``die``
    makes the kernel report itself restarting, as jupyter-server does when the kernel dies)."""
    import aiohttp
    from aiohttp import web

    from jupyterhub_workshop.rehearsal.loadtest.notebook import Cell
    from jupyterhub_workshop.rehearsal.loadtest.participant import Options, Participant

    interrupts = []
    hanging: dict = {}

    def msg(parent, channel, kind, content):
        return json.dumps(
            {
                "header": {"msg_id": "x", "msg_type": kind},
                "parent_header": parent,
                "content": content,
                "channel": channel,
            }
        )

    async def channels(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        hanging["ws"] = ws
        async for frame in ws:
            m = json.loads(frame.data)
            parent, code = m["header"], m["content"].get("code", "")
            await ws.send_str(msg(parent, "iopub", "status", {"execution_state": "busy"}))
            if code == "hang":
                hanging["parent"] = parent
                continue
            if code == "die":
                await ws.send_str(msg({}, "iopub", "status", {"execution_state": "restarting"}))
                continue
            await ws.send_str(msg(parent, "shell", "reply", {"status": "ok"}))
            await ws.send_str(msg(parent, "iopub", "status", {"execution_state": "idle"}))
        return ws

    async def interrupt(request):
        interrupts.append(request.match_info["kid"])
        ws, parent = hanging["ws"], hanging.pop("parent")
        await ws.send_str(
            msg(
                parent,
                "shell",
                "execute_reply",
                {"status": "error", "ename": "KeyboardInterrupt", "evalue": ""},
            )
        )
        await ws.send_str(msg(parent, "iopub", "status", {"execution_state": "idle"}))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/user/u/api/kernels/{kid}/channels", channels)
    app.router.add_post("/user/u/api/kernels/{kid}/interrupt", interrupt)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    connector = aiohttp.TCPConnector()
    p = Participant(Options(url=url, cell_timeout=0.3), "u", "pw", UserResult("u"), connector)
    try:
        p.server_url, p.kernel_id = f"{url}/user/u/", "k1"
        await p._connect_kernel()
        ok = await p.run_cell(Cell("l.ipynb:1", 1, "1"))
        assert (ok.key, ok.status) == ("l.ipynb:1", "ok")
        slow = await p.run_cell(Cell("l.ipynb:2", 2, "hang"))
        assert (slow.status, slow.ename) == ("timeout", "Timeout") and slow.seconds >= 0.3
        assert interrupts == ["k1"] and slow.evalue == "interrupted after 0.3s"
        dead = await p.run_cell(Cell("l.ipynb:3", 3, "die"))
        assert (dead.status, dead.ename) == ("died", "KernelDied") and "out of memory?" in dead.evalue
    finally:
        await p.close()
        await connector.close()
        await runner.cleanup()


async def test_a_lead_who_cannot_run_the_notebooks_alone_stops_the_rehearsal_before_the_crowd(tmp_path):
    """The stand-in hub's server page sets no XSRF cookie and has no /lab: the lead cannot
    open its server, so no crowd is sent after it."""
    from jupyterhub_workshop.login.printing import Card
    from jupyterhub_workshop.rehearsal.loadtest.participant import Options
    from jupyterhub_workshop.rehearsal.loadtest.run import LeadFailed, run_loadtest

    from .test_loadtest import scripted_hub

    lesson = lesson_from_json(nb_json(["1"]), "l.ipynb", "l.ipynb", upload=True)
    cards = [Card(f"u{i}", "pw") for i in range(3)]
    async with scripted_hub({c.username: "pw" for c in cards}) as (url, seen):
        options = Options(url=url, lessons=(lesson,), spawn_timeout=10)
        with open(tmp_path / "progress", "w") as quiet, pytest.raises(LeadFailed) as failed:
            await run_loadtest(options, cards, stream=quiet, baseline=True)
    assert "the lead (u0) could not run the notebooks alone, at spawn: server page HTTP 404" in str(
        failed.value
    )
    assert "the crowd was not started" in str(failed.value)
    assert not any(k.startswith(("login u1", "login u2")) for k in seen)
