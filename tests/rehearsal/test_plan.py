"""The sizing model (`plan`): plain functions from guarantees, a node and hours to a Plan."""

from datetime import datetime, timedelta, timezone

import pytest

from jupyterhub_workshop.rehearsal.plan.catalogue import NodeType, load_catalogue
from jupyterhub_workshop.rehearsal.plan.errors import PlanError
from jupyterhub_workshop.rehearsal.plan.overheads import Overheads, OverheadSettings
from jupyterhub_workshop.rehearsal.plan.quantities import GIB, MIB
from jupyterhub_workshop.rehearsal.plan.schedule import Block
from jupyterhub_workshop.rehearsal.plan.sizing import (
    Plan,
    fit_users,
    headroom_placeholders,
    make_plan,
)

CATALOGUE = load_catalogue()
M5_2XLARGE = CATALOGUE.nodes["m5.2xlarge"]
NO_OVERHEADS = Overheads(
    system_cpu=0, system_memory=0, daemonset_cpu=0, daemonset_memory=0, hub_cpu=0, hub_memory=0
)


# --- the seed figures --------------------------------------------------------------------


def test_icesat2_hackweek_fits_four_users_per_m5_2xlarge():
    plan = make_plan(
        users=60, cpu=1.75, memory=7 * GIB, cpu_limit=4, memory_limit=8 * GIB, node=M5_2XLARGE, hours=24
    )
    assert isinstance(plan, Plan)
    assert plan.users_per_node == 4 and plan.fit.limited_by == "memory"
    assert plan.nodes_for_users == 15  # 60 / 4
    assert plan.placeholders == 6 and plan.nodes == 17  # 10 % headroom: 66 / 4 rounded up
    assert plan.node_hours == 17 * 24
    assert plan.cost == pytest.approx(17 * 24 * 0.384)


def test_jetstream_guide_fits_eleven_users_of_10g_on_128g_with_128m_for_the_hub():
    machine = NodeType("custom", cpu=32, memory=128 * GIB)
    plan = make_plan(
        users=11, cpu=0, memory=10 * GIB, node=machine, overheads=OverheadSettings(hub_memory=128 * MIB)
    )
    assert plan.users_per_node == 11 and plan.nodes_for_users == 1
    assert plan.overheads.hub_memory == 128 * MIB
    # the catalogue's Jetstream2 m3.xl (125 GB) holds the same eleven
    assert make_plan(users=11, cpu=0, memory=10 * GIB, node=CATALOGUE.nodes["m3.xl"]).users_per_node == 11


def test_the_overheads_are_what_make_the_seed_figures():
    # without the per-node overheads the same node would (wrongly) take 12 users of 10G
    bare = OverheadSettings(system_memory=0, daemonset_memory=0, hub_memory=0)
    plan = make_plan(users=11, cpu=0, memory=10 * GIB, node=NodeType("custom", 32, 128 * GIB), overheads=bare)
    assert plan.users_per_node == 12
    assert plan.overheads.memory == 0


# --- impossible requests -----------------------------------------------------------------


def test_guarantee_larger_than_any_node_is_refused_with_a_clear_message():
    with pytest.raises(PlanError) as refused:
        make_plan(users=10, cpu=1, memory=2000 * GIB, node=M5_2XLARGE, catalogue=CATALOGUE)
    message = str(refused.value)
    assert (
        "impossible request" in message
        and "memory guarantee 2000.0 GiB" in message
        and "m5.2xlarge" in message
    )
    assert "larger than any node type in the catalogue" in message


def test_guarantee_larger_than_the_chosen_node_names_nodes_that_fit():
    with pytest.raises(PlanError) as refused:
        make_plan(users=10, cpu=12, memory=4 * GIB, node=M5_2XLARGE, catalogue=CATALOGUE)
    message = str(refused.value)
    assert "CPU guarantee 12" in message
    assert (
        "m5.4xlarge" in message and "m5.2xlarge:" in message
    )  # the smallest m5 that fits, and why this one does not
    with pytest.raises(PlanError) as without_catalogue:
        make_plan(users=10, cpu=12, memory=4 * GIB, node=M5_2XLARGE)
    assert "catalogue" not in str(without_catalogue.value)


@pytest.mark.parametrize(
    "request_, message",
    [
        (dict(memory_limit=4 * GIB), "below the memory guarantee"),
        (dict(cpu=2, cpu_limit=1), "below the CPU guarantee"),
        (dict(users=-1), "--users cannot be negative"),
        (dict(hours=-1), "--hours cannot be negative"),
        (dict(placeholders=-1), "--placeholders cannot be negative"),
        (dict(headroom_percent=-1), "--headroom cannot be negative"),
        (dict(memory=0), "memory guarantee larger than 0"),
    ],
)
def test_requests_that_cannot_be_planned(request_, message):
    with pytest.raises(PlanError, match=message):
        make_plan(
            **{"users": 1, "cpu": 0, "memory": 8 * GIB, "node": CATALOGUE.nodes["m5.xlarge"], **request_}
        )


# --- the rules -----------------------------------------------------------------------------


