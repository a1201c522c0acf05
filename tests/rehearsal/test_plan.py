"""`jupyterhub-workshop plan`: sizing rules, the seed figures, schedules, usage exports."""

import json
from datetime import datetime

import pytest

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.rehearsal.plan import sizing as plan
from jupyterhub_workshop.rehearsal.plan.sizing import GIB, MIB, PlanError


def run_json(capsys, *argv):
    code = main(["plan", *argv, "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


# --- the seed figures --------------------------------------------------------------------

def test_icesat2_hackweek_fits_four_users_per_m5_2xlarge(capsys):
    result = run_json(capsys, "--users", "60", "--cpu", "1.75", "--memory", "7G", "--cpu-limit", "4",
                      "--memory-limit", "8G", "--node", "m5.2xlarge", "--hours", "24")
    assert result["users_per_node"] == 4
    assert result["node"]["cpu"] == 8 and result["node"]["memory_gib"] == 32
    assert result["nodes_for_users"] == 15  # 60 / 4
    assert result["placeholders"] == 6 and result["nodes"] == 17  # 10 % headroom: 66 / 4 rounded up
    assert result["node_hours"] == 17 * 24
    assert result["cost"] == pytest.approx(17 * 24 * 0.384, abs=0.01)


def test_jetstream_guide_fits_eleven_users_of_10g_on_128g_with_128m_for_the_hub(capsys):
    result = run_json(capsys, "--users", "11", "--memory", "10G", "--node-cpu", "32", "--node-memory", "128G",
                      "--hub-memory", "128M")
    assert result["users_per_node"] == 11
    assert result["nodes_for_users"] == 1
    assert result["overheads_per_node"]["hub"]["memory_gib"] == pytest.approx(128 / 1024)
    # the catalogue's Jetstream2 m3.xl (125 GB) holds the same eleven
    assert run_json(capsys, "--users", "11", "--memory", "10G", "--node", "m3.xl")["users_per_node"] == 11


def test_the_overheads_are_what_make_the_seed_figures(capsys):
    # without the per-node overheads the same node would (wrongly) take 12 users of 10G
    bare = run_json(capsys, "--users", "11", "--memory", "10G", "--node-cpu", "32", "--node-memory", "128G",
                    "--system-memory", "0", "--daemonset-memory", "0", "--hub-memory", "0")
    assert bare["users_per_node"] == 12
    ov = bare["overheads_per_node"]
    assert ov["system"]["memory_gib"] == ov["daemonsets"]["memory_gib"] == ov["hub"]["memory_gib"] == 0


# --- impossible requests -----------------------------------------------------------------

def test_guarantee_larger_than_any_node_is_refused_with_a_clear_message(capsys):
    assert main(["plan", "--users", "10", "--cpu", "1", "--memory", "2000G", "--node", "m5.2xlarge"]) == 1
    err = capsys.readouterr().err
    assert "impossible request" in err
    assert "memory guarantee 2000.0 GiB" in err and "m5.2xlarge" in err
    assert "larger than any node type in the catalogue" in err


def test_guarantee_larger_than_the_chosen_node_names_nodes_that_fit(capsys):
    assert main(["plan", "--users", "10", "--cpu", "12", "--memory", "4G", "--node", "m5.2xlarge"]) == 1
    err = capsys.readouterr().err
    assert "CPU guarantee 12" in err
    assert "m5.4xlarge" in err and "m5.2xlarge:" in err  # the smallest m5 that fits, and why this one does not


def test_limits_below_guarantees_and_unknown_nodes_are_refused(capsys):
    assert main(["plan", "--users", "1", "--memory", "8G", "--memory-limit", "4G", "--node", "m5.xlarge"]) == 1
    assert "below the memory guarantee" in capsys.readouterr().err
    assert main(["plan", "--users", "1", "--memory", "1G", "--node", "m5.2xlage"]) == 1
    assert "did you mean m5.2xlarge" in capsys.readouterr().err
    assert main(["plan", "--users", "1", "--memory", "1G"]) == 1
    assert "--node" in capsys.readouterr().err


# --- the rules as plain functions --------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("7G", 7 * GIB), ("7Gi", 7 * GIB), ("7GB", 7 * GIB), ("512M", 512 * MIB), ("128Mi", 128 * MIB),
    ("1.5T", int(1.5 * 1024 * GIB)), ("10", 10 * GIB), ("0", 0),
])
def test_memory_units_are_binary_like_jupyterhub(text, expected):
    assert plan.parse_memory(text) == expected


