"""The node catalogue (``nodes.yaml``): machine sizes and on-demand prices by name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import PlanError
from .quantities import parse_cpu, parse_memory

CATALOGUE_PATH = Path(__file__).parent / "nodes.yaml"


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

    @property
    def family(self) -> str:
        """``m5`` of ``m5.2xlarge``, ``n2-standard`` of ``n2-standard-8``."""
        return self.name.rsplit(".", 1)[0] if "." in self.name else self.name.rsplit("-", 1)[0]


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
                name=str(entry["name"]),
                cpu=parse_cpu(entry["cpu"]),
                memory=parse_memory(entry["memory"]),
                price=None if entry.get("price") is None else float(entry["price"]),
                currency=str(entry.get("currency", "USD")),
                provider=str(entry.get("provider", "")),
                source=str(entry.get("source", "")),
                prices_read=str(entry.get("prices_read", prices_read)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: node entry {i}: {e}") from None
        if node.name in nodes:
            raise ValueError(f"{path}: node {node.name} listed twice")
        nodes[node.name] = node
    return Catalogue(nodes, prices_read, str(data.get("note", "")).strip())
