"""The sizing model: users per node, nodes with placeholder headroom, node-hours and cost.

Plain functions of their inputs, no argument parsing and no printing: :func:`make_plan`
returns a :class:`Plan`; :mod:`.render` shows it and :mod:`.cli` asks for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from ...schedule import DEFAULT_LEAD, placeholders_for
from ...spawn_limits import SpawnLimits, spawn_limits
from ...usage_accounting import nodes_for
from .catalogue import Catalogue, NodeType
from .errors import PlanError
from .overheads import Overheads, OverheadSettings
from .quantities import format_memory
from .schedule import Block

DEFAULT_HEADROOM_PERCENT = 10.0
_EPS = 1e-9  # 7G guarantees on exactly 28G left must fit 4, not 3.999...


@dataclass(frozen=True)
class Fit:
    users_per_node: int
    allocatable_cpu: float
    allocatable_memory: int
    by_cpu: int | None  # None: no CPU guarantee, CPU does not bound
    by_memory: int
    limited_by: str  # "cpu" or "memory"


def fit_users(node: NodeType, overheads: Overheads, cpu: float, memory: int) -> Fit:
    """How many users with these guarantees one node holds after its overheads."""
    if memory <= 0:
        raise PlanError("give a memory guarantee larger than 0 (--memory), e.g. --memory 2G")
    alloc_cpu = node.cpu - overheads.cpu
    alloc_mem = node.memory - overheads.memory
    by_memory = max(0, math.floor(alloc_mem / memory + _EPS))
    by_cpu = None if cpu <= 0 else max(0, math.floor(alloc_cpu / cpu + _EPS))
    if by_cpu is not None and by_cpu < by_memory:
        return Fit(by_cpu, alloc_cpu, alloc_mem, by_cpu, by_memory, "cpu")
    return Fit(by_memory, alloc_cpu, alloc_mem, by_cpu, by_memory, "memory")


def _fitting_nodes(
    catalogue: Catalogue | None, cpu: float, memory: int, settings: OverheadSettings
) -> list[str]:
    """The smallest catalogue node of each family that holds one user with these guarantees."""
    if catalogue is None:
        return []
    smallest: dict[str, NodeType] = {}
    for n in catalogue.nodes.values():
        if fit_users(n, settings.for_node(n), cpu, memory).users_per_node >= 1:
            best = smallest.get(n.family)
            if best is None or (n.memory, n.cpu) < (best.memory, best.cpu):
                smallest[n.family] = n
    return [n.name for n in smallest.values()]


def _impossible(
    node: NodeType,
    ov: Overheads,
    fit: Fit,
    cpu: float,
    memory: int,
    catalogue: Catalogue | None,
    settings: OverheadSettings,
) -> PlanError:
    short = []
    if fit.by_memory < 1:
        short.append(
            f"memory guarantee {format_memory(memory)} is larger than the "
            f"{format_memory(max(fit.allocatable_memory, 0))} one {node.name} node has left for users"
        )
    if fit.by_cpu is not None and fit.by_cpu < 1:
        short.append(
            f"CPU guarantee {cpu:g} is larger than the {max(fit.allocatable_cpu, 0):.2f} CPU "
            f"one {node.name} node has left for users"
        )
    detail = (
        f" ({node.name}: {node.cpu:g} CPU, {format_memory(node.memory)}; minus system "
        f"{ov.system_cpu:.2f} CPU / {format_memory(ov.system_memory)}, daemonsets {ov.daemonset_cpu:.2f} CPU / "
        f"{format_memory(ov.daemonset_memory)}, hub {ov.hub_cpu:.2f} CPU / {format_memory(ov.hub_memory)})"
    )
    fitting = _fitting_nodes(catalogue, cpu, memory, settings)
    if fitting:
        hint = f" The smallest catalogue node types that hold one such user: {', '.join(fitting)}."
    elif catalogue is not None:
        biggest = max(catalogue.nodes.values(), key=lambda n: (n.memory, n.cpu))
        hint = (
            f" That is larger than any node type in the catalogue (largest: {biggest.name}, "
            f"{biggest.cpu:g} CPU, {format_memory(biggest.memory)}); lower the guarantee or describe a "
            "bigger machine with --node-cpu/--node-memory."
        )
    else:
        hint = ""
    return PlanError("impossible request: " + "; ".join(short) + detail + "." + hint)


def fit_at_least_one(
    node: NodeType, settings: OverheadSettings, cpu: float, memory: int, catalogue: Catalogue | None = None
) -> Fit:
    """:func:`fit_users` with the node's overheads; PlanError explaining why (and which
    catalogue nodes would do) when not even one user fits."""
    overheads = settings.for_node(node)
    fit = fit_users(node, overheads, cpu, memory)
    if fit.users_per_node < 1:
        raise _impossible(node, overheads, fit, cpu, memory, catalogue, settings)
    return fit


def headroom_placeholders(users: int, headroom_percent: float) -> int:
    """User placeholders (same size as a user) kept free so arrivals start without waiting
    for a new node: ``headroom_percent`` of the users, rounded up."""
    if headroom_percent < 0:
        raise PlanError("--headroom cannot be negative")
    return math.ceil(users * headroom_percent / 100 - _EPS) if users else 0


@dataclass(frozen=True)
class BlockPlan:
    """One session of a schedule: its users, their placeholders and the nodes for both, and the
    node-sized placeholders the workshop service keeps warm from ``lead`` before its start."""

    block: Block
    placeholders: int
    nodes: int
    prewarm_placeholders: int = 0
    prewarm_lead: timedelta = timedelta(0)

    @property
    def prewarm_from(self):
        return self.block.start - self.prewarm_lead

    @property
    def prewarm_node_hours(self) -> float:
        # before the start the warm nodes wait for nobody; from the start on they are the
        # users' nodes, counted in the session's node-hours
        return self.prewarm_placeholders * self.prewarm_lead.total_seconds() / 3600

    @property
    def node_hours(self) -> float:
        return self.nodes * self.block.hours + self.prewarm_node_hours


@dataclass(frozen=True)
class Plan:
    users: int
    node: NodeType
    cpu: float  # guarantee per user
    memory: int
    cpu_limit: float | None
    memory_limit: int | None
    overheads: Overheads  # per node
    fit: Fit
    headroom_percent: float | None  # None: an exact number of placeholders was asked for
    placeholders: int  # with a schedule: those of the block that needs the most nodes
    nodes: int  # with a schedule: the most any block needs
    hours: float
    schedule: tuple[BlockPlan, ...] | None
    node_hours: float
    cost: float | None
    warnings: tuple[str, ...]
    limits: SpawnLimits | None = None  # None without users

    @property
    def prewarm_node_hours(self) -> float:
        return sum(b.prewarm_node_hours for b in self.schedule or ())

    @property
    def users_per_node(self) -> int:
        return self.fit.users_per_node

    @property
    def nodes_for_users(self) -> int:
        """Nodes for the users alone, without placeholders."""
        return nodes_for(self.users, self.users_per_node)

    @property
    def unused_cpu_per_full_node(self) -> float:
        return self.fit.allocatable_cpu - self.users_per_node * self.cpu

    @property
    def unused_memory_per_full_node(self) -> int:
        return self.fit.allocatable_memory - self.users_per_node * self.memory


def _warnings(
    fit: Fit, node: NodeType, cpu_limit: float | None, memory_limit: int | None, timed: bool
) -> tuple[str, ...]:
    k = fit.users_per_node
    warnings = []
    if memory_limit is not None and k * memory_limit > fit.allocatable_memory:
        warnings.append(
            f"memory limits overcommit a full node: {k} x {format_memory(memory_limit)} = "
            f"{format_memory(k * memory_limit)} > {format_memory(fit.allocatable_memory)} left for users; "
            "if everyone on a node reaches the limit, the kernel kills processes"
        )
    if cpu_limit is not None and cpu_limit > fit.allocatable_cpu:
        warnings.append(
            f"the CPU limit {cpu_limit:g} is more than a node has for users "
            f"({fit.allocatable_cpu:.2f}); it will never be reached"
        )
    if not timed:
        warnings.append("no --hours or --schedule: node-hours and cost are for one hour")
    if node.price is None:
        warnings.append("no price for this node: give --price PER_NODE_HOUR for the cost")
    return tuple(warnings)


def make_plan(
    *,
    users: int,
    cpu: float,
    memory: int,
    node: NodeType,
    overheads: OverheadSettings = OverheadSettings(),
    cpu_limit: float | None = None,
    memory_limit: int | None = None,
    hours: float | None = None,
    schedule: list[Block] | None = None,
    headroom_percent: float = DEFAULT_HEADROOM_PERCENT,
    placeholders: int | None = None,
    catalogue: Catalogue | None = None,
    prewarm_lead: timedelta | None = DEFAULT_LEAD,
    arrival_minutes: float = 10.0,
    pod_start_seconds: float = 30.0,
    node_boot_minutes: float = 5.0,
) -> Plan:
    """The plan for ``users`` with these guarantees on ``node``, over ``hours`` (default one)
    or the blocks of a ``schedule`` (nodes scaled down between blocks), pre-warmed from
    ``prewarm_lead`` before each block (None: no pre-warm), with the hub's spawn limits for a
    crowd arriving over ``arrival_minutes``. ``catalogue``: where to look for nodes that would
    fit when none does."""
    if users < 0:
        raise PlanError("--users cannot be negative")
    if cpu_limit is not None and cpu_limit < cpu:
        raise PlanError(f"--cpu-limit {cpu_limit:g} is below the CPU guarantee {cpu:g}")
    if memory_limit is not None and memory_limit < memory:
        raise PlanError(
            f"--memory-limit {format_memory(memory_limit)} is below the memory guarantee "
            f"{format_memory(memory)}"
        )
    if hours is not None and schedule is not None:
        raise PlanError("give --hours or --schedule, not both")
    if hours is not None and hours < 0:
        raise PlanError("--hours cannot be negative")
    if placeholders is not None and placeholders < 0:
        raise PlanError("--placeholders cannot be negative")
    fit = fit_at_least_one(node, overheads, cpu, memory, catalogue)
    k = fit.users_per_node

    def placeholders_of(n: int) -> int:
        return placeholders if placeholders is not None else headroom_placeholders(n, headroom_percent)

    prewarmed = schedule is not None and prewarm_lead is not None
    if schedule is not None:
        blocks = []
        for b in schedule:
            ph = placeholders_of(b.users)
            # the workshop service's own sizing: node-sized placeholders for everyone expected
            warm = placeholders_for(b.users, k) if prewarmed else 0
            blocks.append(
                BlockPlan(
                    b, ph, nodes_for(b.users + ph, k), warm, prewarm_lead if prewarmed else timedelta(0)
                )
            )
        peak = max(blocks, key=lambda b: b.nodes)
        ph, nodes = peak.placeholders, peak.nodes
        total_hours = sum(b.hours for b in schedule)
        node_hours = sum(b.node_hours for b in blocks)
    else:
        blocks = None
        ph = placeholders_of(users)
        nodes = nodes_for(users + ph, k)
        total_hours = 1.0 if hours is None else hours
        node_hours = nodes * total_hours
    return Plan(
        users=users,
        node=node,
        cpu=cpu,
        memory=memory,
        cpu_limit=cpu_limit,
        memory_limit=memory_limit,
        overheads=overheads.for_node(node),
        fit=fit,
        headroom_percent=None if placeholders is not None else headroom_percent,
        placeholders=ph,
        nodes=nodes,
        hours=total_hours,
        schedule=None if blocks is None else tuple(blocks),
        node_hours=node_hours,
        cost=None if node.price is None else node_hours * node.price,
        warnings=_warnings(
            fit, node, cpu_limit, memory_limit, timed=hours is not None or schedule is not None
        ),
        limits=spawn_limits(
            max([users, *(b.users for b in schedule or ())]),
            arrival_minutes,
            pod_start_seconds,
            node_boot_minutes,
            prewarmed,
            capacity=nodes * k,
        ),
    )


# --- sizing from a load test's measurements (`plan --from-loadtest`) -----------------------

DEFAULT_GUARANTEE_HEADROOM_PERCENT = 25.0  # over the measured p95 peak: lessons run again, data grows
DEFAULT_LIMIT_HEADROOM_PERCENT = 50.0  # over the largest peak: room before the kernel is killed
MEMORY_STEP = 64 * 1024**2  # recommendations round up to whole 64 MiB
CPU_STEP = 0.05
LOADTEST_SCHEMA = "jupyterhub-workshop/loadtest-report"
LOADTEST_VERSIONS = (2,)


@dataclass(frozen=True)
class Measured:
    """What a load test measured per participant, and the guarantees and limit it implies."""

    source: str
    participants: int
    memory_p95: int  # peak memory per participant (server and kernels), p95 over participants
    memory_max: int
    cpu_p95: (
        float | None
    )  # mean CPU (cores) over a participant's run, p95 over participants; None: not measured
    cpu_max: float | None  # the highest CPU any participant reached (cores)
    guarantee_headroom_percent: float
    limit_headroom_percent: float
    memory_guarantee: int
    memory_limit: int
    cpu_guarantee: float  # 0: not measured, no CPU guarantee
    server_limit: int | None  # the memory limit the measured servers ran with


def _round_up(value: float, step: float) -> float:
    return math.ceil(value / step - _EPS) * step


def size_from_measurements(
    resources: dict,
    source: str = "load test",
    guarantee_headroom_percent: float = DEFAULT_GUARANTEE_HEADROOM_PERCENT,
    limit_headroom_percent: float = DEFAULT_LIMIT_HEADROOM_PERCENT,
) -> Measured:
    """Guarantees and limit from a load test report's ``resources``: the memory guarantee is
    the p95 peak plus ``guarantee_headroom_percent``, the limit the largest peak plus
    ``limit_headroom_percent`` (never below the guarantee), the CPU guarantee the p95 of the
    participants' mean CPU plus the guarantee's headroom; memory rounded up to 64 MiB, CPU to 0.05."""
    if guarantee_headroom_percent < 0 or limit_headroom_percent < 0:
        raise PlanError("headroom cannot be negative")
    memory = resources.get("memory") or {}
    if not memory.get("p95") or not memory.get("max"):
        raise PlanError(f"{source}: no memory was measured per participant")
    p95, most = int(memory["p95"]), int(memory["max"])
    guarantee = int(_round_up(p95 * (1 + guarantee_headroom_percent / 100), MEMORY_STEP))
    limit = max(guarantee, int(_round_up(most * (1 + limit_headroom_percent / 100), MEMORY_STEP)))
    cpu = resources.get("cpu") or None
    cpu_p95 = cpu["mean"]["p95"] if cpu else None
    cpu_max = cpu["peak"]["max"] if cpu else None
    cpu_guarantee = (
        0.0
        if cpu_p95 is None
        else max(CPU_STEP, round(_round_up(cpu_p95 * (1 + guarantee_headroom_percent / 100), CPU_STEP), 2))
    )
    return Measured(
        source=source,
        participants=int(resources.get("measured") or len(resources.get("participants") or ())),
        memory_p95=p95,
        memory_max=most,
        cpu_p95=cpu_p95,
        cpu_max=cpu_max,
        guarantee_headroom_percent=guarantee_headroom_percent,
        limit_headroom_percent=limit_headroom_percent,
        memory_guarantee=guarantee,
        memory_limit=limit,
        cpu_guarantee=cpu_guarantee,
        server_limit=resources.get("memory_limit"),
    )


def loadtest_resources(report: dict, source: str) -> dict:
    """The ``resources`` of a load test report, checked: its schema and version, and that it
    measured anything (a rehearsal without jupyter-resource-usage has no numbers to size from)."""
    if not isinstance(report, dict) or report.get("schema") != LOADTEST_SCHEMA:
        raise PlanError(f"{source}: not a load test report (written by `loadtest --json`)")
    if report.get("version") not in LOADTEST_VERSIONS:
        raise PlanError(
            f"{source}: load test report version {report.get('version')!r}; this plan reads version "
            + ", ".join(map(str, LOADTEST_VERSIONS))
        )
    if "notebooks" not in report:
        raise PlanError(f"{source}: the load test ran no notebooks (--notebook): nothing was measured")
    if "resources" not in report:
        raise PlanError(
            f"{source}: no resources were measured ({report.get('resources_missing', 'unknown reason')})"
        )
    return report["resources"]
