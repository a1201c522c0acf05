"""The hub's spawn limits and timeouts for a crowd arriving at once (pure): what `plan` recommends
and what the chart's hub configuration sets.

When everyone arrives in the first minutes of a session, the number of spawns pending at once is
the arrival rate times how long one spawn takes to be ready (Little's law). On a warm cluster a
spawn takes the pod's start; on a cold one also a node's boot, which is how a 320-person class
ran into Zero to JupyterHub's default limit of 64 pending spawns while 5 nodes booted. The limit
keeps the hub responsive; too low, and people are turned away (429) for 30-60 s at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BURST_MARGIN = 2.0  # arrivals come in clumps (a slide says "log in now"), not evenly
MIN_CONCURRENT = 10
TIMEOUT_MARGIN = 120  # seconds beyond the expected start: a slow image pull, a busy node


@dataclass(frozen=True)
class SpawnLimits:
    concurrent_spawn_limit: int  # JupyterHub.concurrent_spawn_limit (z2jh hub.concurrentSpawnLimit)
    active_server_limit: int  # JupyterHub.active_server_limit (z2jh hub.activeServerLimit)
    start_timeout: int  # seconds; Spawner.start_timeout (z2jh singleuser.startTimeout)
    http_timeout: int  # seconds; Spawner.http_timeout
    arrivals_per_minute: float
    spawn_seconds: float  # how long one spawn is pending
    pending_at_once: float  # arrivals per second x spawn seconds
    people: int = 0  # the crowd the limits are for
    # what set concurrent_spawn_limit: "bursts" (BURST_MARGIN x pending at once), "people" (that
    # capped at the crowd: no more can be pending than there are people) or "minimum"
    concurrent_from: str = "bursts"

    @property
    def burst_spawns(self) -> int:
        """Pending spawns at once with the burst margin, before the cap and the minimum."""
        return math.ceil(BURST_MARGIN * self.pending_at_once)


def spawn_limits(
    people: int,
    arrival_minutes: float,
    pod_start_seconds: float,
    node_boot_minutes: float,
    prewarmed: bool,
    capacity: int,
) -> SpawnLimits:
    """Limits for ``people`` arriving over ``arrival_minutes``; ``capacity`` is how many servers
    the planned nodes hold (beyond it a server would wait for a node anyway)."""
    if people < 0 or arrival_minutes <= 0 or pod_start_seconds < 0 or node_boot_minutes < 0:
        raise ValueError(
            "people, pod start and node boot cannot be negative; arrivals need more than 0 minutes"
        )
    spawn_seconds = pod_start_seconds + (0 if prewarmed else 60 * node_boot_minutes)
    per_minute = people / arrival_minutes
    pending = per_minute / 60 * spawn_seconds
    burst = math.ceil(BURST_MARGIN * pending)
    concurrent = min(max(people, MIN_CONCURRENT), max(MIN_CONCURRENT, burst))
    if concurrent == burst:
        concurrent_from = "bursts"
    elif concurrent < burst:
        concurrent_from = "people"
    else:
        concurrent_from = "minimum"
    return SpawnLimits(
        concurrent_spawn_limit=concurrent,
        active_server_limit=max(capacity, people),
        start_timeout=math.ceil(spawn_seconds + TIMEOUT_MARGIN),
        http_timeout=max(60, math.ceil(2 * pod_start_seconds)),
        arrivals_per_minute=per_minute,
        spawn_seconds=spawn_seconds,
        pending_at_once=pending,
        people=people,
        concurrent_from=concurrent_from,
    )
