"""What each participant's server used, from jupyter-resource-usage's API (pure).

``GET {server}/api/metrics/v1`` answers ``{"rss": bytes, "limits": {"memory": {"rss": bytes}},
"cpu_percent": ...}`` (CPU only with ``ResourceUseDisplay.track_cpu_percent``); rss is the
server's and all its children's (the kernels'); the memory limit comes from ``MEM_LIMIT``, which
spawners set from ``mem_limit`` (0: none). Per kernel,
``GET {server}/api/metrics/v1/kernel_usage/get_usage/{kernel_id}`` answers the kernel's own
``usage_reply`` (``content.kernel_memory``). The participant samples; these functions read the
answers and reduce a participant's samples to peaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

METRICS_PATH = "api/metrics/v1"
NEAR_LIMIT = 0.9  # a peak at 90 % of the limit or more is flagged "near the limit"
MISSING = (
    "jupyter-resource-usage is not installed on the single-user servers (GET /api/metrics/v1 "
    "answered HTTP {status}): no memory or CPU was measured; add it to the image"
)


@dataclass(frozen=True)
class Metrics:
    rss: int
    cpu_percent: float | None  # None: track_cpu_percent is off
    limit: int | None  # None: no memory limit


def parse_metrics(body: dict) -> Metrics:
    """One ``/api/metrics/v1`` answer. ValueError when it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("rss"), int | float):
        raise ValueError(f"not a jupyter-resource-usage answer: {str(body)[:120]}")
    limit = ((body.get("limits") or {}).get("memory") or {}).get("rss") or 0
    cpu = body.get("cpu_percent")
    return Metrics(int(body["rss"]), None if cpu is None else float(cpu), int(limit) or None)


def parse_kernel_usage(body: dict) -> int | None:
    """A kernel's own memory from a ``kernel_usage`` answer; None when not supported or timed out."""
    content = (body or {}).get("content") or {}
    memory = content.get("kernel_memory")
    return int(memory) if isinstance(memory, int | float) else None


@dataclass
class Usage:
    """A participant's samples: (seconds, rss, cpu percent or None, kernel rss or None, cell key or None)."""

    samples: list[tuple[float, int, float | None, int | None, str | None]] = field(default_factory=list)
    limit: int | None = None

    def add(self, t: float, m: Metrics, kernel_rss: int | None, cell: str | None) -> None:
        self.samples.append((round(t, 3), m.rss, m.cpu_percent, kernel_rss, cell))
        if m.limit:
            self.limit = m.limit

    def summary(self) -> dict | None:
        """Peaks over the run, CPU in cores (100 % = one core), and the limit verdict; None
        without samples."""
        if not self.samples:
            return None
        peak = max(s[1] for s in self.samples)
        cpus = [s[2] for s in self.samples if s[2] is not None]
        kernels = [s[3] for s in self.samples if s[3] is not None]
        return {
            "samples": len(self.samples),
            "peak_memory": peak,
            "peak_kernel_memory": max(kernels) if kernels else None,
            "peak_cpu": round(max(cpus) / 100, 3) if cpus else None,
            "mean_cpu": round(sum(cpus) / len(cpus) / 100, 3) if cpus else None,
            "memory_limit": self.limit,
            "near_limit": bool(self.limit and peak >= NEAR_LIMIT * self.limit),
            "hit_limit": bool(self.limit and peak >= self.limit),
        }

    def peak_by_cell(self) -> dict[str, int]:
        """The highest memory seen while each cell ran or right after it (until the next began)."""
        peaks: dict[str, int] = {}
        for _, rss, _, _, cell in self.samples:
            if cell is not None and rss > peaks.get(cell, -1):
                peaks[cell] = rss
        return peaks
