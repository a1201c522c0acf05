"""Each server's memory and CPU on the admin page: the pure decisions.

What a server uses (:class:`Usage`), whether it is near its memory limit (:func:`near_limit`,
at :data:`NEAR_LIMIT` of it: an instructor walks over before the kernel dies), how the table
sorts by memory (:func:`memory_order`), and how the numbers read. Where they come from (the
metrics API on Kubernetes, the process tree on the local twin) is :mod:`.resource_sources`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..rehearsal.plan.quantities import format_memory, kube_quantity

NEAR_LIMIT = 0.9  # a server using this share of its memory limit or more is marked


@dataclass(frozen=True)
class Usage:
    """A server's memory in bytes (``limit`` None when it has none), CPU in cores."""

    memory: int
    limit: int | None
    cpu: float | None

    @property
    def share(self) -> float | None:
        """The share of its memory limit in use (None without a limit)."""
        return self.memory / self.limit if self.limit else None


@dataclass(frozen=True)
class Resources:
    """What the page knows of the servers' resources: ``usage`` by (user, server name), and
    ``error``, a sentence saying why there are no numbers (no metrics-server, refused)."""

    usage: dict
    error: str = ""


def near_limit(usage: Usage | None, threshold: float = NEAR_LIMIT) -> bool:
    """Whether a server uses ``threshold`` of its memory limit or more (never without a limit)."""
    return bool(usage and usage.limit and usage.memory >= threshold * usage.limit)


def count_near_limit(usages, threshold: float = NEAR_LIMIT) -> int:
    return sum(near_limit(u, threshold) for u in usages)


def memory_order(usage: Usage | None) -> tuple:
    """A sort key, most pressed first: by share of the memory limit, then bytes; servers with no
    limit after those with one (by bytes); servers without numbers last."""
    if usage is None:
        return (2, 0.0, 0)
    if usage.limit:
        return (0, -usage.share, -usage.memory)
    return (1, 0.0, -usage.memory)


def pod_usage(containers: list[dict]) -> tuple[int, float]:
    """(memory bytes, CPU cores) of a pod: the sum of its containers' ``usage`` in a
    ``metrics.k8s.io`` PodMetrics (``{"cpu": "12m", "memory": "123456Ki"}``)."""
    memory = cpu = 0.0
    for container in containers:
        usage = container.get("usage") or {}
        memory += kube_quantity(usage.get("memory", 0))
        cpu += kube_quantity(usage.get("cpu", 0))
    return int(memory), cpu


def pod_memory_limit(containers: list[dict]) -> int | None:
    """A pod's memory limit: the sum of its containers' limits, None if any has none (then the
    pod as a whole is not limited)."""
    total = 0.0
    for container in containers:
        limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
        if limit is None:
            return None
        total += kube_quantity(limit)
    return int(total) if containers else None


def memory_text(usage: Usage) -> str:
    """``1.2 GiB / 2.0 GiB (60%)``, or just what is used without a limit."""
    used = format_memory(usage.memory)
    if not usage.limit:
        return used
    return f"{used} / {format_memory(usage.limit)} ({usage.share:.0%})"


def cpu_text(usage: Usage) -> str:
    """CPU in cores, two decimals (``0.25``: a quarter of a core); empty when unknown."""
    return "" if usage.cpu is None else f"{usage.cpu:.2f}"
