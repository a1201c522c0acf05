"""`jupyterhub-workshop plan`: the command line around the sizing model.

Before the event: a :class:`~.sizing.Plan` for ``--users`` with the per-user guarantees on a
node from the catalogue or described by ``--node-cpu/--node-memory``. After it: actual
node-hours and cost from the workshop service's usage export (``--from-usage``), counted by
:mod:`jupyterhub_workshop.usage_accounting`, the rule the service itself uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import timedelta
from pathlib import Path

from ...schedule import DEFAULT_LEAD
from ...usage_accounting import read_usage_export, usage_totals
from .catalogue import Catalogue, NodeType, load_catalogue
from .errors import PlanError
from .overheads import DEFAULT_DAEMONSET_CPU, DEFAULT_HUB_CPU, OverheadSettings
from .quantities import parse_cpu, parse_memory
from .render import (
    chart_values,
    measured_json,
    measured_table,
    nodes_table,
    plan_json,
    plan_table,
    usage_table,
)
from .schedule import EXAMPLE, blocks_of, read_schedule
from .sizing import (
    DEFAULT_GUARANTEE_HEADROOM_PERCENT,
    DEFAULT_HEADROOM_PERCENT,
    DEFAULT_LIMIT_HEADROOM_PERCENT,
    fit_at_least_one,
    loadtest_resources,
    make_plan,
    size_from_measurements,
)


def _memory_arg(text: str) -> int:
    try:
        return parse_memory(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _cpu_arg(text: str) -> float:
    try:
        return parse_cpu(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Users per node, nodes, placeholder headroom, node-hours and cost for a workshop; or, with "
        "--from-usage, the actual node-hours and cost from the workshop service's usage export. "
        "Memory sizes use JupyterHub's binary units (7G = 7 GiB); CPU in cores (1.75) or millicores (500m)."
    )
    what = parser.add_argument_group("users")
    what.add_argument(
        "--users", type=int, help="participants using the hub at the same time (plus instructors)"
    )
    what.add_argument(
        "--cpu", type=_cpu_arg, help="CPU guarantee per user, e.g. 1.75 (KubeSpawner cpu_guarantee)"
    )
    what.add_argument(
        "--memory",
        type=_memory_arg,
        metavar="GUARANTEE",
        help="memory guarantee per user, e.g. 7G (KubeSpawner mem_guarantee)",
    )
    what.add_argument(
        "--cpu-limit", type=_cpu_arg, metavar="L", help="CPU limit per user (checked, reported)"
    )
    what.add_argument(
        "--memory-limit",
        type=_memory_arg,
        metavar="L",
        help="memory limit per user (warns when a full node would overcommit)",
    )

    node = parser.add_argument_group("node")
    node.add_argument("--node", metavar="TYPE", help="node type from the catalogue (see --list-nodes)")
    node.add_argument("--node-cpu", type=_cpu_arg, help="any machine: its vCPUs (also overrides --node's)")
    node.add_argument("--node-memory", type=_memory_arg, help="any machine: its memory, e.g. 128G")
    node.add_argument(
        "--price",
        type=float,
        metavar="PER_NODE_HOUR",
        help="price of one node-hour (overrides the catalogue)",
    )
    node.add_argument("--currency", help="currency of --price (default: the catalogue's, or USD)")
    node.add_argument(
        "--catalogue", type=Path, help="another node catalogue YAML (default: the packaged nodes.yaml)"
    )
    node.add_argument("--list-nodes", action="store_true", help="print the catalogue and exit")

    over = parser.add_argument_group(
        "per-node overheads", "subtracted from every node before users are fitted; shown in the table"
    )
    over.add_argument(
        "--system-cpu",
        type=_cpu_arg,
        default=None,
        help="kubelet/OS CPU reserve (default: GKE's tiers, 6%% of the first core, 1%% of the "
        "second, 0.5%% of the next two, 0.25%% above four)",
    )
    over.add_argument(
        "--system-memory",
        type=_memory_arg,
        default=None,
        help="kubelet/OS memory reserve (default: 6%% of the node's memory + 100 MiB eviction threshold)",
    )
    over.add_argument(
        "--daemonset-cpu",
        type=_cpu_arg,
        default=DEFAULT_DAEMONSET_CPU,
        help="CPU requested by daemonsets on each node: kube-proxy, CNI, CSI, log/metrics agents, "
        "image puller (default: 0.2)",
    )
    over.add_argument(
        "--daemonset-memory",
        type=_memory_arg,
        default="512M",
        help="memory requested by daemonsets on each node (default: 512M)",
    )
    over.add_argument(
        "--hub-cpu",
        type=_cpu_arg,
        default=DEFAULT_HUB_CPU,
        help="CPU kept for the hub and proxy on each node (default: 0)",
    )
    over.add_argument(
        "--hub-memory",
        type=_memory_arg,
        default="128M",
        help="memory kept for the hub and proxy on each node (default: 128M, the Jetstream guide's "
        "budget; 0 when they run on separate core nodes)",
    )

    when = parser.add_argument_group("event")
    times = when.add_mutually_exclusive_group()
    times.add_argument(
        "--hours", type=float, metavar="H", help="length of the event in hours (default: cost of one hour)"
    )
    times.add_argument(
        "--schedule",
        type=Path,
        metavar="FILE",
        help="the workshop's schedule, YAML or JSON, as the workshop service and the chart's "
        "workshop.schedule take it: {timeZone, from, until, expected, sessions: [{days, start, end}]} "
        "(see --schedule-example), or a Helm values file with workshop.schedule; nodes are assumed "
        "scaled down between sessions and pre-warmed before each",
    )
    when.add_argument(
        "--schedule-example",
        action="store_true",
        help="print an example schedule file to start from (e.g. > schedule.yaml) and exit",
    )
    when.add_argument(
        "--lead",
        type=float,
        default=DEFAULT_LEAD.total_seconds() / 60,
        metavar="MINUTES",
        help="with --schedule: the workshop service warms nodes this long before each session (default: 20)",
    )
    when.add_argument(
        "--no-prewarm",
        action="store_true",
        help="with --schedule: no pre-warm (the service's schedule unset)",
    )
    when.add_argument(
        "--headroom",
        type=float,
        default=DEFAULT_HEADROOM_PERCENT,
        metavar="PERCENT",
        help="user placeholders kept free for arrivals, as a percentage of --users, rounded up (default: 10)",
    )
    when.add_argument(
        "--placeholders",
        type=int,
        metavar="N",
        help="exact number of user placeholders (instead of --headroom)",
    )

    crowd = parser.add_argument_group(
        "spawn limits", "the hub's limits and timeouts for a crowd that arrives at a session's start"
    )
    crowd.add_argument(
        "--arrival-minutes",
        type=float,
        default=10.0,
        metavar="M",
        help="how long the crowd takes to arrive (default: 10)",
    )
    crowd.add_argument(
        "--pod-start",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="a user pod's start on a ready node, image pulled (default: 30)",
    )
    crowd.add_argument(
        "--node-boot", type=float, default=5.0, metavar="MINUTES", help="a new node's boot (default: 5)"
    )

    after = parser.add_argument_group("after the event")
    after.add_argument(
        "--from-usage",
        type=Path,
        metavar="USAGE_EXPORT",
        help="actual node-hours and cost from a usage export, CSV or JSON (`usage export` or the admin "
        "page's): sessions still open count until the export was taken",
    )
    after.add_argument(
        "--users-per-node",
        type=int,
        metavar="K",
        help="with --from-usage: users per node (default: computed from --node, --cpu and --memory)",
    )

    measured = parser.add_argument_group(
        "from a rehearsal",
        "size the servers from what `loadtest --notebook --json` measured; --memory, --memory-limit "
        "and --cpu still override",
    )
    measured.add_argument(
        "--from-loadtest",
        type=Path,
        metavar="REPORT_JSON",
        help="the load test's JSON report: memory guarantee and limit, CPU guarantee from the measured peaks",
    )
    measured.add_argument(
        "--guarantee-headroom",
        type=float,
        default=DEFAULT_GUARANTEE_HEADROOM_PERCENT,
        metavar="PERCENT",
        help="memory (and CPU) guarantee above the measured p95 (default: 25)",
    )
    measured.add_argument(
        "--limit-headroom",
        type=float,
        default=DEFAULT_LIMIT_HEADROOM_PERCENT,
        metavar="PERCENT",
        help="memory limit above the largest measured peak (default: 50)",
    )

    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="output (default: table)"
    )


def _described(args) -> bool:
    return args.node_cpu is not None and args.node_memory is not None


def node_from_args(args, catalogue: Catalogue) -> NodeType:
    """The catalogue's ``--node`` with any of ``--node-cpu/--node-memory/--price/--currency``
    applied, or a machine described by them alone (named by ``--node`` if given)."""
    if args.node and (args.node in catalogue.nodes or not _described(args)):
        node = catalogue.get(args.node)  # an unknown name: PlanError with suggestions
        changes = {k: v for k, v in (("cpu", args.node_cpu), ("memory", args.node_memory)) if v is not None}
        if changes:
            node = dataclasses.replace(node, **changes, provider=node.provider + " (modified)")
    elif _described(args):
        node = NodeType(args.node or "custom", args.node_cpu, args.node_memory)
    else:
        raise PlanError(
            "give --node TYPE (see --list-nodes) or describe the machine with --node-cpu and --node-memory"
        )
    if args.price is not None:
        node = dataclasses.replace(node, price=args.price, prices_read="")
    if args.currency:
        node = dataclasses.replace(node, currency=args.currency)
    if node.cpu <= 0 or node.memory <= 0:
        raise PlanError("a node needs more than 0 CPU and memory")
    return node


def overheads_from_args(args) -> OverheadSettings:
    return OverheadSettings(
        system_cpu=args.system_cpu,
        system_memory=args.system_memory,
        daemonset_cpu=args.daemonset_cpu,
        daemonset_memory=args.daemonset_memory,
        hub_cpu=args.hub_cpu,
        hub_memory=args.hub_memory,
    )


def usage_report(args, catalogue: Catalogue) -> dict:
    """``--from-usage``: the usage totals, with the users per node and the price they were counted with."""
    export = read_usage_export(args.from_usage)
    node = None
    if args.users_per_node is not None:
        k = args.users_per_node
        if args.node or _described(args):
            node = node_from_args(args, catalogue)
    else:
        if args.memory is None:
            raise PlanError("--from-usage needs --users-per-node K, or --node with --cpu and --memory")
        node = node_from_args(args, catalogue)
        k = fit_at_least_one(
            node, overheads_from_args(args), args.cpu or 0.0, args.memory, catalogue
        ).users_per_node
    if node is not None:  # node_from_args already applied --price and --currency
        price, currency = node.price, node.currency
    else:
        price, currency = args.price, args.currency or "USD"
    # sessions still open when the export was taken ran at least until then
    report = usage_totals(export.sessions, k, until=export.exported)
    report.update(
        file=str(args.from_usage),
        exported=None if export.exported is None else export.exported.isoformat(),
        users_per_node=k,
        node=node.name if node else None,
        price=price,
        currency=currency,
        cost=None if price is None else round(report["node_hours"] * price, 2),
    )
    return report


def run(args, out=None) -> int:
    out = out or sys.stdout
    catalogue = load_catalogue(args.catalogue)
    if args.list_nodes:
        out.write(nodes_table(catalogue))
        return 0
    if args.from_usage and args.from_loadtest:
        raise PlanError("give --from-usage (after the event) or --from-loadtest (before it), not both")
    if args.from_usage:
        report = usage_report(args, catalogue)
        out.write(json.dumps(report, indent=2) + "\n" if args.format == "json" else usage_table(report))
        return 0

    if args.schedule_example:
        out.write(EXAMPLE.read_text(encoding="utf-8"))
        return 0
    blocks = None
    if args.schedule:
        notes: list[str] = []
        blocks = blocks_of(read_schedule(args.schedule, notes), args.users, str(args.schedule))
        for note in notes:  # on standard error: the JSON output stays JSON
            print(f"note: {note}", file=sys.stderr)
    users = args.users if args.users is not None else max((b.users for b in blocks or ()), default=None)
    measured = measured_from_args(args) if args.from_loadtest else None
    memory, memory_limit, cpu = args.memory, args.memory_limit, args.cpu
    if measured is not None:
        memory = memory if memory is not None else measured.memory_guarantee
        memory_limit = memory_limit if memory_limit is not None else max(measured.memory_limit, memory)
        cpu = cpu if cpu is not None else measured.cpu_guarantee
    missing = [o for o, v in (("--users", users), ("--memory", memory)) if v is None]
    if missing:
        raise PlanError(f"missing {' and '.join(missing)} (or use --from-usage or --from-loadtest)")
    plan = make_plan(
        users=users,
        cpu=cpu or 0.0,
        memory=memory,
        node=node_from_args(args, catalogue),
        overheads=overheads_from_args(args),
        cpu_limit=args.cpu_limit,
        memory_limit=memory_limit,
        hours=args.hours,
        schedule=blocks,
        headroom_percent=args.headroom,
        placeholders=args.placeholders,
        catalogue=catalogue,
        prewarm_lead=None if args.no_prewarm else timedelta(minutes=args.lead),
        arrival_minutes=args.arrival_minutes,
        pod_start_seconds=args.pod_start,
        node_boot_minutes=args.node_boot,
    )
    if args.format == "json":
        data = plan_json(plan)
        if measured is not None:
            data["measured"] = measured_json(measured)
            data["chart_values"] = chart_values(plan)
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        out.write((measured_table(measured, plan) if measured is not None else "") + plan_table(plan))
    return 0


def measured_from_args(args):
    """``--from-loadtest``: the report read and checked, and the sizes it implies."""
    source = str(args.from_loadtest)
    try:
        report = json.loads(Path(args.from_loadtest).read_text(encoding="utf-8"))
    except ValueError as e:
        raise PlanError(f"{source}: not JSON ({e})") from None
    return size_from_measurements(
        loadtest_resources(report, source), source, args.guarantee_headroom, args.limit_headroom
    )
