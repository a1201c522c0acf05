"""`loadtest --notebook` end to end on the local demo hub: real cards, real single-user servers
with jupyter-resource-usage, real ipykernel kernels over the kernel websocket; then `plan
--from-loadtest` on the report it wrote."""

from __future__ import annotations

import io
import json
import textwrap

import nbformat
import pytest

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.login.printing import Card, cards_csv, read_cards_csv

from ..harness.hub import free_port, running_hub

ALLOC_MIB = 64
LIMITED = 19  # the card (index in cards.csv) whose server gets a memory limit below a server's size
UNMEASURED = 5  # the card whose server runs without jupyter-resource-usage


def notebook(cells: list[str], kernel: str = "python3") -> dict:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Lesson 1")] + [nbformat.v4.new_code_cell(c) for c in cells]
    return nb


LESSON = [
    f"import time\ndata = b'x' * ({ALLOC_MIB} * 2**20)  # allocate, and touch every page",
    "text = open('shared/measurements.csv').read()\nlen(text)",
    "1 / 0  # on purpose",
    "time.sleep(0.3)",
]


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    """The demo hub as `jupyterhub-workshop demo` writes it, servers limited to 4G (the limit
    jupyter-resource-usage reports), one card's to 100M (below any server's size), and one
    card's server without jupyter-resource-usage."""
    from jupyterhub_workshop.rehearsal import demo

    tmp = tmp_path_factory.mktemp("notebook-demo")
    port = free_port()
    state = tmp / "state"
    log = tmp / "demo.log"
    config = demo.prepare(state, port=port, out=io.StringIO())
    cards = read_cards_csv(state / "cards.csv")
    limited, unmeasured = cards[LIMITED].username, cards[UNMEASURED].username
    config.write_text(
        config.read_text()
        + textwrap.dedent(f"""
        c.Spawner.http_timeout = 180
        c.Spawner.start_timeout = 240
        c.Spawner.mem_limit = "4G"
        def small_for_one(spawner):
            if spawner.user.name == {limited!r}:
                spawner.mem_limit = 100 * 1024**2
            if spawner.user.name == {unmeasured!r}:
                spawner.args = [*spawner.args, "--ServerApp.jpserver_extensions=jupyter_resource_usage=False"]
        c.Spawner.pre_spawn_hook = small_for_one
        """)
    )
    (state / "shared" / "measurements.csv").write_text("t,h\n" + "1,2\n" * 50_000)
    with running_hub(config, state, log, port) as url:
        yield url, state, log


def loadtest(url, cards, *extra):
    return main(["loadtest", "--url", url, "--cards", str(cards), "--think", "0-0.2", "--ramp", "0", *extra])


