"""Benchmark: stream 1,000,000 recorded sessions to CSV through ``usage.export()``.

    .venv/bin/python benchmarks/usage_export.py [--rows 1000000] [--db PATH] [--no-tracemalloc]

Setup (not timed) fills a temporary SQLite usage store in one bulk transaction. Each
measurement then runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its own:

* export: ``export(url, "csv", sink)`` into /dev/null: keyset pages of 5000 rows, times as
  aware datetimes (the same path on SQLite and PostgreSQL), CSV written 1000 rows a chunk;
* baseline: ``csv.writer`` over a plain ``SELECT *`` ``fetchall()`` with the stdlib ``sqlite3``
  (fast, but holds every row in memory and writes the stored values untouched);
* optionally export again under tracemalloc (not timed) for the Python heap's peak.

Goals: export <= 10 s and <= 200 MB peak RSS. The last line prints the ratios and whether the
goals are met.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

GOAL_SECONDS = 10.0
GOAL_RSS_MB = 200.0
USERS = 400


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class RSSSampler(threading.Thread):
    """Peak RSS seen every 10 ms (a cross-check of ru_maxrss)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = rss_mb()
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(0.01):
            self.peak = max(self.peak, rss_mb())

    def stop(self) -> float:
        self._done.set()
        self.join()
        self.peak = max(self.peak, rss_mb())
        return self.peak


def fill(url: str, rows: int) -> None:
    """``rows`` sessions: 400 users, some named servers and quoted profiles, the last 400 open."""
    from jupyterhub_workshop.service.store import UsageStore, sessions

    rng = random.Random(42)
    t0 = datetime(2024, 1, 1, 8, tzinfo=UTC)
    profiles = ["small", "large", 'gpu, "a100"', None]
    reasons = ["idle", "night", "max-age", "user", "unknown"]
    store = UsageStore(url)
    batch = 50_000
    with store.engine.begin() as conn:  # one transaction: the bulk-insert fast path
        for first in range(0, rows, batch):
            values = []
            for i in range(first, min(first + batch, rows)):
                started = t0 + timedelta(seconds=60 * i)
                still_open = i >= rows - USERS
                values.append(
                    {
                        "username": f"ws-{i % USERS:03d}",
                        "server_name": "gpu" if i % 10 == 7 and not still_open else "",
                        "profile": profiles[i % 4],
                        "started": started,
                        "stopped": None
                        if still_open
                        else started + timedelta(seconds=rng.randint(60, 8 * 3600)),
                        "stop_reason": None if still_open else reasons[i % 5],
                    }
                )
            conn.execute(sessions.insert(), values)
    store.close()


