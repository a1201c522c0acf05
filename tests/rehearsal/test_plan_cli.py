"""`jupyterhub-workshop plan` on the command line: options to a plan, errors to exit code 1."""

import json
import re

import pytest

from jupyterhub_workshop.cli import main


def run_json(capsys, *argv):
    code = main(["plan", *argv, "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_icesat2_hackweek_from_the_command_line(capsys):
    result = run_json(
        capsys,
        "--users",
        "60",
        "--cpu",
        "1.75",
        "--memory",
        "7G",
        "--cpu-limit",
        "4",
        "--memory-limit",
        "8G",
        "--node",
        "m5.2xlarge",
        "--hours",
        "24",
    )
    assert (result["users_per_node"], result["nodes"], result["node_hours"]) == (4, 17, 408)
    assert main(["plan", "--users", "60", "--cpu", "1.75", "--memory", "7G", "--node", "m5.2xlarge"]) == 0
    assert "4 (limited by memory)" in capsys.readouterr().out


def test_overhead_options_reach_the_plan(capsys):
    result = run_json(
        capsys,
        "--users",
        "11",
        "--memory",
        "10G",
        "--node-cpu",
        "32",
        "--node-memory",
        "128G",
        "--system-memory",
        "0",
        "--daemonset-memory",
        "0",
        "--hub-memory",
        "0",
        "--hub-cpu",
        "500m",
    )
    assert result["users_per_node"] == 12
    ov = result["overheads_per_node"]
    assert ov["system"]["memory_gib"] == ov["daemonsets"]["memory_gib"] == ov["hub"]["memory_gib"] == 0
    assert ov["hub"]["cpu"] == 0.5


def test_node_options(capsys):
    custom = run_json(
        capsys,
        "--users",
        "20",
        "--cpu",
        "1",
        "--memory",
        "4G",
        "--node-cpu",
        "16",
        "--node-memory",
        "64G",
        "--price",
        "0.5",
        "--hours",
        "10",
        "--placeholders",
        "0",
    )
    assert custom["node"]["name"] == "custom" and custom["node"]["price"] == 0.5 and custom["cost"] == 10.0
    modified = run_json(
        capsys,
        "--users",
        "4",
        "--memory",
        "4G",
        "--node",
        "m5.2xlarge",
        "--node-cpu",
        "16",
        "--currency",
        "EUR",
    )
    assert modified["node"]["provider"] == "aws (modified)" and modified["node"]["cpu"] == 16
    assert modified["node"]["memory_gib"] == 32 and modified["currency"] == "EUR"
    named = run_json(
        capsys,
        "--users",
        "4",
        "--memory",
        "4G",
        "--node",
        "lab-box",
        "--node-cpu",
        "8",
        "--node-memory",
        "32G",
    )
    assert named["node"]["name"] == "lab-box" and named["cost"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--users", "10", "--cpu", "1", "--memory", "2000G", "--node", "m5.2xlarge"],
            "larger than any node type in the catalogue",
        ),
        (["--users", "10", "--cpu", "12", "--memory", "4G", "--node", "m5.2xlarge"], "m5.4xlarge"),
        (
            ["--users", "1", "--memory", "8G", "--memory-limit", "4G", "--node", "m5.xlarge"],
            "below the memory guarantee",
        ),
        (["--users", "1", "--memory", "1G", "--node", "m5.2xlage"], "did you mean m5.2xlarge"),
        (["--users", "1", "--memory", "1G"], "give --node TYPE"),
        (["--users", "1", "--node", "m5.xlarge"], "missing --memory"),
        (["--users", "1", "--memory", "1G", "--node-cpu", "0", "--node-memory", "4G"], "more than 0 CPU"),
    ],
)
def test_requests_that_cannot_be_planned_exit_1_with_the_reason(capsys, argv, message):
    assert main(["plan", *argv]) == 1
    assert message in capsys.readouterr().err


def test_schedule_file(tmp_path, capsys):
    sched = tmp_path / "schedule.yaml"
    sched.write_text(
        "timeZone: America/Denver\n"
        "sessions:\n"
        "  - {days: [2026-07-14], start: '8:00', end: '17:00'}\n"
        "  - {days: [2026-07-15], start: '8:00', end: '12:00', expected: 20}\n"
    )
    result = run_json(
        capsys,
        "--users",
        "40",
        "--cpu",
        "1.75",
        "--memory",
        "7G",
        "--node",
        "m5.2xlarge",
        "--schedule",
        str(sched),
        "--no-prewarm",
    )
    assert [(b["users"], b["nodes"], b["hours"]) for b in result["schedule"]] == [(40, 11, 9), (20, 6, 4)]
    assert result["node_hours"] == 11 * 9 + 6 * 4
    assert result["schedule"][0]["start"] == "2026-07-14T08:00:00-06:00"  # the workshop's own time
    warmed = run_json(
        capsys,
        "--users",
        "40",
        "--cpu",
        "1.75",
        "--memory",
        "7G",
        "--node",
        "m5.2xlarge",
        "--schedule",
        str(sched),
        "--lead",
        "30",
        "--arrival-minutes",
        "5",
    )
    assert [b["prewarm"]["placeholders"] for b in warmed["schedule"]] == [10, 5]
    assert warmed["prewarm_node_hours"] == (10 + 5) / 2
    assert warmed["spawn_limits"]["concurrent_spawn_limit"] == 10  # 8 a minute x 30 s, x2


