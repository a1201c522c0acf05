"""A plan shown as a table and as JSON (`plan --format json`, whose shape scripts rely on)."""

import json
from datetime import UTC, datetime, timedelta

from jupyterhub_workshop.rehearsal.plan.catalogue import load_catalogue
from jupyterhub_workshop.rehearsal.plan.quantities import GIB
from jupyterhub_workshop.rehearsal.plan.render import nodes_table, plan_json, plan_table
from jupyterhub_workshop.rehearsal.plan.schedule import Block
from jupyterhub_workshop.rehearsal.plan.sizing import make_plan

CATALOGUE = load_catalogue()
ICESAT2 = dict(
    users=60,
    cpu=1.75,
    memory=7 * GIB,
    cpu_limit=4,
    memory_limit=8 * GIB,
    node=CATALOGUE.nodes["m5.2xlarge"],
    hours=24,
)


def test_json_has_every_figure_of_the_plan():
    result = plan_json(make_plan(**ICESAT2))
    assert json.loads(json.dumps(result)) == result
    assert list(result) == [
        "users",
        "node",
        "guarantee",
        "limit",
        "overheads_per_node",
        "allocatable_per_node",
        "users_per_node",
        "users_per_node_by",
        "limited_by",
        "unused_per_full_node",
        "headroom_percent",
        "placeholders",
        "nodes_for_users",
        "nodes",
        "hours",
        "schedule",
        "prewarm_node_hours",
        "spawn_limits",
        "node_hours",
        "cost",
        "currency",
        "warnings",
    ]
    assert result["node"] == {
        "name": "m5.2xlarge",
        "provider": "aws",
        "cpu": 8,
        "memory_gib": 32,
        "price": 0.384,
        "currency": "USD",
        "prices_read": CATALOGUE.prices_read,
        "source": "https://aws.amazon.com/ec2/pricing/on-demand/",
    }
    assert result["guarantee"] == {"cpu": 1.75, "memory_gib": 7} and result["limit"] == {
        "cpu": 4,
        "memory_gib": 8,
    }
    assert result["overheads_per_node"]["daemonsets"] == {"cpu": 0.2, "memory_gib": 0.5}
    assert result["users_per_node_by"] == {"cpu": 4, "memory": 4} and result["limited_by"] == "memory"
    assert (
        result["headroom_percent"],
        result["placeholders"],
        result["nodes_for_users"],
        result["nodes"],
    ) == (10, 6, 15, 17)
    assert (result["hours"], result["node_hours"], result["cost"], result["schedule"]) == (
        24,
        408,
        156.67,
        None,
    )


def test_schedule_rows_in_json_and_table():
    start = datetime(2026, 7, 14, 8, tzinfo=UTC)
    plan = make_plan(
        users=40,
        cpu=1.75,
        memory=7 * GIB,
        node=CATALOGUE.nodes["m5.2xlarge"],
        schedule=[Block(start, start + timedelta(hours=2.5), 40)],
        prewarm_lead=timedelta(minutes=30),
    )
    (row,) = plan_json(plan)["schedule"]
    assert row == {
        "start": "2026-07-14T08:00:00+00:00",
        "end": "2026-07-14T10:30:00+00:00",
        "users": 40,
        "placeholders": 4,
        "nodes": 11,
        "hours": 2.5,
        "prewarm": {"placeholders": 10, "from": "2026-07-14T07:30:00+00:00", "node_hours": 5},
        "node_hours": 32.5,
    }
    result = plan_json(plan)
    assert result["prewarm_node_hours"] == 5 and result["node_hours"] == 32.5
    assert result["spawn_limits"]["concurrent_spawn_limit"] == 10  # 4 arrivals a minute, 30 s spawns
    table = plan_table(plan)
    assert "2.5 (schedule)" in table and "32.5 (of which pre-warm 5.0)" in table
    assert (
        "2026-07-14T08:00:00+00:00  2026-07-14T10:30:00+00:00     40             4     11    2.5   10 from 07:30        32.5"
        in table
    )
    assert (
        "hub.concurrentSpawnLimit" in table and "4 arrivals/min x 30 s per spawn = 2 pending at once" in table
    )
    assert "x2 for bursts = 4, raised to the minimum of 10" in table


def test_hours_for_people_have_one_decimal():
    # a week of 320 people: 88 nodes x 8 h and 80 pre-warmed for 20 min, a third of an hour
    start = datetime(2026, 7, 14, 9, tzinfo=UTC)
    plan = make_plan(
        users=320,
        cpu=1.75,
        memory=7 * GIB,
        node=CATALOGUE.nodes["m5.2xlarge"],
        schedule=[
            Block(start, start + timedelta(hours=8), 320),
            Block(start + timedelta(days=3), start + timedelta(days=3, hours=3), 40),
        ],
        prewarm_lead=timedelta(minutes=20),
    )
    table = plan_table(plan)
    assert plan.schedule[0].node_hours == 88 * 8 + 80 / 3  # 730.666…
    assert "  730.7\n" in table and "730.6" not in table and "730.667" not in table
    assert plan.schedule[1].node_hours == 11 * 3 + 10 / 3  # 36.333…
    assert table.count("36.3\n") == 1 and "36.33" not in table
    assert f"node-hours                 {plan.node_hours:,.1f} (of which pre-warm 30.0)" in table
    assert plan_json(plan)["schedule"][0]["node_hours"] == 730.6667  # scripts keep the precision


def test_the_spawn_limit_says_when_it_is_capped_at_the_users():
    plan = make_plan(
        users=80, cpu=1.75, memory=7 * GIB, node=CATALOGUE.nodes["m5.2xlarge"], arrival_minutes=2, hours=1
    )
    assert plan.limits.concurrent_spawn_limit == 80
    table = plan_table(plan)
    [line] = [line for line in table.splitlines() if "hub.concurrentSpawnLimit" in line]
    assert line.split()[1] == "80"
    assert (
        "= 220 pending at once, x2 for bursts = 440, capped at the 80 users (no more can be pending)" in line
    )
    assert plan_json(plan)["spawn_limits"]["concurrent_from"] == "people"


def test_table_shows_each_overhead_and_the_result():
    table = plan_table(make_plan(**ICESAT2))
    for label in (
        "- system (kubelet, OS)",
        "- daemonsets",
        "- hub and proxy",
        "= left for users",
        "users per node",
        "placeholders for arrivals",
        "node-hours",
        "cost",
    ):
        assert label in table
    assert "prices read 2026-" in table and "4 (limited by memory)" in table
    assert "156.67 USD" in table
    assert table.splitlines()[-1].startswith("note: memory limits overcommit a full node: 4 x 8.0 GiB")


def test_nodes_table_lists_the_catalogue():
    table = nodes_table(CATALOGUE)
    assert "m5.2xlarge" in table and "n2-standard-8" in table and "m3.xl" in table
    assert f"prices read {CATALOGUE.prices_read}" in table
