"""`plan --from-loadtest`: guarantees and limits from what a rehearsal measured, through the
same sizing functions as every other plan."""

from __future__ import annotations

import json

import pytest
import yaml

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.rehearsal.plan.catalogue import load_catalogue
from jupyterhub_workshop.rehearsal.plan.errors import PlanError
from jupyterhub_workshop.rehearsal.plan.overheads import OverheadSettings
from jupyterhub_workshop.rehearsal.plan.quantities import chart_memory
from jupyterhub_workshop.rehearsal.plan.sizing import (
    fit_at_least_one,
    loadtest_resources,
    size_from_measurements,
)

MIB, GIB = 1024**2, 1024**3


def resources(p95=1000 * MIB, most=1200 * MIB, cpu=(0.3, 1.4)):
    return {
        "measured": 80,
        "memory": {"p50": 900 * MIB, "p95": p95, "max": most},
        "memory_limit": 4 * GIB,
        "cpu": None
        if cpu is None
        else {"mean": {"p50": 0.2, "p95": cpu[0], "max": 0.5}, "peak": {"p50": 1, "p95": 1.2, "max": cpu[1]}},
    }


def test_guarantee_and_limit_come_from_the_peaks_with_the_headroom_spelled_out():
    m = size_from_measurements(resources())
    assert m.memory_guarantee == 1280 * MIB  # 1000 MiB + 25 % = 1250, up to whole 64 MiB
    assert m.memory_guarantee >= m.memory_p95
    assert m.memory_limit == 1856 * MIB  # 1200 MiB + 50 % = 1800, up to whole 64 MiB
    assert m.cpu_guarantee == 0.4  # 0.3 cores + 25 % = 0.375, up to 0.05
    m = size_from_measurements(resources(), guarantee_headroom_percent=0, limit_headroom_percent=0)
    assert (m.memory_guarantee, m.memory_limit, m.cpu_guarantee) == (1024 * MIB, 1216 * MIB, 0.3)
    # a limit is never below the guarantee
    m = size_from_measurements(resources(p95=1000 * MIB, most=1000 * MIB), "r", 20.0, 0.0)
    assert m.memory_limit == m.memory_guarantee
    m = size_from_measurements(resources(cpu=None))
    assert m.cpu_guarantee == 0 and m.cpu_p95 is None
    with pytest.raises(PlanError, match="headroom cannot be negative"):
        size_from_measurements(resources(), "r", -1)


def test_only_a_measured_load_test_report_is_read():
    good = {
        "schema": "jupyterhub-workshop/loadtest-report",
        "version": 2,
        "notebooks": {},
        "resources": resources(),
    }
    assert loadtest_resources(good, "r.json") == resources()
    with pytest.raises(PlanError, match="r.json: not a load test report"):
        loadtest_resources({"users": 3}, "r.json")
    with pytest.raises(PlanError, match="version 1; this plan reads version 2"):
        loadtest_resources({**good, "version": 1}, "r.json")
    with pytest.raises(PlanError, match="ran no notebooks"):
        loadtest_resources({k: v for k, v in good.items() if k != "notebooks"}, "r.json")
    missing = {
        **{k: v for k, v in good.items() if k != "resources"},
        "resources_missing": "jupyter-resource-usage is not installed",
    }
    with pytest.raises(
        PlanError, match=r"no resources were measured \(jupyter-resource-usage is not installed\)"
    ):
        loadtest_resources(missing, "r.json")


def test_chart_memory_in_jupyterhubs_units():
    assert (
        chart_memory(2 * GIB) == "2G"
        and chart_memory(1280 * MIB) == "1280M"
        and chart_memory(MIB + 1) == "2M"
    )


def report_file(tmp_path, **kw):
    path = tmp_path / "report.json"
    path.write_text(
        json.dumps(
            {
                "schema": "jupyterhub-workshop/loadtest-report",
                "version": 2,
                "notebooks": {},
                "resources": resources(**kw),
            }
        )
    )
    return path


def test_plan_from_loadtest_prints_the_values_to_paste_and_sizes_with_the_plans_own_rule(tmp_path, capsys):
    path = report_file(tmp_path)
    args = ["plan", "--from-loadtest", str(path), "--node", "m5.2xlarge", "--users", "320", "--hours", "6"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "memory guarantee 1280M = peak p95 1000 MiB + 25% (--guarantee-headroom)" in out
    assert "memory limit     1856M = largest peak 1.2 GiB + 50% (--limit-headroom)" in out
    pasted = yaml.safe_load(out[out.index("jupyterhub:") : out.index("Plan:")])
    assert pasted == {
        "jupyterhub": {
            "singleuser": {"memory": {"guarantee": "1280M", "limit": "1856M"}, "cpu": {"guarantee": 0.4}}
        }
    }
    assert main([*args, "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    node = load_catalogue().get("m5.2xlarge")
    fit = fit_at_least_one(node, OverheadSettings(), 0.4, 1280 * MIB)
    assert plan["users_per_node"] == fit.users_per_node  # the plan's own fitting, not a copy
    assert plan["measured"]["memory_guarantee"] == 1280 * MIB and plan["chart_values"] == pasted
    # the organizer's own numbers win, and the table says so
    assert main([*args, "--memory", "2G", "--guarantee-headroom", "10"]) == 0
    out = capsys.readouterr().out
    assert "given on the command line instead: memory guarantee" in out and "guarantee: 2G" in out
    assert "+ 10% (--guarantee-headroom)" in out


def test_plan_from_a_report_without_measurements_says_why(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps(
            {
                "schema": "jupyterhub-workshop/loadtest-report",
                "version": 2,
                "notebooks": {},
                "resources_missing": "jupyter-resource-usage is not installed on the single-user servers",
            }
        )
    )
    assert main(["plan", "--from-loadtest", str(path), "--node", "m5.2xlarge", "--users", "10"]) == 1
    assert "no resources were measured (jupyter-resource-usage is not installed" in capsys.readouterr().err
    path.write_text("{")
    assert main(["plan", "--from-loadtest", str(path), "--node", "m5.2xlarge", "--users", "10"]) == 1
    assert "not JSON" in capsys.readouterr().err


def test_plan_from_loadtest_sizes_a_schedule_and_is_not_mixed_with_usage(tmp_path, capsys):
    path = report_file(tmp_path)
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(
        "timeZone: UTC\nfrom: 2026-03-02\nuntil: 2026-03-03\nexpected: 80\n"
        "sessions:\n  - days: [Mon, Tue]\n    start: '09:00'\n    end: '12:00'\n"
    )
    args = ["plan", "--from-loadtest", str(path), "--node", "m5.2xlarge", "--schedule", str(schedule)]
    assert main([*args, "--format", "json"]) == 0, capsys.readouterr().err
    plan = json.loads(capsys.readouterr().out)
    assert plan["users"] == 80 and plan["hours"] == 6 and plan["measured"]["memory_guarantee"] == 1280 * MIB
    usage = tmp_path / "usage.csv"
    usage.write_text("user,server,profile,started,stopped\n")
    assert main([*args, "--from-usage", str(usage)]) == 1
    assert "not both" in capsys.readouterr().err