def child(kind: str, url: str, path: str) -> dict:
    """One measurement in this (fresh) process; returns the numbers."""
    import csv

    rss_start = rss_mb()
    result: dict = {"kind": kind, "rss_start_mb": rss_start}
    if kind == "export-tracemalloc":
        import tracemalloc

        from jupyterhub_workshop.service.usage import export

        tracemalloc.start()
        with open(os.devnull, "w", encoding="utf-8", newline="") as sink:
            result["rows"] = export(url, "csv", sink)
        result["python_heap_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return result

    if kind == "export":
        from jupyterhub_workshop.service.usage import export
    else:
        import sqlite3
    result["rss_start_mb"] = rss_start = rss_mb()  # after imports
    sampler = RSSSampler()
    sampler.start()
    began = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8", newline="") as sink:
        if kind == "export":
            result["rows"] = export(url, "csv", sink)
        else:
            conn = sqlite3.connect(path)
            everything = conn.execute("SELECT * FROM workshop_sessions").fetchall()
            writer = csv.writer(sink, lineterminator="\n")
            writer.writerow(
                [d[0] for d in conn.execute("SELECT * FROM workshop_sessions LIMIT 0").description]
            )
            writer.writerows(everything)
            result["rows"] = len(everything)
            conn.close()
    result["seconds"] = time.perf_counter() - began
    result["rss_peak_sampled_mb"] = sampler.stop()
    result["maxrss_mb"] = maxrss_mb()
    return result


def run_child(kind: str, url: str, path: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--db", path], capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(f"{kind} run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def metrics_scrape_ms() -> float:
    """Render the service's Prometheus text as a scrape would: aggregates only, so the cost
    does not grow with users (no per-user series)."""
    import random
    import statistics

    from jupyterhub_workshop.service.metrics import WorkshopMetrics

    metrics = WorkshopMetrics(price_per_node_hour=0.384)
    metrics.load({"idle": 1200, "night": 3500, "max-age": 10}, node_seconds=812.5 * 3600)
    for _ in range(20_000):
        metrics.session_closed(random.uniform(60, 43200), random.choice(["idle", "night", "user"]))
    metrics.active_users.set(5000)
    times = []
    for _ in range(200):
        began = time.perf_counter()
        metrics.render()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", help="SQLite file to use (kept); default: a temporary one")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the untimed tracemalloc pass")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "fill":
        fill(f"sqlite:///{args.db}", args.rows)
        return
    if args.child:
        print(json.dumps(child(args.child, f"sqlite:///{args.db}", args.db)))
        return

    with tempfile.TemporaryDirectory(prefix="usage-export-") as tmp:
        path = args.db or str(Path(tmp) / "usage.sqlite")
        url = f"sqlite:///{path}"
        if not (args.db and Path(path).exists()):
            began = time.perf_counter()
            # in a child too: this process stays small, so the children's ru_maxrss is theirs
            subprocess.run(
                [sys.executable, __file__, "--child", "fill", "--rows", str(args.rows), "--db", path],
                check=True,
            )
            print(
                f"setup: {args.rows:,} sessions inserted in {time.perf_counter() - began:.1f} s "
                f"({Path(path).stat().st_size / 2**20:.0f} MB SQLite file, not timed)"
            )

        ours = run_child("export", url, path)
        print(
            f"export():  {ours['rows']:,} rows in {ours['seconds']:.2f} s "
            f"({ours['rows'] / ours['seconds']:,.0f} rows/s), peak RSS {ours['maxrss_mb']:.0f} MB "
            f"(sampled {ours['rss_peak_sampled_mb']:.0f} MB, {ours['rss_start_mb']:.0f} MB after imports)"
        )
        base = run_child("baseline", url, path)
        print(
            f"baseline:  {base['rows']:,} rows in {base['seconds']:.2f} s "
            f"({base['rows'] / base['seconds']:,.0f} rows/s), peak RSS {base['maxrss_mb']:.0f} MB "
            f"(sampled {base['rss_peak_sampled_mb']:.0f} MB, {base['rss_start_mb']:.0f} MB after imports)"
            f"  [sqlite3 fetchall + csv.writer, raw stored values]"
        )
        if not args.no_tracemalloc:
            traced = run_child("export-tracemalloc", url, path)
            print(f"export() Python heap peak (tracemalloc, untimed): {traced['python_heap_peak_mb']:.1f} MB")

    scrape_ms = metrics_scrape_ms()
    print(
        f"metrics scrape (5,000 users, 2,000 running, 20,000 sessions observed): {scrape_ms:.2f} ms "
        f"median of 200 (goal <= 100 ms: {'met' if scrape_ms <= 100 else 'NOT met'})"
    )
    met = ours["seconds"] <= GOAL_SECONDS and ours["maxrss_mb"] <= GOAL_RSS_MB
    print(
        f"ratio export/baseline: time {ours['seconds'] / base['seconds']:.2f}x, "
        f"peak RSS {ours['maxrss_mb'] / base['maxrss_mb']:.2f}x; "
        f"goals (<= {GOAL_SECONDS:.0f} s, <= {GOAL_RSS_MB:.0f} MB): {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