@pytest.mark.parametrize("text", ["seven", "7X", "-1G", "G", "7 iG"])
def test_bad_memory_sizes_are_refused(text):
    with pytest.raises(ValueError):
        plan.parse_memory(text)


def test_cpu_amounts():
    assert plan.parse_cpu("1.75") == 1.75
    assert plan.parse_cpu("500m") == 0.5
    with pytest.raises(ValueError):
        plan.parse_cpu("-1")


def test_default_system_reserve():
    # GKE's CPU tiers: 6 % of core 1, 1 % of core 2, 0.5 % of cores 3-4, 0.25 % above
    assert plan.default_system_cpu(1) == pytest.approx(0.06)
    assert plan.default_system_cpu(8) == pytest.approx(0.06 + 0.01 + 0.01 + 0.01)
    assert plan.default_system_memory(32 * GIB) == pytest.approx(0.06 * 32 * GIB + 100 * MIB, abs=1)


def test_fit_is_limited_by_the_scarcer_resource():
    node = plan.NodeType("n", cpu=8, memory=64 * GIB)
    ov = plan.Overheads(system_cpu=0, system_memory=0, daemonset_cpu=0, daemonset_memory=0, hub_cpu=0, hub_memory=0)
    fit = plan.fit_users(node, ov, cpu=2, memory=4 * GIB)
    assert (fit.users_per_node, fit.limited_by, fit.by_cpu, fit.by_memory) == (4, "cpu", 4, 16)
    fit = plan.fit_users(node, ov, cpu=0, memory=4 * GIB)  # no CPU guarantee: memory decides
    assert (fit.users_per_node, fit.limited_by, fit.by_cpu) == (16, "memory", None)


def test_placeholders_and_nodes():
    assert plan.placeholders_for(60, 10) == 6
    assert plan.placeholders_for(61, 10) == 7  # rounded up
    assert plan.placeholders_for(0, 10) == 0
    assert plan.nodes_for(60, 4) == 15 and plan.nodes_for(60, 4, 6) == 17 and plan.nodes_for(61, 4) == 16
    with pytest.raises(PlanError):
        plan.placeholders_for(10, -1)


def test_memory_limit_overcommit_is_warned(capsys):
    result = run_json(capsys, "--users", "8", "--cpu", "1.75", "--memory", "7G", "--memory-limit", "8G",
                      "--node", "m5.2xlarge", "--hours", "3")
    assert any("overcommit" in w for w in result["warnings"])
    quiet = run_json(capsys, "--users", "8", "--cpu", "1.75", "--memory", "7G", "--memory-limit", "7G",
                     "--node", "m5.2xlarge", "--hours", "3")
    assert not any("overcommit" in w for w in quiet["warnings"])


def test_any_machine_by_cpu_memory_and_price(capsys):
    result = run_json(capsys, "--users", "20", "--cpu", "1", "--memory", "4G", "--node-cpu", "16",
                      "--node-memory", "64G", "--price", "0.5", "--hours", "10", "--placeholders", "0")
    assert result["node"]["name"] == "custom" and result["node"]["price"] == 0.5
    k = result["users_per_node"]
    assert k == 14  # 15.69 CPU -> 15 by CPU; 64 - 3.94 - 0.5 - 0.125 = 59.4 GiB -> 14 by memory
    assert result["nodes"] == 2 and result["node_hours"] == 20 and result["cost"] == 10.0


def test_table_output_shows_each_overhead(capsys):
    assert main(["plan", "--users", "60", "--cpu", "1.75", "--memory", "7G", "--node", "m5.2xlarge", "--hours", "8"]) == 0
    out = capsys.readouterr().out
    for label in ("- system (kubelet, OS)", "- daemonsets", "- hub and proxy", "= left for users",
                  "users per node", "placeholders for arrivals", "node-hours", "cost"):
        assert label in out
    assert "prices read 2026-" in out and "4 (limited by memory)" in out


