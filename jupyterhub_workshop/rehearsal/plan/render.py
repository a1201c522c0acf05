"""A plan, a usage report and the catalogue as text tables, and a plan as JSON."""

from __future__ import annotations

from ...spawn_limits import BURST_MARGIN, MIN_CONCURRENT, SpawnLimits
from .catalogue import Catalogue
from .quantities import GIB, chart_memory, format_cpu, format_memory
from .sizing import Measured, Plan


def _r(x: float) -> float:
    return round(x, 4)


def _hours(x: float) -> str:
    """Hours and node-hours for people: one decimal (730.7, not 730.667); an amount too small
    to show as 0.1 says so rather than 0.0."""
    if 0 < x < 0.05:
        return "< 0.1"
    return f"{x:,.1f}"


def _cpu_memory(cpu: float, memory: int) -> dict:
    return {"cpu": _r(cpu), "memory_gib": _r(memory / GIB)}


def plan_json(plan: Plan) -> dict:
    """What ``--format json`` prints."""
    node, ov, fit = plan.node, plan.overheads, plan.fit
    return {
        "users": plan.users,
        "node": {
            "name": node.name,
            "provider": node.provider,
            "cpu": node.cpu,
            "memory_gib": node.memory / GIB,
            "price": node.price,
            "currency": node.currency,
            "prices_read": node.prices_read or None,
            "source": node.source or None,
        },
        "guarantee": {"cpu": plan.cpu, "memory_gib": _r(plan.memory / GIB)},
        "limit": {
            "cpu": plan.cpu_limit,
            "memory_gib": None if plan.memory_limit is None else _r(plan.memory_limit / GIB),
        },
        "overheads_per_node": {
            "system": _cpu_memory(ov.system_cpu, ov.system_memory),
            "daemonsets": _cpu_memory(ov.daemonset_cpu, ov.daemonset_memory),
            "hub": _cpu_memory(ov.hub_cpu, ov.hub_memory),
        },
        "allocatable_per_node": _cpu_memory(fit.allocatable_cpu, fit.allocatable_memory),
        "users_per_node": plan.users_per_node,
        "users_per_node_by": {"cpu": fit.by_cpu, "memory": fit.by_memory},
        "limited_by": fit.limited_by,
        "unused_per_full_node": _cpu_memory(plan.unused_cpu_per_full_node, plan.unused_memory_per_full_node),
        "headroom_percent": plan.headroom_percent,
        "placeholders": plan.placeholders,
        "nodes_for_users": plan.nodes_for_users,
        "nodes": plan.nodes,
        "hours": _r(plan.hours),
        "schedule": None
        if plan.schedule is None
        else [
            {
                "start": b.block.start.isoformat(),
                "end": b.block.end.isoformat(),
                "users": b.block.users,
                "placeholders": b.placeholders,
                "nodes": b.nodes,
                "hours": _r(b.block.hours),
                "prewarm": {
                    "placeholders": b.prewarm_placeholders,
                    "from": b.prewarm_from.isoformat(),
                    "node_hours": _r(b.prewarm_node_hours),
                }
                if b.prewarm_placeholders
                else None,
                "node_hours": _r(b.node_hours),
            }
            for b in plan.schedule
        ],
        "prewarm_node_hours": _r(plan.prewarm_node_hours),
        "spawn_limits": None if plan.limits is None else limits_json(plan.limits),
        "node_hours": _r(plan.node_hours),
        "cost": None if plan.cost is None else round(plan.cost, 2),
        "currency": node.currency,
        "warnings": list(plan.warnings),
    }


def limits_json(limits: SpawnLimits) -> dict:
    return {
        "concurrent_spawn_limit": limits.concurrent_spawn_limit,
        "active_server_limit": limits.active_server_limit,
        "start_timeout": limits.start_timeout,
        "http_timeout": limits.http_timeout,
        "arrivals_per_minute": _r(limits.arrivals_per_minute),
        "spawn_seconds": _r(limits.spawn_seconds),
        "pending_at_once": _r(limits.pending_at_once),
        "concurrent_from": limits.concurrent_from,
    }


