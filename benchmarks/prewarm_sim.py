"""Benchmark (a simulation: this machine has no autoscaler): time to a server for a crowd that
arrives at the start of a session, on a cluster that is cold, pre-warmed by the workshop service,
kept warm by z2jh's static user placeholders of the same cost, or warm all day.

    .venv/bin/python benchmarks/prewarm_sim.py [--boot 5] [--pod-start 20] [--spawn-limit 64]

A discrete-event model, one-second ticks, over one day with a session from 09:00 to 17:00:

* arrivals: a crowd at the session's start (e.g. 320 people in 10 minutes; the ICESat-2
  hackweek's 80 over 30 minutes), everyone leaves at 17:00 (the night cull or a logout);
* the hub: at most ``--spawn-limit`` spawns pending at once (z2jh's 64); beyond it a spawn is
  refused (429) and retried after 30-60 s (JupyterHub's ``spawn_throttle_retry_range``);
* the cluster: a user pod starts ``--pod-start`` seconds after it is placed on a ready node; a
  node takes ``--boot`` minutes from request to ready (the hackweek's 5); the autoscaler looks
  every 10 s, adds nodes for pending pods and removes nodes empty for 10 minutes, down to the
  cluster's minimum; placeholders (node-sized, low priority) are preempted by user pods;
* pre-warm: the workshop service's decision (``jupyterhub_workshop.schedule``, the same code),
  evaluated every 60 s: node-sized placeholders for the expected people without a server, from
  20 minutes before the start until 30 minutes after it.

Printed per scenario: time to server p50/p95/max and node-hours over the day, per strategy. The
last line: pre-warm's p95 against a warm cluster's (goal <= 1.5x) and its node-hours against a
cold cluster's (goal <= +10%).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyterhub_workshop.schedule import Schedule, placeholders_for, warm_users  # noqa: E402
from jupyterhub_workshop.wording import count  # noqa: E402

DAY = 24 * 3600
SESSION_START, SESSION_END = 9 * 3600, 17 * 3600
MIDNIGHT = datetime(2026, 7, 14, tzinfo=UTC)
SCHEDULE = Schedule.parse(
    {"timeZone": "UTC", "sessions": [{"days": ["2026-07-14"], "start": "09:00", "end": "17:00"}]}
)


@dataclass(frozen=True)
class Scenario:
    name: str
    people: int
    arrival_minutes: float  # spread of the arrivals after the session starts
    users_per_node: int
    min_nodes: int  # what the cold cluster keeps up


SCENARIOS = (
    Scenario("320 people in 10 minutes, 48 per node (a class)", 320, 10, 48, 2),
    Scenario("80 people over 30 minutes, 4 per node (ICESat-2 hackweek)", 80, 30, 4, 1),
)


@dataclass
class Node:
    requested: int  # second of the day
    ready: int
    users: int = 0
    placeholder: bool = False
    empty_since: int | None = None


@dataclass
class Cluster:
    scenario: Scenario
    boot: int
    pod_start: int
    spawn_limit: int
    nodes: list[Node] = field(default_factory=list)
    placeholders_wanted: int = 0
    pending_users: list[int] = field(default_factory=list)  # arrival seconds, FIFO
    starting: list[tuple[int, int]] = field(default_factory=list)  # (ready at, arrival)
    pending_spawns: int = 0
    node_seconds: int = 0
    waits: list[int] = field(default_factory=list)

    def ready_nodes(self, now):
        return [n for n in self.nodes if n.ready <= now]

    def running_users(self):
        return sum(n.users for n in self.nodes)

    def place(self, now):
        k = self.scenario.users_per_node
        still = []
        for arrival in self.pending_users:
            ready = self.ready_nodes(now)
            node = next((n for n in ready if not n.placeholder and 0 < n.users < k), None)
            node = node or next((n for n in ready if not n.placeholder and n.users == 0), None)
            if node is None:  # preempt a placeholder: its node is free for users now
                node = next((n for n in ready if n.placeholder), None)
                if node is not None:
                    node.placeholder = False
            if node is None:
                still.append(arrival)
                continue
            node.users += 1
            node.empty_since = None
            self.starting.append((now + self.pod_start, arrival))
        self.pending_users = still
        # placeholders: lower priority, onto empty ready nodes only
        for node in self.ready_nodes(now):
            if self.placeholders_running() >= self.placeholders_wanted:
                break
            if node.users == 0 and not node.placeholder:
                node.placeholder = True
                node.empty_since = None

    def placeholders_running(self):
        return sum(n.placeholder for n in self.nodes)

    def set_placeholders(self, wanted):
        self.placeholders_wanted = wanted
        for node in self.nodes:  # fewer wanted: the Deployment deletes the extra pods
            if self.placeholders_running() <= wanted:
                break
            if node.placeholder:
                node.placeholder = False

    def autoscale(self, now):
        k = self.scenario.users_per_node
        booting = [n for n in self.nodes if n.ready > now]
        need = math.ceil(len(self.pending_users) / k) + max(
            0, self.placeholders_wanted - self.placeholders_running()
        )
        for _ in range(max(0, need - len(booting))):
            self.nodes.append(Node(now, now + self.boot))
        for node in self.ready_nodes(now):
            if node.users == 0 and not node.placeholder:
                node.empty_since = now if node.empty_since is None else node.empty_since
        removable = [
            n for n in self.ready_nodes(now) if n.empty_since is not None and now - n.empty_since >= 600
        ]
        for node in removable:
            if len(self.nodes) > self.scenario.min_nodes:
                self.nodes.remove(node)

    def tick(self, now):
        self.node_seconds += len(self.nodes)
        done = [s for s in self.starting if s[0] <= now]
        for ready_at, arrival in done:
            self.starting.remove((ready_at, arrival))
            self.pending_spawns -= 1
            self.waits.append(now - arrival)


def simulate(scenario: Scenario, strategy: str, args, static_placeholders: int = 0, seed: int = 1) -> dict:
    rng = random.Random(seed)
    k = scenario.users_per_node
    cluster = Cluster(scenario, args.boot * 60, args.pod_start, args.spawn_limit)
    full = math.ceil(scenario.people / k)
    start_nodes = (
        full
        if strategy == "warm"
        else scenario.min_nodes + (static_placeholders if strategy == "static" else 0)
    )
    cluster.nodes = [Node(-1, -1) for _ in range(start_nodes)]
    if strategy == "warm":
        scenario = Scenario(scenario.name, scenario.people, scenario.arrival_minutes, k, full)
        cluster.scenario = scenario
    if strategy == "static":
        cluster.set_placeholders(static_placeholders)
    spread = scenario.arrival_minutes * 60
    arrivals = sorted(SESSION_START + int(rng.random() * spread) for _ in range(scenario.people))
    attempts = [(t, t) for t in arrivals]  # (try at, arrived at)
    for now in range(DAY):
        if strategy == "prewarm" and now % 60 == 0:
            running = cluster.running_users()
            at = MIDNIGHT + timedelta(seconds=now)
            cluster.set_placeholders(placeholders_for(warm_users(SCHEDULE, at, scenario.people, running), k))
        if now == SESSION_END:  # everyone leaves
            for node in cluster.nodes:
                node.users = 0
        retry = []
        while attempts and attempts[0][0] <= now:
            _, arrived = attempts.pop(0)
            if cluster.pending_spawns >= cluster.spawn_limit:  # 429, come back in 30-60 s
                retry.append((now + rng.randint(30, 60), arrived))
                continue
            cluster.pending_spawns += 1
            cluster.pending_users.append(arrived)
        if retry:
            attempts = sorted(attempts + retry)
        cluster.place(now)
        if now % 10 == 0:
            cluster.autoscale(now)
        cluster.tick(now)
    waits = sorted(cluster.waits)
    assert len(waits) == scenario.people, (strategy, len(waits))

    def pct(q):
        return waits[min(len(waits) - 1, int(q * len(waits)))]

    return {"p50": pct(0.5), "p95": pct(0.95), "max": waits[-1], "node_hours": cluster.node_seconds / 3600}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--boot", type=float, default=5, help="minutes a node takes to become ready (default 5)"
    )
    parser.add_argument(
        "--pod-start", type=int, default=20, help="seconds a pod takes on a ready node (default 20)"
    )
    parser.add_argument(
        "--spawn-limit", type=int, default=64, help="the hub's concurrent spawn limit (z2jh: 64)"
    )
    args = parser.parse_args()
    worst_ratio, worst_extra = 0.0, 0.0
    for scenario in SCENARIOS:
        cold = simulate(scenario, "cold", args)
        prewarm = simulate(scenario, "prewarm", args)
        warm = simulate(scenario, "warm", args)
        extra = prewarm["node_hours"] - cold["node_hours"]
        same_cost = max(0, round(extra / 24))  # z2jh's placeholders run all day: this many cost the same
        static = simulate(scenario, "static", args, static_placeholders=same_cost)
        print(
            f"\n{scenario.name} (cold cluster: {count(scenario.min_nodes, 'node')}; node boot {args.boot:g} min, "
            f"pod start {args.pod_start} s, spawn limit {args.spawn_limit})"
        )
        print(f"  {'strategy':34} {'p50':>6} {'p95':>6} {'max':>6}  {'node-hours':>10}  {'vs cold':>8}")
        for label, r in [
            ("cold (autoscaler only)", cold),
            ("pre-warm (workshop service)", prewarm),
            (f"static placeholders x{same_cost} (same cost)", static),
            ("warm all day", warm),
        ]:
            print(
                f"  {label:34} {r['p50']:5d}s {r['p95']:5d}s {r['max']:5d}s  {r['node_hours']:10.1f}  "
                f"{100 * (r['node_hours'] / cold['node_hours'] - 1):+7.1f}%"
            )
        worst_ratio = max(worst_ratio, prewarm["p95"] / warm["p95"])
        worst_extra = max(worst_extra, prewarm["node_hours"] / cold["node_hours"] - 1)
    met = worst_ratio <= 1.5 and worst_extra <= 0.10
    print(
        f"\nratio pre-warm/warm p95 (worst scenario) {worst_ratio:.2f} (goal <= 1.5); node-hours pre-warm/cold "
        f"{1 + worst_extra:.3f} (goal <= 1.10): {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
