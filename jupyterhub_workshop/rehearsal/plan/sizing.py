"""`jupyterhub-workshop plan`: how many nodes a workshop needs, and what it costs.

Before the event: users per node from the per-user guarantees and what each node keeps for
itself (system reserve, daemonsets, the hub), nodes for everyone plus placeholder headroom for
arrivals, node-hours and cost over ``--hours`` or a ``--schedule``. After it: actual node-hours
and cost from the workshop service's usage export (``--from-usage``).

Everything here except :func:`main` is a plain function of its arguments (no I/O but the
catalogue and file readers), so the sizing rules are tested without a cluster.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import math
import re
import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

import yaml

from ...times import aware, parse_typed_time
from ...usage_accounting import read_usage_csv, usage_totals

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4
CATALOGUE_PATH = Path(__file__).parent / "nodes.yaml"

# Defaults for what every node keeps for itself (see nodes.yaml and the --help text).
SYSTEM_MEMORY_FRACTION = 0.06        # GKE's reservation rate for nodes of 16-128 GiB
EVICTION_THRESHOLD = 100 * MIB       # kubelet's default memory.available hard eviction
DEFAULT_DAEMONSET_CPU = 0.2
DEFAULT_DAEMONSET_MEMORY = 512 * MIB
DEFAULT_HUB_CPU = 0.0
DEFAULT_HUB_MEMORY = 128 * MIB       # the Jetstream guide's budget for JupyterHub
DEFAULT_HEADROOM_PERCENT = 10.0


class PlanError(ValueError):
    """A request that cannot be planned; the message says why and what would fit."""


# --- quantities --------------------------------------------------------------------------

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmMgGtT]?)(i?)([bB]?)\s*$")
_MEMORY_UNITS = {"": GIB, "k": KIB, "m": MIB, "g": GIB, "t": TIB}


def parse_memory(text: str | int | float) -> int:
    """Bytes from ``7G``, ``7Gi``, ``7GB``, ``512M``, ``1.5T`` or a bare number of GiB.

    Units are binary whatever the spelling, as in JupyterHub's ``mem_guarantee`` and
    ``mem_limit`` (``7G`` there is 7 x 1024**3 bytes), so a guarantee copied from the hub's
    configuration means the same here.
    """
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        m = _MEMORY.match(str(text))
        if not m or (m.group(3) and not m.group(2)):
            raise ValueError(f"{text!r} is not a memory size (expected e.g. 7G, 512M, 1.5T)")
        value, unit = float(m.group(1)), m.group(2).lower()
    if value < 0:
        raise ValueError(f"{text!r}: memory cannot be negative")
    return int(round(value * _MEMORY_UNITS[unit]))


def parse_cpu(text: str | int | float) -> float:
    """CPUs from ``1.75``, ``2`` or Kubernetes millicores ``500m``."""
    s = str(text).strip()
    try:
        value = float(s[:-1]) / 1000 if s.endswith("m") else float(s)
    except ValueError:
        raise ValueError(f"{text!r} is not a CPU amount (expected e.g. 1.75 or 500m)") from None
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"{text!r}: CPU cannot be negative")
    return value


def format_memory(n: float) -> str:
    if abs(n) >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / MIB:.0f} MiB"


def format_cpu(c: float) -> str:
    return f"{c:.2f}"


# --- node catalogue ----------------------------------------------------------------------

@dataclass(frozen=True)
class NodeType:
    name: str
    cpu: float
    memory: int  # bytes
    price: float | None = None  # per node-hour
    currency: str = "USD"
    provider: str = "custom"
    source: str = ""
    prices_read: str = ""

    def describe(self) -> str:
        price = f", {self.price:g} {self.currency}/node-hour" if self.price is not None else ""
        read = f" (prices read {self.prices_read})" if self.prices_read and self.price is not None else ""
        return f"{self.name} ({self.provider}: {self.cpu:g} CPU, {format_memory(self.memory)}{price}){read}"


@dataclass
class Catalogue:
    nodes: dict[str, NodeType]
    prices_read: str = ""
    note: str = ""

    def get(self, name: str) -> NodeType:
        try:
            return self.nodes[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.nodes), n=4, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise PlanError(
                f"unknown node type {name!r}{hint} Known: {', '.join(self.nodes)}. "
                "Or describe any machine with --node-cpu and --node-memory (and --price)."
            ) from None


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """The node catalogue (``nodes.yaml`` in the package unless ``path`` is given)."""
    path = Path(path) if path else CATALOGUE_PATH
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    prices_read = str(data.get("prices_read", ""))
    nodes = {}
    for i, entry in enumerate(data.get("nodes") or [], 1):
        try:
            node = NodeType(
                name=str(entry["name"]), cpu=parse_cpu(entry["cpu"]), memory=parse_memory(entry["memory"]),
                price=None if entry.get("price") is None else float(entry["price"]),
                currency=str(entry.get("currency", "USD")), provider=str(entry.get("provider", "")),
                source=str(entry.get("source", "")), prices_read=str(entry.get("prices_read", prices_read)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: node entry {i}: {e}") from None
        if node.name in nodes:
            raise ValueError(f"{path}: node {node.name} listed twice")
        nodes[node.name] = node
    return Catalogue(nodes, prices_read, str(data.get("note", "")).strip())


# --- what a node keeps for itself --------------------------------------------------------

def default_system_cpu(node_cpu: float) -> float:
    """GKE's CPU reservation: 6% of the first core, 1% of the next, 0.5% of the next 2,
    0.25% of any core above 4."""
    tiers = ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025))
    left, reserved = node_cpu, 0.0
    for size, rate in tiers:
        part = min(left, size)
        reserved += part * rate
        left -= part
        if left <= 0:
            break
    return reserved


def default_system_memory(node_memory: int) -> int:
    """6% of the node's memory plus kubelet's 100 MiB eviction threshold."""
    return int(round(node_memory * SYSTEM_MEMORY_FRACTION)) + EVICTION_THRESHOLD


@dataclass(frozen=True)
class Overheads:
    """Per node: what the kubelet/OS, the daemonsets and the hub take before any user."""

    system_cpu: float
    system_memory: int
    daemonset_cpu: float = DEFAULT_DAEMONSET_CPU
    daemonset_memory: int = DEFAULT_DAEMONSET_MEMORY
    hub_cpu: float = DEFAULT_HUB_CPU
    hub_memory: int = DEFAULT_HUB_MEMORY

    @property
    def cpu(self) -> float:
        return self.system_cpu + self.daemonset_cpu + self.hub_cpu

    @property
    def memory(self) -> int:
        return self.system_memory + self.daemonset_memory + self.hub_memory


def overheads_for(node: NodeType, *, system_cpu: float | None = None, system_memory: int | None = None,
                  daemonset_cpu: float = DEFAULT_DAEMONSET_CPU, daemonset_memory: int = DEFAULT_DAEMONSET_MEMORY,
                  hub_cpu: float = DEFAULT_HUB_CPU, hub_memory: int = DEFAULT_HUB_MEMORY) -> Overheads:
    """The node's overheads: the given values, the default system reserve where None."""
    return Overheads(
        system_cpu=default_system_cpu(node.cpu) if system_cpu is None else system_cpu,
        system_memory=default_system_memory(node.memory) if system_memory is None else system_memory,
        daemonset_cpu=daemonset_cpu, daemonset_memory=daemonset_memory, hub_cpu=hub_cpu, hub_memory=hub_memory,
    )