def test_list_nodes(capsys):
    assert main(["plan", "--list-nodes"]) == 0
    out = capsys.readouterr().out
    assert "m5.2xlarge" in out and "prices read" in out


# --- after the event: the usage export, counted by usage_accounting ----------------------

USAGE = """user,server,profile,started,stopped,duration_seconds,stop_reason
a,,,2026-07-14T08:00:00Z,2026-07-14T10:00:00Z,7200.0,idle
b,,,2026-07-14T08:00:00Z,2026-07-14T09:00:00Z,3600.0,user
c,,,2026-07-14T08:30:00Z,2026-07-14T09:30:00Z,3600.0,night
d,,,2026-07-14T09:30:00Z,,,
"""


def test_from_usage_gives_actual_node_hours_and_cost(tmp_path, capsys):
    path = tmp_path / "usage.csv"
    path.write_text(USAGE)
    result = run_json(capsys, "--from-usage", str(path), "--users-per-node", "2", "--price", "0.384")
    assert result["node_hours"] == pytest.approx(2.5) and result["peak_servers"] == 3
    assert result["cost"] == pytest.approx(0.96) and result["node"] is None
    # or sized from the node and guarantees: 4 per m5.2xlarge, catalogue price
    result = run_json(
        capsys, "--from-usage", str(path), "--node", "m5.2xlarge", "--cpu", "1.75", "--memory", "7G"
    )
    assert result["users_per_node"] == 4 and result["node_hours"] == pytest.approx(2.0)
    assert result["cost"] == pytest.approx(0.77) and result["currency"] == "USD"
    assert main(["plan", "--from-usage", str(path)]) == 1
    assert "--users-per-node" in capsys.readouterr().err
    assert main(["plan", "--from-usage", str(path), "--users-per-node", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\n  peak servers +3 at 2026-07-14T08:30:00\+00:00\n", out)
    assert re.search(r"\n  node-hours +2.5\n  cost +-\n", out)


def test_bad_usage_rows_name_their_line(tmp_path, capsys):
    path = tmp_path / "usage.csv"
    path.write_text(USAGE.replace("2026-07-14T09:30:00Z,,,", "yesterday,,,"))
    assert main(["plan", "--from-usage", str(path), "--users-per-node", "2"]) == 1
    assert "usage.csv:5:" in capsys.readouterr().err


def test_an_export_taken_during_the_event_counts_open_sessions_until_then(tmp_path, capsys):
    # two servers running when the export was taken at 09:02:30; one started a second earlier
    path = tmp_path / "usage.csv"
    path.write_text(
        "user,server,profile,started,stopped,duration_seconds,stop_reason,exported\n"
        "ws001,,,2026-07-14T09:00:00Z,,,,2026-07-14T09:02:30Z\n"
        "ws002,,,2026-07-14T09:02:29Z,,,,2026-07-14T09:02:30Z\n"
    )
    result = run_json(capsys, "--from-usage", str(path), "--users-per-node", "1")
    assert (result["peak_servers"], result["open_sessions"]) == (2, 2)
    assert result["server_hours"] == pytest.approx((150 + 1) / 3600, abs=1e-4)
    assert result["exported"] == "2026-07-14T09:02:30+00:00"
    assert main(["plan", "--from-usage", str(path), "--users-per-node", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 (2 still open, counted to the export at 2026-07-14T09:02:30+00:00)" in out
    assert re.search(r"\n  server-hours +< 0.1\n", out) and re.search(r"\n  peak servers +2 at ", out)
    # an older export does not say when it was taken: counted to its last time, and it says so
    path.write_text("user,started,stopped\nws001,2026-07-14T09:00:00Z,\nws002,2026-07-14T09:02:29Z,\n")
    assert main(["plan", "--from-usage", str(path), "--users-per-node", "1"]) == 0
    assert "counted to the last time in the file: the export does not say when it was taken" in (
        capsys.readouterr().out
    )


def test_the_schedule_example_and_a_helm_values_file(tmp_path, capsys):
    assert main(["plan", "--schedule-example"]) == 0
    example = tmp_path / "schedule.yaml"
    example.write_text(capsys.readouterr().out)
    plan = ["--cpu", "1.75", "--memory", "7G", "--node", "m5.2xlarge"]
    result = run_json(capsys, *plan, "--schedule", str(example))
    assert result["users"] == 80 and len(result["schedule"]) == 6
    values = tmp_path / "values.yaml"
    values.write_text(
        "workshop:\n  schedule:\n" + "".join(f"    {line}\n" for line in example.read_text().splitlines())
    )
    code = main(["plan", *plan, "--schedule", str(values), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["schedule"] == result["schedule"]  # stdout stays JSON
    assert captured.err == f"note: {values} is a Helm values file: read its workshop.schedule\n"
    assert main(["plan", *plan, "--schedule", str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: {tmp_path / 'missing.yaml'}: no such file. --schedule wants the workshop's"
    )