def _table(rows: list[tuple], header: tuple | None = None, left: tuple = (0,)) -> list[str]:
    rows = ([header] if header else []) + rows
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [str(c).ljust(w) if i in left else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def _money(amount: float | None, currency: str) -> str:
    return "-" if amount is None else f"{amount:,.2f} {currency}"


def plan_table(plan: Plan) -> str:
    n, ov, fit = plan.node, plan.overheads, plan.fit
    price = f"{n.price:g} {n.currency}/node-hour" if n.price is not None else "no price"
    read = f", prices read {n.prices_read}" if n.prices_read and n.price is not None else ""
    lines = [
        f"Plan: {plan.users} users on {n.name} ({n.cpu:g} CPU, {n.memory / GIB:.1f} GiB, {price}{read})",
        "",
    ]
    lines += _table(
        [
            ("node", format_cpu(n.cpu), f"{n.memory / GIB:.1f} GiB", ""),
            (
                "- system (kubelet, OS)",
                format_cpu(ov.system_cpu),
                format_memory(ov.system_memory),
                "--system-cpu/--system-memory",
            ),
            (
                "- daemonsets",
                format_cpu(ov.daemonset_cpu),
                format_memory(ov.daemonset_memory),
                "--daemonset-cpu/--daemonset-memory",
            ),
            (
                "- hub and proxy",
                format_cpu(ov.hub_cpu),
                format_memory(ov.hub_memory),
                "--hub-cpu/--hub-memory",
            ),
            ("= left for users", format_cpu(fit.allocatable_cpu), format_memory(fit.allocatable_memory), ""),
            ("per user (guarantee)", format_cpu(plan.cpu), format_memory(plan.memory), ""),
            ("users that fit", "-" if fit.by_cpu is None else str(fit.by_cpu), str(fit.by_memory), ""),
        ],
        ("per node", "CPU", "memory", "change with"),
        left=(0, 3),
    )
    lines.append("")
    headroom = (
        f"{plan.headroom_percent:g}% headroom" if plan.headroom_percent is not None else "--placeholders"
    )
    lines += _table(
        [
            ("users per node", f"{plan.users_per_node} (limited by {fit.limited_by})"),
            ("nodes for the users", str(plan.nodes_for_users)),
            ("placeholders for arrivals", f"{plan.placeholders} ({headroom})"),
            ("nodes", str(plan.nodes)),
            ("hours", _hours(plan.hours) + (" (schedule)" if plan.schedule else "")),
            (
                "node-hours",
                _hours(plan.node_hours)
                + (
                    f" (of which pre-warm {_hours(plan.prewarm_node_hours)})"
                    if plan.prewarm_node_hours
                    else ""
                ),
            ),
            ("cost", _money(plan.cost, n.currency)),
        ],
        left=(0, 1),
    )
    if plan.schedule:
        lines.append("")
        lines += _table(
            [
                (
                    b.block.start.isoformat(),
                    b.block.end.isoformat(),
                    b.block.users,
                    b.placeholders,
                    b.nodes,
                    _hours(b.block.hours),
                    f"{b.prewarm_placeholders} from {b.prewarm_from:%H:%M}"
                    if b.prewarm_placeholders
                    else "-",
                    _hours(b.node_hours),
                )
                for b in plan.schedule
            ],
            ("start", "end", "users", "placeholders", "nodes", "hours", "pre-warm nodes", "node-hours"),
            left=(0, 1),
        )
    if plan.limits is not None:
        lines.append("")
        lines += _limits_table(plan.limits)
    for w in plan.warnings:
        lines.append(f"note: {w}")
    return "\n".join(lines) + "\n"


def concurrent_why(limits: SpawnLimits) -> str:
    """Where the concurrent spawn limit comes from, in words (the table's "from" column)."""
    why = (
        f"{_r(limits.arrivals_per_minute):g} arrivals/min x {limits.spawn_seconds:g} s per spawn = "
        f"{_r(limits.pending_at_once):g} pending at once, x{BURST_MARGIN:g} for bursts"
    )
    if limits.concurrent_from == "people":
        return f"{why} = {limits.burst_spawns}, capped at the {limits.people} users (no more can be pending)"
    if limits.concurrent_from == "minimum":
        return f"{why} = {limits.burst_spawns}, raised to the minimum of {MIN_CONCURRENT}"
    return why


def _limits_table(limits: SpawnLimits) -> list[str]:
    return _table(
        [
            ("hub.concurrentSpawnLimit", str(limits.concurrent_spawn_limit), concurrent_why(limits)),
            ("hub.activeServerLimit", str(limits.active_server_limit), "what the planned nodes hold"),
            ("singleuser.startTimeout", f"{limits.start_timeout}", "seconds: a spawn's time + 2 min"),
            ("Spawner.http_timeout", f"{limits.http_timeout}", "seconds: twice a pod's start, at least 60"),
        ],
        ("spawn limits (z2jh)", "value", "from"),
        left=(0, 2),
    )


def usage_table(report: dict) -> str:
    """``plan --from-usage``: the report the command line puts together (see :mod:`.cli`)."""
    lines = [f"Usage from {report['file']}: {report['first'] or '-'} to {report['last'] or '-'}", ""]
    if report.get("exported"):
        still_open = f"{report['open_sessions']} still open, counted to the export at {report['exported']}"
    else:
        still_open = (
            f"{report['open_sessions']} still open, counted to the last time in the file: the export "
            "does not say when it was taken"
        )
    lines += _table(
        [
            ("sessions", f"{report['sessions']}" + (f" ({still_open})" if report["open_sessions"] else "")),
            ("users", str(report["users"])),
            ("server-hours", _hours(report["server_hours"])),
            (
                "peak servers",
                f"{report['peak_servers']}" + (f" at {report['peak_at']}" if report["peak_at"] else ""),
            ),
            (
                "users per node",
                f"{report['users_per_node']}" + (f" ({report['node']})" if report.get("node") else ""),
            ),
            ("peak nodes", str(report["peak_nodes"])),
            ("node-hours", _hours(report["node_hours"])),
            ("cost", _money(report["cost"], report["currency"])),
        ],
        left=(0, 1),
    )
    lines.append("note: node-hours assume nodes packed full and removed when empty; add your core/hub nodes.")
    return "\n".join(lines) + "\n"


def nodes_table(catalogue: Catalogue) -> str:
    rows = [
        (
            n.name,
            n.provider,
            f"{n.cpu:g}",
            format_memory(n.memory),
            "-" if n.price is None else f"{n.price:g} {n.currency}",
        )
        for n in catalogue.nodes.values()
    ]
    lines = _table(rows, ("node", "provider", "CPU", "memory", "per hour"))
    lines.append(f"prices read {catalogue.prices_read}. {catalogue.note}")
    return "\n".join(lines) + "\n"


def measured_json(m: Measured) -> dict:
    return {
        "source": m.source,
        "participants": m.participants,
        "memory_p95": m.memory_p95,
        "memory_max": m.memory_max,
        "cpu_p95": m.cpu_p95,
        "cpu_max": m.cpu_max,
        "guarantee_headroom_percent": m.guarantee_headroom_percent,
        "limit_headroom_percent": m.limit_headroom_percent,
        "memory_guarantee": m.memory_guarantee,
        "memory_limit": m.memory_limit,
        "cpu_guarantee": m.cpu_guarantee,
        "server_limit": m.server_limit,
    }


def chart_values(plan: Plan) -> dict:
    """The chart's ``jupyterhub.singleuser`` memory and CPU for this plan's guarantees and limits."""
    memory = {"guarantee": chart_memory(plan.memory)}
    if plan.memory_limit is not None:
        memory["limit"] = chart_memory(plan.memory_limit)
    values: dict = {"memory": memory}
    if plan.cpu > 0 or plan.cpu_limit is not None:
        cpu = {}
        if plan.cpu > 0:
            cpu["guarantee"] = plan.cpu
        if plan.cpu_limit is not None:
            cpu["limit"] = plan.cpu_limit
        values["cpu"] = cpu
    return {"jupyterhub": {"singleuser": values}}


def measured_table(m: Measured, plan: Plan) -> str:
    """How the measured peaks became the guarantees, and the values to paste into the chart."""
    import yaml

    given = []
    if plan.memory != m.memory_guarantee:
        given.append("memory guarantee")
    if plan.memory_limit != m.memory_limit:
        given.append("memory limit")
    if plan.cpu != m.cpu_guarantee:
        given.append("CPU guarantee")
    cpu_line = (
        "not measured (track_cpu_percent off on the servers): no CPU guarantee"
        if m.cpu_p95 is None
        else f"{format_cpu(m.cpu_guarantee)} = mean CPU p95 {m.cpu_p95:g} + {m.guarantee_headroom_percent:g}% "
        f"(rounded up to 0.05; the busiest moment reached {m.cpu_max:g})"
    )
    lines = [
        f"Measured by the load test ({m.source}), {m.participants} participants:",
        f"  memory guarantee {chart_memory(m.memory_guarantee)} = peak p95 {format_memory(m.memory_p95)} "
        f"+ {m.guarantee_headroom_percent:g}% (--guarantee-headroom), rounded up to 64 MiB",
        f"  memory limit     {chart_memory(m.memory_limit)} = largest peak {format_memory(m.memory_max)} "
        f"+ {m.limit_headroom_percent:g}% (--limit-headroom), rounded up to 64 MiB",
        f"  CPU guarantee    {cpu_line}",
    ]
    if m.server_limit:
        lines.append(f"  (the rehearsal's servers ran with a {format_memory(m.server_limit)} limit)")
    if given:
        lines.append(f"  given on the command line instead: {', '.join(given)}")
    lines += ["", "Chart values to paste (values.yaml):", ""]
    lines += ["  " + line for line in yaml.safe_dump(chart_values(plan), sort_keys=False).splitlines()]
    return "\n".join(lines) + "\n\n"