@pytest.mark.e2e
def test_a_crowd_runs_the_notebook_and_plan_sizes_from_what_it_used(demo_hub, tmp_path, capsys):
    url, state, log = demo_hub
    lesson = tmp_path / "lesson1.ipynb"
    nbformat.write(nbformat.from_dict(notebook(LESSON)), lesson)
    out = tmp_path / "report"
    code = loadtest(
        url,
        state / "cards.csv",
        "--users",
        "3",
        "--ramp",
        "2",
        "--notebook",
        str(lesson),
        "--sample-interval",
        "0.5",
        "--json",
        f"{out}.json",
        "--html",
        f"{out}.html",
    )
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err + log.read_text()[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["schema"], report["version"]) == ("jupyterhub-workshop/loadtest-report", 2)
    nb = report["notebooks"]
    # every cell for every participant, numbered as the notebook shows them (markdown first)
    keys = [f"lesson1.ipynb:{n}" for n in (2, 3, 4, 5)]
    assert [c["key"] for c in nb["cells"]] == keys
    assert len(nb["per_user"]) == 3
    for user in nb["per_user"]:
        assert [c["key"] for c in user["cells"]] == keys
        assert [c["status"] for c in user["cells"]] == ["ok", "ok", "error", "ok"]
    erring = nb["cells"][2]
    assert erring["lead"]["ename"] == "ZeroDivisionError"
    (group,) = erring["failures"]
    assert (group["ename"], group["count"]) == ("ZeroDivisionError", 3)
    assert erring["regressions"] == 0  # the lead failed it too: on purpose, not a crowd problem
    assert report["verdict"] == {"ok": True, "reasons": []}
    sleep = nb["cells"][3]
    assert sleep["crowd"]["p50"] >= 0.3 and sleep["lead"]["seconds"] >= 0.3
    assert 0.5 < sleep["ratio"]["p50"] < 5
    # what each server used: at least the allocation, under the 4G limit
    res = report["resources"]
    assert res["measured"] == 3 and res["memory_limit"] == 4 * 1024**3
    assert res["memory"]["p50"] >= ALLOC_MIB * 2**20
    assert nb["cells"][0]["memory"]["max"] >= ALLOC_MIB * 2**20
    assert res["cpu"] is not None and res["cpu"]["peak"]["max"] > 0
    assert res["kernel_memory"] is not None and res["kernel_memory"]["max"] >= ALLOC_MIB * 2**20
    assert res["hit_limit"] == [] and res["lead"]["peak_memory"] >= ALLOC_MIB * 2**20
    assert "verdict: PASS" in captured.out and "lesson1.ipynb:4" in captured.out
    assert "ZeroDivisionError" in captured.out and "memory per participant" in captured.out
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 5 and "lesson1.ipynb:4" in page

    # plan from what was measured: a guarantee at least the measured p95 peak
    code = main(["plan", "--from-loadtest", f"{out}.json", "--node", "m5.2xlarge", "--users", "320"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    code = main(
        [
            "plan",
            "--from-loadtest",
            f"{out}.json",
            "--node",
            "m5.2xlarge",
            "--users",
            "320",
            "--format",
            "json",
        ]
    )
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    assert plan["measured"]["memory_guarantee"] >= res["memory"]["p95"]
    assert "jupyterhub:" in printed and "singleuser:" in printed and "guarantee:" in printed


@pytest.mark.e2e
def test_a_server_over_its_limit_and_a_kernel_the_server_lacks_fail_clearly(demo_hub, tmp_path, capsys):
    """Two participants, no lead: both run grow.ipynb (one on a server limited below its size; a
    cell past --cell-timeout, interrupted, and one after it), then a notebook already on the
    server that asks for a kernel the server does not have."""
    url, state, log = demo_hub
    lesson = tmp_path / "grow.ipynb"
    nbformat.write(nbformat.from_dict(notebook([LESSON[0], "time.sleep(120)", "after = 1"])), lesson)
    nbformat.write(
        nbformat.from_dict(notebook(["1 + 1"], kernel="julia-1.10")), state / "shared" / "julia.ipynb"
    )
    cards = read_cards_csv(state / "cards.csv")
    chosen = tmp_path / "cards.csv"
    chosen.write_text(cards_csv([cards[UNMEASURED], cards[LIMITED]]))
    code = loadtest(
        url,
        chosen,
        "--users",
        "2",
        "--no-baseline",
        "--cell-timeout",
        "3",
        "--notebook",
        str(lesson),
        "--notebook-path",
        "shared/julia.ipynb",
        "--json",
        str(tmp_path / "r.json"),
    )
    out = capsys.readouterr().out
    assert code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    # the kernel nobody has: every participant stops there, saying which kernel and what there is
    (group,) = report["errors"]
    assert (group["step"], group["kind"], group["count"]) == ("kernel", "the server has no such kernel", 2)
    assert "julia.ipynb asks for kernel 'julia-1.10'; the server has python3" in group["example"]
    assert "julia-1.10" in out
    # the cell past the timeout was interrupted, recorded, and the next cell ran
    for user in report["notebooks"]["per_user"]:
        assert [c["status"] for c in user["cells"]] == ["ok", "timeout", "ok"]
        assert 3 <= user["cells"][1]["seconds"] < 60
    assert report["notebooks"]["cells"][1]["crowd"]["timeouts"] == 2
    # the limit: flagged per participant and per cell
    res = report["resources"]
    assert res["hit_limit"] == [cards[LIMITED].username]
    assert [p["username"] for p in res["participants"]] == [cards[LIMITED].username]
    assert res["memory_limit"] == 100 * 1024**2
    # the server without the extension: said so, no numbers for it (never zeros)
    assert res["unmeasured"] == [cards[UNMEASURED].username]
    missing = report["notebooks"]["per_user"][0]["resources_missing"]
    assert missing.startswith("jupyter-resource-usage is not installed on the single-user servers")
    assert f"not measured for 1 participant ({cards[UNMEASURED].username}): jupyter-resource-usage" in out
    assert report["notebooks"]["cells"][0]["memory"]["near_limit"] == [cards[LIMITED].username]
    assert "hit the memory limit" in out and "verdict: FAIL" in out


@pytest.mark.e2e
def test_cards_of_another_hub_stop_before_the_crowd_and_write_nothing(demo_hub, tmp_path, capsys):
    url, state, log = demo_hub
    lesson = tmp_path / "lesson1.ipynb"
    nbformat.write(nbformat.from_dict(notebook(["1"])), lesson)
    cards = tmp_path / "cards.csv"
    cards.write_text(cards_csv([Card("participant-999", "not-this-hubs")]))
    code = loadtest(url, cards, "--users", "1", "--notebook", str(lesson), "--json", str(tmp_path / "r.json"))
    err = capsys.readouterr().err
    assert code == 2
    assert (
        "the lead's card participant-999 could not sign in" in err
        and "do the cards belong to this hub?" in err
    )
    assert list(tmp_path.iterdir()) == [lesson, cards] or sorted(tmp_path.iterdir()) == sorted(
        [lesson, cards]
    )
