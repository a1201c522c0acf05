"""What every node keeps for itself before any user: the kubelet and OS, daemonsets, the hub.

The defaults are explained in ``nodes.yaml`` and in ``plan --help``; every one can be changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalogue import NodeType
from .quantities import MIB

SYSTEM_MEMORY_FRACTION = 0.06  # GKE's reservation rate for nodes of 16-128 GiB
EVICTION_THRESHOLD = 100 * MIB  # kubelet's default memory.available hard eviction
DEFAULT_DAEMONSET_CPU = 0.2
DEFAULT_DAEMONSET_MEMORY = 512 * MIB
DEFAULT_HUB_CPU = 0.0
DEFAULT_HUB_MEMORY = 128 * MIB  # the Jetstream guide's budget for JupyterHub


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


@dataclass(frozen=True)
class OverheadSettings:
    """The overheads asked for, for any node: the system reserve, when None, follows the node's size."""

    system_cpu: float | None = None
    system_memory: int | None = None
    daemonset_cpu: float = DEFAULT_DAEMONSET_CPU
    daemonset_memory: int = DEFAULT_DAEMONSET_MEMORY
    hub_cpu: float = DEFAULT_HUB_CPU
    hub_memory: int = DEFAULT_HUB_MEMORY

    def for_node(self, node: NodeType) -> Overheads:
        return Overheads(
            system_cpu=default_system_cpu(node.cpu) if self.system_cpu is None else self.system_cpu,
            system_memory=default_system_memory(node.memory)
            if self.system_memory is None
            else self.system_memory,
            daemonset_cpu=self.daemonset_cpu,
            daemonset_memory=self.daemonset_memory,
            hub_cpu=self.hub_cpu,
            hub_memory=self.hub_memory,
        )