@dataclass(frozen=True)
class Fit:
    users_per_node: int
    allocatable_cpu: float
    allocatable_memory: int
    by_cpu: int | None  # None: no CPU guarantee, CPU does not bound
    by_memory: int
    limited_by: str  # "cpu" or "memory"


_EPS = 1e-9


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


def placeholders_for(users: int, headroom_percent: float) -> int:
    """User placeholders (same size as a user) kept free so arrivals start without waiting
    for a new node: ``headroom_percent`` of the users, rounded up."""
    if headroom_percent < 0:
        raise PlanError("--headroom cannot be negative")
    return math.ceil(users * headroom_percent / 100 - _EPS) if users else 0


def nodes_for(users: int, users_per_node: int, placeholders: int = 0) -> int:
    if users_per_node < 1:
        raise PlanError("no user fits on a node")
    return math.ceil((users + placeholders) / users_per_node)


# --- schedules ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    start: datetime
    end: datetime
    users: int

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def _parse_time(text) -> datetime:
    # YAML schedules may hold times YAML already parsed
    if isinstance(text, datetime):
        return aware(text, repr(text.isoformat()))
    return parse_typed_time(str(text))


def parse_schedule(rows: Iterable[dict], default_users: int | None, where: str = "schedule") -> list[Block]:
    """Blocks from mappings with ``start``, ``end`` (ISO 8601 with offset) and optional ``users``."""
    blocks = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise PlanError(f"{where}: entry {i}: expected start, end and optional users")
        try:
            start, end = _parse_time(row["start"]), _parse_time(row["end"])
            users = row.get("users")
            users = default_users if users in (None, "") else int(users)
        except KeyError as e:
            raise PlanError(f"{where}: entry {i}: missing {e.args[0]}") from None
        except ValueError as e:
            raise PlanError(f"{where}: entry {i}: {e}") from None
        if users is None:
            raise PlanError(f"{where}: entry {i}: no users given and no --users")
        if users < 0:
            raise PlanError(f"{where}: entry {i}: users cannot be negative")
        if end <= start:
            raise PlanError(f"{where}: entry {i}: end must be later than start")
        blocks.append(Block(start, end, users))
    if not blocks:
        raise PlanError(f"{where}: no blocks")
    ordered = sorted(blocks, key=lambda b: b.start)
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            raise PlanError(f"{where}: blocks {a.start.isoformat()} and {b.start.isoformat()} overlap")
    return ordered


