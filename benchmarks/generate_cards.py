"""Generate and hash N workshop accounts (default 1,000), as `credentials generate` does.

Baseline in the same run: the same hashing on one thread (extrapolated from a sample), so the
ratio shows what the thread pool buys on this machine. Goal: 1,000 accounts in <= 30 s on 2 cores.

    .venv/bin/python benchmarks/generate_cards.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyterhub_workshop.login.issuing import Batch, generate  # noqa: E402
from jupyterhub_workshop.login.passwords import generate_password, hash_many  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument(
        "--sample", type=int, default=100, help="accounts hashed on one thread for the baseline"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    hash_many([generate_password() for _ in range(args.sample)], workers=1)
    one_thread = (time.perf_counter() - started) / args.sample * args.count

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        generate(Path(tmp), Batch("bench", args.count))
        elapsed = time.perf_counter() - started
    print(
        f"cpus {os.cpu_count()}  one thread (extrapolated) {one_thread:.1f}s  "
        f"generate {args.count} accounts {elapsed:.1f}s ({args.count / elapsed:.0f}/s)"
    )
    print(
        f"ratio generate/one-thread {elapsed / one_thread:.2f}   "
        f"(goal: <= 30 s for 1,000: {'met' if elapsed * 1000 / args.count <= 30 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