def test_fit_is_limited_by_the_scarcer_resource():
    node = NodeType("n", cpu=8, memory=64 * GIB)
    fit = fit_users(node, NO_OVERHEADS, cpu=2, memory=4 * GIB)
    assert (fit.users_per_node, fit.limited_by, fit.by_cpu, fit.by_memory) == (4, "cpu", 4, 16)
    fit = fit_users(node, NO_OVERHEADS, cpu=0, memory=4 * GIB)  # no CPU guarantee: memory decides
    assert (fit.users_per_node, fit.limited_by, fit.by_cpu) == (16, "memory", None)
    assert fit_users(node, NO_OVERHEADS, cpu=0, memory=64 * GIB).users_per_node == 1  # exactly full


def test_placeholders_are_a_share_of_the_users_rounded_up():
    assert headroom_placeholders(60, 10) == 6
    assert headroom_placeholders(61, 10) == 7
    assert headroom_placeholders(0, 10) == 0
    exact = make_plan(users=61, cpu=1.75, memory=7 * GIB, node=M5_2XLARGE, placeholders=0)
    assert (exact.placeholders, exact.nodes, exact.headroom_percent) == (0, 16, None)


def test_any_machine_by_cpu_memory_and_price():
    machine = NodeType("custom", cpu=16, memory=64 * GIB, price=0.5)
    plan = make_plan(users=20, cpu=1, memory=4 * GIB, node=machine, hours=10, placeholders=0)
    assert (
        plan.users_per_node == 14
    )  # 15.69 CPU -> 15 by CPU; 64 - 3.94 - 0.5 - 0.125 = 59.4 GiB -> 14 by memory
    assert (plan.nodes, plan.node_hours, plan.cost) == (2, 20, 10.0)
    assert plan.unused_memory_per_full_node == plan.fit.allocatable_memory - 14 * 4 * GIB


def test_warnings_say_what_the_numbers_leave_out():
    overcommitted = make_plan(
        users=8, cpu=1.75, memory=7 * GIB, memory_limit=8 * GIB, node=M5_2XLARGE, hours=3
    )
    assert any("overcommit" in w for w in overcommitted.warnings)
    quiet = make_plan(users=8, cpu=1.75, memory=7 * GIB, memory_limit=7 * GIB, node=M5_2XLARGE, hours=3)
    assert quiet.warnings == ()
    one_hour = make_plan(users=8, cpu=1.75, memory=7 * GIB, cpu_limit=16, node=NodeType("n", 8, 32 * GIB))
    assert one_hour.hours == 1 and one_hour.cost is None
    assert [w.split(":")[0] for w in one_hour.warnings] == [
        "the CPU limit 16 is more than a node has for users (7.71); it will never be reached",
        "no --hours or --schedule",
        "no price for this node",
    ]


def test_schedule_sums_node_hours_per_block():
    day1 = datetime(2026, 7, 14, 8, tzinfo=timezone(timedelta(hours=-6)))
    day2 = day1 + timedelta(days=1)
    schedule = [Block(day1, day1 + timedelta(hours=9), 40), Block(day2, day2 + timedelta(hours=4), 20)]
    plan = make_plan(
        users=40, cpu=1.75, memory=7 * GIB, node=M5_2XLARGE, schedule=schedule, prewarm_lead=None
    )
    first, second = plan.schedule
    assert (first.block.users, first.placeholders, first.nodes, first.node_hours) == (40, 4, 11, 99)
    assert (second.block.users, second.placeholders, second.nodes, second.node_hours) == (20, 2, 6, 24)
    assert plan.node_hours == 11 * 9 + 6 * 4 and plan.hours == 13
    assert (plan.nodes, plan.placeholders) == (11, 4)  # the busiest block
    assert plan.prewarm_node_hours == 0 and first.prewarm_placeholders == 0


def test_prewarm_adds_the_services_node_sized_placeholders_before_each_block():
    day1 = datetime(2026, 7, 14, 8, tzinfo=timezone(timedelta(hours=-6)))
    schedule = [
        Block(day1, day1 + timedelta(hours=9), 40),
        Block(day1 + timedelta(days=1), day1 + timedelta(days=1, hours=4), 21),
    ]
    plan = make_plan(users=40, cpu=1.75, memory=7 * GIB, node=M5_2XLARGE, schedule=schedule)  # lead 20 min
    first, second = plan.schedule
    # 4 users per node: the service keeps ceil(40 / 4) and ceil(21 / 4) nodes warm for 20 minutes
    assert (first.prewarm_placeholders, second.prewarm_placeholders) == (10, 6)
    assert first.prewarm_from == day1 - timedelta(minutes=20)
    assert plan.prewarm_node_hours == pytest.approx((10 + 6) / 3)
    assert plan.node_hours == pytest.approx(11 * 9 + 6 * 4 + 16 / 3)
    assert (
        plan.limits.start_timeout
        < make_plan(
            users=40, cpu=1.75, memory=7 * GIB, node=M5_2XLARGE, schedule=schedule, prewarm_lead=None
        ).limits.start_timeout
    )  # a warm node spares the spawn the node's boot
    with pytest.raises(PlanError, match="not both"):
        make_plan(users=40, cpu=1.75, memory=7 * GIB, node=M5_2XLARGE, schedule=schedule, hours=3)