# --- catalogue ---------------------------------------------------------------------------

def test_catalogue_has_the_families_and_a_price_date():
    cat = plan.load_catalogue()
    assert cat.prices_read and datetime.fromisoformat(cat.prices_read)
    m5 = cat.nodes["m5.2xlarge"]
    assert (m5.cpu, m5.memory, m5.currency) == (8, 32 * GIB, "USD")
    providers = {n.provider for n in cat.nodes.values()}
    assert providers == {"aws", "gcp", "jetstream2"}
    names = set(cat.nodes)
    assert {"m5.xlarge", "m6i.2xlarge", "n2-standard-8", "n2-highmem-8", "m3.medium", "m3.xl"} <= names
    assert all(n.price is not None and n.price > 0 and n.source.startswith("https://") for n in cat.nodes.values())


def test_list_nodes(capsys):
    assert main(["plan", "--list-nodes"]) == 0
    out = capsys.readouterr().out
    assert "m5.2xlarge" in out and "n2-standard-8" in out and "m3.xl" in out and "prices read" in out


# --- schedules ---------------------------------------------------------------------------

def test_schedule_sums_node_hours_per_block(tmp_path, capsys):
    sched = tmp_path / "schedule.yaml"
    sched.write_text(
        "- {start: '2026-07-14T08:00:00-06:00', end: '2026-07-14T17:00:00-06:00'}\n"
        "- {start: '2026-07-15T08:00:00-06:00', end: '2026-07-15T12:00:00-06:00', users: 20}\n")
    result = run_json(capsys, "--users", "40", "--cpu", "1.75", "--memory", "7G", "--node", "m5.2xlarge",
                      "--schedule", str(sched))
    day1, day2 = result["schedule"]
    assert (day1["users"], day1["placeholders"], day1["nodes"], day1["hours"]) == (40, 4, 11, 9)
    assert (day2["users"], day2["placeholders"], day2["nodes"], day2["hours"]) == (20, 2, 6, 4)
    assert result["node_hours"] == 11 * 9 + 6 * 4
    assert result["hours"] == 13 and result["nodes"] == 11


def test_schedule_csv_and_bad_schedules(tmp_path):
    good = tmp_path / "s.csv"
    good.write_text("start,end,users\n2026-07-14T08:00:00Z,2026-07-14T10:30:00Z,5\n")
    (block,) = plan.read_schedule(good, None)
    assert block.hours == 2.5 and block.users == 5
    overlap = tmp_path / "o.csv"
    overlap.write_text("start,end\n2026-07-14T08:00:00Z,2026-07-14T12:00:00Z\n2026-07-14T11:00:00Z,2026-07-14T13:00:00Z\n")
    with pytest.raises(PlanError, match="overlap"):
        plan.read_schedule(overlap, 10)
    naive = tmp_path / "n.csv"
    naive.write_text("start,end\n2026-07-14T08:00:00,2026-07-14T12:00:00\n")
    with pytest.raises(PlanError, match="no UTC offset"):
        plan.read_schedule(naive, 10)


# --- after the event: the usage export ---------------------------------------------------

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
    assert result["node_hours"] == pytest.approx(2.5)
    assert result["cost"] == pytest.approx(0.96)
    # or sized from the node and guarantees: 4 per m5.2xlarge, catalogue price
    result = run_json(capsys, "--from-usage", str(path), "--node", "m5.2xlarge", "--cpu", "1.75", "--memory", "7G")
    assert result["users_per_node"] == 4 and result["node_hours"] == pytest.approx(2.0)
    assert result["cost"] == pytest.approx(0.77) and result["currency"] == "USD"
    assert main(["plan", "--from-usage", str(path)]) == 1
    assert "--users-per-node" in capsys.readouterr().err


def test_bad_usage_rows_name_their_line(tmp_path, capsys):
    path = tmp_path / "usage.csv"
    path.write_text(USAGE.replace("2026-07-14T09:30:00Z,,,", "yesterday,,,"))
    assert main(["plan", "--from-usage", str(path), "--users-per-node", "2"]) == 1
    assert "usage.csv:5:" in capsys.readouterr().err
