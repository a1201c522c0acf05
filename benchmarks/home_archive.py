"""Archive and verify N homes (default 20 of ~10 MiB: notebooks, CSV, binary data, many small
files), as `homes archive` does to a directory; then a second run, which must skip them all.

Baseline in the same run: GNU tar + gzip (level 6, as ours; `tar -czf`, one pass, nothing verified) over the
same homes, so the ratio shows what reading back and comparing every archive costs.

    .venv/bin/python benchmarks/home_archive.py [--homes 20] [--mib 10]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyterhub_workshop.homes import archive  # noqa: E402
from jupyterhub_workshop.homes.destinations import Directory  # noqa: E402


def make_home(home: Path, mib: int, rng: random.Random) -> int:
    """About ``mib`` MiB: half compressible text (CSV, notebooks), half random bytes, 200 small files."""
    (home / "data").mkdir(parents=True)
    (home / "notebooks").mkdir()
    written = 0
    rows = "\n".join(f"{i},{rng.random():.6f},{rng.choice('abcdef')}" for i in range(20000)) + "\n"
    while written < mib * 2**19:
        path = home / "data" / f"table {written}.csv"
        path.write_text(rows)
        written += len(rows)
    blob = rng.randbytes(mib * 2**19)
    (home / "data" / "model.bin").write_bytes(blob)
    written += len(blob)
    for i in range(200):
        (home / "notebooks" / f"étude {i}.ipynb").write_text(f'{{"cells": [{i}]}}\n')
    (home / "shared").symlink_to("/srv/shared")
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--homes", type=int, default=20)
    parser.add_argument("--mib", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(19)
    with tempfile.TemporaryDirectory() as tmp:
        root, dest, base = Path(tmp) / "homes", Path(tmp) / "archive", Path(tmp) / "baseline"
        dest.mkdir()
        base.mkdir()
        total = sum(make_home(root / f"claim-user{i:03d}", args.mib, rng) for i in range(args.homes))
        homes = archive.homes_in(root)

        started = time.perf_counter()
        for home in homes:
            subprocess.run(
                ["tar", "-czf", str(base / f"{home.name}.tar.gz"), "-C", str(root), home.name],
                check=True,
            )  # gzip's default level, 6, as ours
        baseline = time.perf_counter() - started

        with open(os.devnull, "w") as quiet:
            started = time.perf_counter()
            out = archive.archive_homes(homes, Directory(dest), progress_file=quiet, log=lambda _: None)
            ours = time.perf_counter() - started
            started = time.perf_counter()
            again = archive.archive_homes(homes, Directory(dest), progress_file=quiet, log=lambda _: None)
            resumed = time.perf_counter() - started
        assert len(out.archived) == args.homes and not out.failed, out.failed
        assert len(again.skipped) == args.homes and not again.archived
    mib = total / 2**20
    print(f"homes: {args.homes}, data: {mib:.0f} MiB, archives: {out.archive_bytes / 2**20:.0f} MiB")
    print(f"tar -czf (baseline, unverified): {baseline:.1f} s, {mib / baseline:.1f} MiB/s")
    print(f"homes archive (archive + verify): {ours:.1f} s, {mib / ours:.1f} MiB/s")
    print(f"second run (all verified, skipped): {resumed:.2f} s")
    print(f"ratio (homes archive / tar -czf): {ours / baseline:.2f}")


if __name__ == "__main__":
    main()