def read_schedule(path: str | Path, default_users: int | None) -> list[Block]:
    """A schedule file: CSV with header ``start,end[,users]``, or YAML/JSON, a list of
    ``{start, end, users}`` (or ``{blocks: [...]}``)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        data = yaml.safe_load(text)
        rows = data.get("blocks") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise PlanError(f"{path}: expected a list of blocks with start, end and users")
    return parse_schedule(rows, default_users, where=str(path))


# --- the plan ----------------------------------------------------------------------------

def _family(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name.rsplit("-", 1)[0]


def _fitting_nodes(catalogue: Catalogue | None, cpu: float, memory: int, overhead_args: dict) -> list[str]:
    """The smallest catalogue node of each family that holds one user with these guarantees."""
    if catalogue is None:
        return []
    smallest: dict[str, NodeType] = {}
    for n in catalogue.nodes.values():
        if fit_users(n, overheads_for(n, **overhead_args), cpu, memory).users_per_node >= 1:
            best = smallest.get(_family(n.name))
            if best is None or (n.memory, n.cpu) < (best.memory, best.cpu):
                smallest[_family(n.name)] = n
    return [n.name for n in smallest.values()]


def _impossible(node: NodeType, ov: Overheads, fit: Fit, cpu: float, memory: int,
                catalogue: Catalogue | None, overhead_args: dict) -> PlanError:
    short = []
    if fit.by_memory < 1:
        short.append(f"memory guarantee {format_memory(memory)} is larger than the "
                     f"{format_memory(max(fit.allocatable_memory, 0))} one {node.name} node has left for users")
    if fit.by_cpu is not None and fit.by_cpu < 1:
        short.append(f"CPU guarantee {cpu:g} is larger than the {max(fit.allocatable_cpu, 0):.2f} CPU "
                     f"one {node.name} node has left for users")
    detail = (f" ({node.name}: {node.cpu:g} CPU, {format_memory(node.memory)}; minus system "
              f"{ov.system_cpu:.2f} CPU / {format_memory(ov.system_memory)}, daemonsets {ov.daemonset_cpu:.2f} CPU / "
              f"{format_memory(ov.daemonset_memory)}, hub {ov.hub_cpu:.2f} CPU / {format_memory(ov.hub_memory)})")
    fitting = _fitting_nodes(catalogue, cpu, memory, overhead_args)
    if fitting:
        hint = f" The smallest catalogue node types that hold one such user: {', '.join(fitting)}."
    elif catalogue is not None:
        biggest = max(catalogue.nodes.values(), key=lambda n: (n.memory, n.cpu))
        hint = (f" That is larger than any node type in the catalogue (largest: {biggest.name}, "
                f"{biggest.cpu:g} CPU, {format_memory(biggest.memory)}); lower the guarantee or describe a "
                "bigger machine with --node-cpu/--node-memory.")
    else:
        hint = ""
    return PlanError("impossible request: " + "; ".join(short) + detail + "." + hint)


def _r(x: float) -> float:
    return round(x, 4)


def make_plan(*, users: int, cpu: float, memory: int, node: NodeType, overheads: Overheads,
              cpu_limit: float | None = None, memory_limit: int | None = None,
              hours: float | None = None, schedule: list[Block] | None = None,
              headroom_percent: float = DEFAULT_HEADROOM_PERCENT, placeholders: int | None = None,
              catalogue: Catalogue | None = None, overhead_args: dict | None = None) -> dict:
    """The plan as a JSON-ready dict (what ``--format json`` prints)."""
    if users < 0:
        raise PlanError("--users cannot be negative")
    if cpu_limit is not None and cpu_limit < cpu:
        raise PlanError(f"--cpu-limit {cpu_limit:g} is below the CPU guarantee {cpu:g}")
    if memory_limit is not None and memory_limit < memory:
        raise PlanError(f"--memory-limit {format_memory(memory_limit)} is below the memory guarantee "
                        f"{format_memory(memory)}")
    if hours is not None and schedule is not None:
        raise PlanError("give --hours or --schedule, not both")
    if hours is not None and hours < 0:
        raise PlanError("--hours cannot be negative")
    fit = fit_users(node, overheads, cpu, memory)
    if fit.users_per_node < 1:
        raise _impossible(node, overheads, fit, cpu, memory, catalogue, overhead_args or {})
    k = fit.users_per_node

    def placeholders_of(n: int) -> int:
        return placeholders if placeholders is not None else placeholders_for(n, headroom_percent)

    if placeholders is not None and placeholders < 0:
        raise PlanError("--placeholders cannot be negative")
    ph = placeholders_of(users)
    nodes = nodes_for(users, k, ph)
    blocks = []
    if schedule is not None:
        node_hours = 0.0
        for b in schedule:
            b_ph = placeholders_of(b.users)
            b_nodes = nodes_for(b.users, k, b_ph)
            node_hours += b_nodes * b.hours
            blocks.append({"start": b.start.isoformat(), "end": b.end.isoformat(), "users": b.users,
                           "placeholders": b_ph, "nodes": b_nodes, "hours": round(b.hours, 4),
                           "node_hours": round(b_nodes * b.hours, 4)})
        total_hours = sum(b.hours for b in schedule)
        peak = max(blocks, key=lambda b: b["nodes"])
        nodes, ph = peak["nodes"], peak["placeholders"]
    else:
        total_hours = 1.0 if hours is None else hours
        node_hours = nodes * total_hours
    cost = None if node.price is None else node_hours * node.price
    warnings = []
    if memory_limit is not None and k * memory_limit > fit.allocatable_memory:
        warnings.append(
            f"memory limits overcommit a full node: {k} x {format_memory(memory_limit)} = "
            f"{format_memory(k * memory_limit)} > {format_memory(fit.allocatable_memory)} left for users; "
            "if everyone on a node reaches the limit, the kernel kills processes")
    if cpu_limit is not None and cpu_limit > fit.allocatable_cpu:
        warnings.append(f"the CPU limit {cpu_limit:g} is more than a node has for users "
                        f"({fit.allocatable_cpu:.2f}); it will never be reached")
    if hours is None and schedule is None:
        warnings.append("no --hours or --schedule: node-hours and cost are for one hour")
    if node.price is None:
        warnings.append("no price for this node: give --price PER_NODE_HOUR for the cost")
    leftover_mem = fit.allocatable_memory - k * memory
    leftover_cpu = fit.allocatable_cpu - k * cpu
    return {
        "users": users,
        "node": {"name": node.name, "provider": node.provider, "cpu": node.cpu, "memory_gib": node.memory / GIB,
                 "price": node.price, "currency": node.currency, "prices_read": node.prices_read or None,
                 "source": node.source or None},
        "guarantee": {"cpu": cpu, "memory_gib": _r(memory / GIB)},
        "limit": {"cpu": cpu_limit, "memory_gib": None if memory_limit is None else _r(memory_limit / GIB)},
        "overheads_per_node": {
            "system": {"cpu": _r(overheads.system_cpu), "memory_gib": _r(overheads.system_memory / GIB)},
            "daemonsets": {"cpu": _r(overheads.daemonset_cpu), "memory_gib": _r(overheads.daemonset_memory / GIB)},
            "hub": {"cpu": _r(overheads.hub_cpu), "memory_gib": _r(overheads.hub_memory / GIB)},
        },
        "allocatable_per_node": {"cpu": _r(fit.allocatable_cpu), "memory_gib": _r(fit.allocatable_memory / GIB)},
        "users_per_node": k,
        "users_per_node_by": {"cpu": fit.by_cpu, "memory": fit.by_memory},
        "limited_by": fit.limited_by,
        "unused_per_full_node": {"cpu": _r(leftover_cpu), "memory_gib": _r(leftover_mem / GIB)},
        "headroom_percent": None if placeholders is not None else headroom_percent,
        "placeholders": ph,
        "nodes_for_users": nodes_for(users, k) if users else 0,
        "nodes": nodes,
        "hours": round(total_hours, 4),
        "schedule": blocks or None,
        "node_hours": round(node_hours, 4),
        "cost": None if cost is None else round(cost, 2),
        "currency": node.currency,
        "warnings": warnings,
    }


def _table(rows: list[tuple], header: tuple | None = None, left: tuple = (0,)) -> list[str]:
    rows = ([header] if header else []) + rows
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [str(c).ljust(w) if i in left else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def render_plan(plan: dict) -> str:
    n, ov, al = plan["node"], plan["overheads_per_node"], plan["allocatable_per_node"]
    g = plan["guarantee"]
    price = f"{n['price']:g} {n['currency']}/node-hour" if n["price"] is not None else "no price"
    read = f", prices read {n['prices_read']}" if n.get("prices_read") and n["price"] is not None else ""
    lines = [f"Plan: {plan['users']} users on {n['name']} ({n['cpu']:g} CPU, {n['memory_gib']:.1f} GiB, {price}{read})", ""]
    by = plan["users_per_node_by"]
    lines += _table([
        ("node", format_cpu(n["cpu"]), f"{n['memory_gib']:.1f} GiB", ""),
        ("- system (kubelet, OS)", format_cpu(ov["system"]["cpu"]), format_memory(ov["system"]["memory_gib"] * GIB),
         "--system-cpu/--system-memory"),
        ("- daemonsets", format_cpu(ov["daemonsets"]["cpu"]), format_memory(ov["daemonsets"]["memory_gib"] * GIB),
         "--daemonset-cpu/--daemonset-memory"),
        ("- hub and proxy", format_cpu(ov["hub"]["cpu"]), format_memory(ov["hub"]["memory_gib"] * GIB),
         "--hub-cpu/--hub-memory"),
        ("= left for users", format_cpu(al["cpu"]), format_memory(al["memory_gib"] * GIB), ""),
        ("per user (guarantee)", format_cpu(g["cpu"]), format_memory(g["memory_gib"] * GIB), ""),
        ("users that fit", "-" if by["cpu"] is None else str(by["cpu"]), str(by["memory"]), ""),
    ], ("per node", "CPU", "memory", "change with"), left=(0, 3))
    lines.append("")
    headroom = (f"{plan['headroom_percent']:g}% headroom" if plan["headroom_percent"] is not None
                else "--placeholders")
    cost = "-" if plan["cost"] is None else f"{plan['cost']:,.2f} {plan['currency']}"
    summary = [
        ("users per node", f"{plan['users_per_node']} (limited by {plan['limited_by']})"),
        ("nodes for the users", str(plan["nodes_for_users"])),
        ("placeholders for arrivals", f"{plan['placeholders']} ({headroom})"),
        ("nodes", str(plan["nodes"])),
        ("hours", f"{plan['hours']:g}" + (" (schedule)" if plan["schedule"] else "")),
        ("node-hours", f"{plan['node_hours']:g}"),
        ("cost", cost),
    ]
    lines += _table(summary, left=(0, 1))
    if plan["schedule"]:
        lines.append("")
        lines += _table([(b["start"], b["end"], b["users"], b["placeholders"], b["nodes"], f"{b['hours']:g}",
                          f"{b['node_hours']:g}") for b in plan["schedule"]],
                        ("start", "end", "users", "placeholders", "nodes", "hours", "node-hours"), left=(0, 1))
    for w in plan["warnings"]:
        lines.append(f"note: {w}")
    return "\n".join(lines) + "\n"


# --- after the event: usage export -------------------------------------------------------

def render_usage(report: dict) -> str:
    cost = "-" if report["cost"] is None else f"{report['cost']:,.2f} {report['currency']}"
    lines = [f"Usage from {report['file']}: {report['first'] or '-'} to {report['last'] or '-'}", ""]
    lines += _table([
        ("sessions", f"{report['sessions']} ({report['open_sessions']} still open, counted to the end)"),
        ("users", str(report["users"])),
        ("server-hours", f"{report['server_hours']:g}"),
        ("peak servers", f"{report['peak_servers']}" + (f" at {report['peak_at']}" if report["peak_at"] else "")),
        ("users per node", f"{report['users_per_node']}" + (f" ({report['node']})" if report.get("node") else "")),
        ("peak nodes", str(report["peak_nodes"])),
        ("node-hours", f"{report['node_hours']:g}"),
        ("cost", cost),
    ], left=(0, 1))
    lines.append("note: node-hours assume nodes packed full and removed when empty; add your core/hub nodes.")
    return "\n".join(lines) + "\n"


# --- command line ------------------------------------------------------------------------

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
        "Memory sizes use JupyterHub's binary units (7G = 7 GiB); CPU in cores (1.75) or millicores (500m).")
    what = parser.add_argument_group("users")
    what.add_argument("--users", type=int, help="participants using the hub at the same time (plus instructors)")
    what.add_argument("--cpu", type=_cpu_arg, help="CPU guarantee per user, e.g. 1.75 (KubeSpawner cpu_guarantee)")
    what.add_argument("--memory", type=_memory_arg, metavar="GUARANTEE",
                      help="memory guarantee per user, e.g. 7G (KubeSpawner mem_guarantee)")
    what.add_argument("--cpu-limit", type=_cpu_arg, metavar="L", help="CPU limit per user (checked, reported)")
    what.add_argument("--memory-limit", type=_memory_arg, metavar="L",
                      help="memory limit per user (warns when a full node would overcommit)")

    node = parser.add_argument_group("node")
    node.add_argument("--node", metavar="TYPE", help="node type from the catalogue (see --list-nodes)")
    node.add_argument("--node-cpu", type=_cpu_arg, help="any machine: its vCPUs (also overrides --node's)")
    node.add_argument("--node-memory", type=_memory_arg, help="any machine: its memory, e.g. 128G")
    node.add_argument("--price", type=float, metavar="PER_NODE_HOUR", help="price of one node-hour (overrides the catalogue)")
    node.add_argument("--currency", help="currency of --price (default: the catalogue's, or USD)")
    node.add_argument("--catalogue", type=Path, help="another node catalogue YAML (default: the packaged nodes.yaml)")
    node.add_argument("--list-nodes", action="store_true", help="print the catalogue and exit")

    over = parser.add_argument_group(
        "per-node overheads", "subtracted from every node before users are fitted; shown in the table")
    over.add_argument("--system-cpu", type=_cpu_arg, default=None,
                      help="kubelet/OS CPU reserve (default: GKE's tiers, 6%% of the first core, 1%% of the "
                           "second, 0.5%% of the next two, 0.25%% above four)")
    over.add_argument("--system-memory", type=_memory_arg, default=None,
                      help="kubelet/OS memory reserve (default: 6%% of the node's memory + 100 MiB eviction threshold)")
    over.add_argument("--daemonset-cpu", type=_cpu_arg, default=DEFAULT_DAEMONSET_CPU,
                      help="CPU requested by daemonsets on each node: kube-proxy, CNI, CSI, log/metrics agents, "
                           "image puller (default: 0.2)")
    over.add_argument("--daemonset-memory", type=_memory_arg, default="512M", help="memory requested by daemonsets on each node (default: 512M)")
    over.add_argument("--hub-cpu", type=_cpu_arg, default=DEFAULT_HUB_CPU, help="CPU kept for the hub and proxy on each node (default: 0)")
    over.add_argument("--hub-memory", type=_memory_arg, default="128M",
                      help="memory kept for the hub and proxy on each node (default: 128M, the Jetstream guide's "
                           "budget; 0 when they run on separate core nodes)")

    when = parser.add_argument_group("event")
    times = when.add_mutually_exclusive_group()
    times.add_argument("--hours", type=float, metavar="H", help="length of the event in hours (default: cost of one hour)")
    times.add_argument("--schedule", type=Path, metavar="FILE",
                       help="sessions: CSV with header start,end[,users] or a YAML list of {start, end, users}; "
                            "ISO 8601 times with offset; nodes are assumed scaled down between sessions")
    when.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM_PERCENT, metavar="PERCENT",
                      help="user placeholders kept free for arrivals, as a percentage of --users, rounded up (default: 10)")
    when.add_argument("--placeholders", type=int, metavar="N", help="exact number of user placeholders (instead of --headroom)")

    after = parser.add_argument_group("after the event")
    after.add_argument("--from-usage", type=Path, metavar="USAGE_CSV",
                       help="actual node-hours and cost from `usage export` CSV (user,server,profile,started,stopped,...)")
    after.add_argument("--users-per-node", type=int, metavar="K",
                       help="with --from-usage: users per node (default: computed from --node, --cpu and --memory)")

    parser.add_argument("--format", choices=("table", "json"), default="table", help="output (default: table)")


def _resolve_node(args, catalogue: Catalogue) -> NodeType:
    if args.node and args.node in catalogue.nodes:
        node = catalogue.nodes[args.node]
        changes = {}
        if args.node_cpu is not None:
            changes["cpu"] = args.node_cpu
        if args.node_memory is not None:
            changes["memory"] = args.node_memory
        if changes:
            node = NodeType(**{**asdict(node), **changes, "provider": node.provider + " (modified)"})
    elif args.node_cpu is not None and args.node_memory is not None:
        node = NodeType(args.node or "custom", args.node_cpu, args.node_memory, None, "USD", "custom")
    elif args.node:
        catalogue.get(args.node)  # raises with suggestions
        raise AssertionError
    else:
        raise PlanError("give --node TYPE (see --list-nodes) or describe the machine with --node-cpu and --node-memory")
    if args.price is not None:
        node = NodeType(**{**asdict(node), "price": args.price, "prices_read": ""})
    if args.currency:
        node = NodeType(**{**asdict(node), "currency": args.currency})
    if node.cpu <= 0 or node.memory <= 0:
        raise PlanError("a node needs more than 0 CPU and memory")
    return node


def _overhead_args(args) -> dict:
    return dict(system_cpu=args.system_cpu, system_memory=args.system_memory, daemonset_cpu=args.daemonset_cpu,
                daemonset_memory=args.daemonset_memory, hub_cpu=args.hub_cpu, hub_memory=args.hub_memory)


def _list_nodes(catalogue: Catalogue) -> str:
    rows = [(n.name, n.provider, f"{n.cpu:g}", format_memory(n.memory),
             "-" if n.price is None else f"{n.price:g} {n.currency}") for n in catalogue.nodes.values()]
    lines = _table(rows, ("node", "provider", "CPU", "memory", "per hour"))
    lines.append(f"prices read {catalogue.prices_read}. {catalogue.note}")
    return "\n".join(lines) + "\n"


def run(args, out=None) -> int:
    out = out or sys.stdout
    catalogue = load_catalogue(args.catalogue)
    if args.list_nodes:
        out.write(_list_nodes(catalogue))
        return 0
    if args.from_usage:
        sessions = read_usage_csv(args.from_usage)
        node = None
        if args.users_per_node is not None:
            k = args.users_per_node
            if args.node or (args.node_cpu is not None and args.node_memory is not None):
                node = _resolve_node(args, catalogue)
        else:
            if args.memory is None:
                raise PlanError("--from-usage needs --users-per-node K, or --node with --cpu and --memory")
            node = _resolve_node(args, catalogue)
            ov = overheads_for(node, **_overhead_args(args))
            fit = fit_users(node, ov, args.cpu or 0.0, args.memory)
            if fit.users_per_node < 1:
                raise _impossible(node, ov, fit, args.cpu or 0.0, args.memory, catalogue, _overhead_args(args))
            k = fit.users_per_node
        if args.price is not None:
            price, currency = args.price, args.currency or (node.currency if node else "USD")
        elif node is not None:
            price, currency = node.price, node.currency
        else:
            price, currency = None, args.currency or "USD"
        report = usage_totals(sessions, k)
        report.update(file=str(args.from_usage), users_per_node=k, node=node.name if node else None,
                      price=price, currency=currency,
                      cost=None if price is None else round(report["node_hours"] * price, 2))
        out.write(json.dumps(report, indent=2) + "\n" if args.format == "json" else render_usage(report))
        return 0

    missing = [o for o, v in (("--users", args.users), ("--memory", args.memory)) if v is None]
    if missing:
        raise PlanError(f"missing {' and '.join(missing)} (or use --from-usage)")
    node = _resolve_node(args, catalogue)
    overhead_args = _overhead_args(args)
    schedule = read_schedule(args.schedule, args.users) if args.schedule else None
    plan = make_plan(users=args.users, cpu=args.cpu or 0.0, memory=args.memory, node=node,
                     overheads=overheads_for(node, **overhead_args), cpu_limit=args.cpu_limit,
                     memory_limit=args.memory_limit, hours=args.hours, schedule=schedule,
                     headroom_percent=args.headroom, placeholders=args.placeholders,
                     catalogue=catalogue, overhead_args=overhead_args)
    out.write(json.dumps(plan, indent=2) + "\n" if args.format == "json" else render_plan(plan))
    return 0
