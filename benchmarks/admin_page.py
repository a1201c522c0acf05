"""Benchmark: the admin page's charts over a long record (a year of one-minute samples).

    .venv/bin/python benchmarks/admin_page.py [--days 365] [--sessions 200000]

Setup (not timed) fills a temporary SQLite usage store. Then, in this process:

* ours: what the admin page does per page load: the samples reduced to the peaks of 300 time
  slices by the database (``UsageStore.sample_peaks``, GROUP BY slice), the duration
  histogram counted by the database (``UsageStore.duration_histogram``, GROUP BY bucket),
  the culls so far (``UsageStore.culls_by_reason``, from the sessions a cull closed), the last
  pass's time, and the running servers' table with each server's memory and CPU (400 servers,
  sorted by memory, those near their limit counted). Each load follows a new sample and a
  session that ended, as if a pass had just run (the peaks and the histogram are kept while
  the record does not change: a reload before the next pass, the ``reload`` line, does not
  reduce the record again);
* baseline: every sample loaded as a list and drawn at full resolution, and every session
  duration loaded as a list for the histogram (what the page did before).

Each prints seconds per page load, the Python heap's peak (tracemalloc, measured in a separate
untimed pass) and the size of the SVG sent. Goal: a page load <= 0.4 s and <= 20 MB of heap on a
year of samples; the last line prints the ratios.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import random
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyterhub_workshop import charts  # noqa: E402
from jupyterhub_workshop.service import resources  # noqa: E402
from jupyterhub_workshop.service.metrics import SESSION_BUCKETS  # noqa: E402
from jupyterhub_workshop.service.store import UsageStore, samples_table, sessions  # noqa: E402
from jupyterhub_workshop.service.web import CHART_POINTS, ServerRow, with_usage  # noqa: E402

GOAL_SECONDS = 0.4  # issue 17: with each server's memory and CPU
GOAL_HEAP_MB = 20.0
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def fill(store: UsageStore, minutes: int, session_count: int) -> None:
    rng = random.Random(7)
    with store.engine.begin() as conn:
        for first in range(0, minutes, 50_000):
            conn.execute(
                samples_table.insert(),
                [
                    {
                        "at": T0 + timedelta(minutes=m),
                        "active_users": rng.randint(0, 300),
                        "running_servers": rng.randint(0, 400),
                    }
                    for m in range(first, min(first + 50_000, minutes))
                ],
            )
        for first in range(0, session_count, 50_000):
            rows = []
            for i in range(first, min(first + 50_000, session_count)):
                started = T0 + timedelta(seconds=90 * i)
                rows.append(
                    {
                        "username": f"ws{i % 400:03d}",
                        "server_name": "",
                        "profile": None,
                        "started": started,
                        "stopped": started + timedelta(seconds=rng.randint(60, 30000)),
                        "stop_reason": "idle",
                    }
                )
            conn.execute(sessions.insert(), rows)


SERVERS = 400


def servers_table() -> tuple[list[ServerRow], resources.Resources]:
    """The running servers' rows and their memory and CPU, as the page gets them."""
    rng = random.Random(11)
    rows = [ServerRow(f"ws{i:03d}", "", None, T0, T0, "running", None, False) for i in range(SERVERS)]
    usage = {
        (r.user, ""): resources.Usage(rng.randint(100, 2048) * 2**20, 2 * 2**30, rng.random()) for r in rows
    }
    return rows, resources.Resources(usage)


TABLE = servers_table()
POOL = concurrent.futures.ThreadPoolExecutor(1)


def ours(store: UsageStore) -> int:
    store.sample_span()  # the page's "as of the last pass"
    rows = with_usage(TABLE[0], TABLE[1], "memory")
    near = resources.count_near_limit(r.usage for r in rows)
    cells = sum(len(resources.memory_text(r.usage)) + len(resources.cpu_text(r.usage)) for r in rows)
    # the page's two reductions side by side, as its handler runs them (two executor threads)
    peaks_now = POOL.submit(store.sample_peaks, CHART_POINTS)
    durations = store.duration_histogram([*SESSION_BUCKETS, math.inf])
    peaks = peaks_now.result()
    culls = store.culls_by_reason()
    svg = charts.line_chart("Active users", [(at, v[0]) for at, v in peaks])
    svg += charts.line_chart("Running servers", [(at, v[1]) for at, v in peaks])
    svg += charts.bar_chart("Session durations", charts.duration_bars(durations))
    return len(svg) + len(culls) + near + cells


def baseline(store: UsageStore) -> int:
    samples = store.samples()
    durations = list(store.session_durations())
    culls: dict[str, int] = {}
    for session in store.iter_sessions():  # every session read to count the culls
        if session.stop_reason in ("idle", "night", "max-age"):
            culls[session.stop_reason] = culls.get(session.stop_reason, 0) + 1
    svg = charts.line_chart("Active users", [(s.at, s.active_users) for s in samples])
    svg += charts.line_chart("Running servers", [(s.at, s.running_servers) for s in samples])
    counts = [0] * 10
    for seconds in durations:  # the old fixed buckets, counted from the list
        counts[min(9, int(seconds // 3600))] += 1
    svg += charts.bar_chart("Session durations", [(str(i), c) for i, c in enumerate(counts)])
    return len(svg) + len(culls)


def measure(name: str, page, prepare=lambda: None) -> tuple[float, float, int]:
    """Seconds per load (the median of 3), the heap's peak and the size; ``prepare`` runs
    untimed before each load."""
    page()  # warm caches (statement compilation, imports)
    times = []
    for _ in range(3):
        prepare()
        began = time.perf_counter()
        size = page()
        times.append(time.perf_counter() - began)
    prepare()
    tracemalloc.start()
    page()
    heap = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    seconds = sorted(times)[1]
    print(f"{name:9} {seconds:6.2f} s per page load, heap peak {heap:7.1f} MB, SVG {size / 1024:8.0f} KiB")
    return seconds, heap, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sessions", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = UsageStore(f"sqlite:///{tmp}/usage.sqlite")
        began = time.perf_counter()
        fill(store, args.days * 1440, args.sessions)
        print(
            f"setup: {args.days * 1440:,} samples, {args.sessions:,} sessions in {time.perf_counter() - began:.0f} s (not timed)"
        )
        began = time.perf_counter()
        store.culls_by_reason(), store.node_seconds(40)
        print(
            f"service start-up: culls and node-seconds so far summed by the database in "
            f"{time.perf_counter() - began:.2f} s (no record replayed)"
        )
        passes = iter(range(args.days * 1440, 10**9))

        def a_pass():  # one more sample, as each pass records, and a session that ended
            minute = next(passes)
            store.record_sample(T0 + timedelta(minutes=minute), 100, 120)
            store.open_session(f"late{minute}", "", None, T0 + timedelta(minutes=minute - 30))
            store.close_session(f"late{minute}", "", T0 + timedelta(minutes=minute), "idle")

        new = measure("ours", lambda: ours(store), a_pass)
        measure("reload", lambda: ours(store))
        old = measure("baseline", lambda: baseline(store))
        store.close()
    met = new[0] <= GOAL_SECONDS and new[1] <= GOAL_HEAP_MB
    print(
        f"ratio ours/baseline: time {new[0] / old[0]:.2f}  heap {new[1] / old[1]:.3f}  SVG {new[2] / old[2]:.3f}   "
        f"(goal: <= {GOAL_SECONDS:g} s and <= {GOAL_HEAP_MB:g} MB: {'met' if met else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
