"""The load test's report: plain functions from per-user results to numbers, text, JSON, CSV.

Nothing here talks to a hub; :mod:`.run` collects :class:`UserResult`
objects and stage transitions, these functions summarize them.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections import Counter
from dataclasses import dataclass, field

from ...wording import count

# the JSON report's format (report.schema.json); a reader checks both before trusting the numbers.
# 2: notebooks, resources and the verdict (with notebooks), schema and version themselves
SCHEMA = "jupyterhub-workshop/loadtest-report"
SCHEMA_VERSION = 2
STEPS = ("login", "spawn", "kernel", "code", "stop")
STAGES = ("waiting", *STEPS, "done", "failed")


@dataclass
class StepError:
    step: str
    kind: str  # short and stable: what errors are grouped by
    detail: str = ""  # the specifics (a message, a status line); one example is shown per group


@dataclass
class CellRun:
    """One cell run by one participant: how long from execute_request to its reply and idle."""

    key: str  # "lesson1.ipynb:7"
    seconds: float
    status: str  # "ok", "error" (the cell raised), "timeout" (interrupted), "died" (the kernel died)
    ename: str = ""
    evalue: str = ""


@dataclass
class UserResult:
    username: str
    times: dict[str, list[float]] = field(default_factory=dict)  # step -> seconds (code: one per iteration)
    error: StepError | None = None
    retries: Counter = field(default_factory=Counter)  # e.g. spawn_throttled, login_busy
    waited: Counter = field(default_factory=Counter)  # seconds spent honouring Retry-After, by the same keys
    started: float | None = None  # seconds from the start of the run: arrival
    finished: float | None = None
    found_running: bool = False  # the card's server ran already (someone uses it): not stopped
    cells: list[CellRun] = field(default_factory=list)  # with notebooks: every cell it ran, in order
    usage: object = None  # with notebooks: a resources.Usage once sampling began
    resources_missing: str | None = None  # why nothing was measured (the extension is missing)

    @property
    def ok(self) -> bool:
        return self.error is None and self.finished is not None

    def record(self, step: str, seconds: float) -> None:
        self.times.setdefault(step, []).append(seconds)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def step_stats(values: list[float], errors: int = 0) -> dict:
    return {
        "count": len(values),
        "errors": errors,
        "p50": _round(percentile(values, 50)),
        "p95": _round(percentile(values, 95)),
        "max": _round(max(values) if values else None),
        "mean": _round(sum(values) / len(values) if values else None),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def group_errors(results: list[UserResult], examples: int = 5) -> list[dict]:
    """Failures grouped by (step, kind), most frequent first, with a few usernames and one detail."""
    groups: dict[tuple[str, str], dict] = {}
    for r in results:
        if r.error is None:
            continue
        key = (r.error.step, r.error.kind)
        g = groups.setdefault(
            key, {"step": key[0], "kind": key[1], "count": 0, "users": [], "example": r.error.detail}
        )
        g["count"] += 1
        if len(g["users"]) < examples:
            g["users"].append(r.username)
    order = {s: i for i, s in enumerate(STEPS)}
    return sorted(groups.values(), key=lambda g: (-g["count"], order.get(g["step"], 99), g["kind"]))


def arrival_offsets(n: int, ramp: float, seed: int | None = 0) -> list[float]:
    """When each of ``n`` participants arrives, spread over ``ramp`` seconds.

    One arrival in each of ``n`` equal slots, at a random point inside its slot (seeded, so a
    rehearsal can be repeated): nobody presses Enter in the same millisecond, and the rate is
    even over the ramp. Sorted; the first is at 0 when ``ramp`` is 0.
    """
    if n <= 0:
        return []
    if ramp <= 0:
        return [0.0] * n
    rng = random.Random(seed)
    slot = ramp / n
    return [i * slot + rng.random() * slot for i in range(n)]


def timeline(
    transitions: list[tuple[float, int, str]], users: int, end: float, max_samples: int = 240
) -> dict:
    """Users per stage over time, sampled evenly from 0 to ``end``.

    ``transitions`` are ``(seconds since start, user index, stage entered)``; every user is in
    ``waiting`` until its first transition.
    """
    end = max(end, 1e-6)
    samples = max(2, min(max_samples, int(end / 0.1) + 1))
    interval = end / (samples - 1)
    ordered = sorted(transitions, key=lambda t: t[0])
    stage_of = ["waiting"] * users
    counts = Counter({"waiting": users})
    rows = []
    i = 0
    for s in range(samples):
        t = s * interval
        while i < len(ordered) and ordered[i][0] <= t + 1e-9:
            _, user, stage = ordered[i]
            counts[stage_of[user]] -= 1
            counts[stage] += 1
            stage_of[user] = stage
            i += 1
        rows.append([round(t, 3)] + [counts[st] for st in STAGES])
    return {"stages": list(STAGES), "interval": round(interval, 4), "samples": rows}


def build_report(
    results: list[UserResult],
    *,
    url: str,
    duration: float,
    settings: dict,
    transitions: list[tuple[float, int, str]] | None = None,
    skipped: list[tuple[str, str]] = (),
) -> dict:
    """The JSON report: totals, per-step statistics, errors by kind, retries, per-user times;
    ``skipped`` are the cards not tried, with why (revoked, outside their window)."""
    failed_at = Counter(r.error.step for r in results if r.error)
    steps = {
        s: step_stats([t for r in results for t in r.times.get(s, [])], failed_at.get(s, 0)) for s in STEPS
    }
    journeys = [r.finished - r.started for r in results if r.ok and r.started is not None]
    retries, waited = Counter(), Counter()
    for r in results:
        retries.update(r.retries)
        waited.update(r.waited)
    report = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "url": url,
        "users": len(results),
        "succeeded": sum(r.ok for r in results),
        "failed": sum(not r.ok for r in results),
        "duration": round(duration, 3),
        "settings": settings,
        "steps": steps,
        "total": step_stats(journeys),
        "errors": group_errors(results),
        "found_running": [r.username for r in results if r.found_running],
        "skipped": [{"username": name, "why": why} for name, why in skipped],
        "retries": dict(sorted(retries.items())),
        "retry_wait_seconds": {k: round(v, 3) for k, v in sorted(waited.items())},
        "per_user": [
            {
                "username": r.username,
                "ok": r.ok,
                "arrived": _round(r.started),
                "finished": _round(r.finished),
                "times": {s: [round(t, 4) for t in ts] for s, ts in r.times.items()},
                "error": None
                if r.error is None
                else {"step": r.error.step, "kind": r.error.kind, "detail": r.error.detail},
                "retries": dict(r.retries),
                "found_running": r.found_running,
            }
            for r in results
        ],
    }
    if transitions is not None:
        report["timeline"] = timeline(transitions, len(results), duration)
    return report


def describe_skipped(skipped: list[tuple[str, str]], examples: int = 5) -> str:
    """The skipped cards grouped by why: 'revoked: demo002; expired at ...: demo004, demo005'."""
    groups: dict[str, list[str]] = {}
    for username, why in skipped:
        groups.setdefault(why, []).append(username)
    return "; ".join(
        f"{why}: {', '.join(names[:examples])}"
        + (f" and {len(names) - examples} more" if len(names) > examples else "")
        for why, names in groups.items()
    )


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}s"


def render_text(report: dict) -> str:
    s = report["settings"]
    if s.get("notebooks"):
        code = "notebooks " + ", ".join(s["notebooks"])
    elif not s.get("code"):
        code = "no kernel"
    else:
        code = f"code {s['code']!r} x{s.get('iterations', 1)}"
    lines = [
        f"Load test of {report['url']}: {report['users']} users, ramp {s.get('ramp', 0):g}s, {code}, "
        f"servers {'stopped (those it started)' if s.get('stop') else 'kept'}; {report['duration']:.1f}s",
        "",
        f"  {'step':8} {'count':>6} {'errors':>6} {'p50':>8} {'p95':>8} {'max':>8}",
    ]
    for name, st in [*report["steps"].items(), ("total", report["total"])]:
        lines.append(
            f"  {name:8} {st['count']:>6} {st['errors']:>6} {_fmt(st['p50']):>8} {_fmt(st['p95']):>8} "
            f"{_fmt(st['max']):>8}"
        )
    lines.append("")
    lines.append(f"  succeeded {report['succeeded']}/{report['users']}, failed {report['failed']}")
    if report.get("skipped"):
        skipped = [(s["username"], s["why"]) for s in report["skipped"]]
        lines.append(
            f"  skipped {count(len(skipped), 'card')} that cannot sign in now, not counted "
            f"({describe_skipped(skipped)})"
        )
    if report.get("found_running"):
        names = report["found_running"]
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        lines.append(
            f"  {count(len(names), 'server')} already running before the test, left running ({shown})"
        )
    if report["retries"]:
        waited = report["retry_wait_seconds"]
        parts = [
            f"{k.replace('_', ' ')} {v}"
            + (f" (waited {waited[k]:.0f}s for Retry-After)" if k in waited else "")
            for k, v in report["retries"].items()
        ]
        lines.append("  retries: " + ", ".join(parts))
    if report["errors"]:
        lines.append("")
        lines.append("errors:")
        for g in report["errors"]:
            more = ", ..." if g["count"] > len(g["users"]) else ""
            lines.append(f"  {g['count']:>4} x {g['step']}: {g['kind']}  ({', '.join(g['users'])}{more})")
            if g["example"]:
                lines.append(f"         e.g. {g['example'][:300]}")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("step", "count", "errors", "p50", "p95", "max", "mean")


def render_csv(report: dict) -> str:
    """One row per step (and ``total``, a participant's whole journey), seconds."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for name, st in [*report["steps"].items(), ("total", report["total"])]:
        writer.writerow([name] + ["" if st[c] is None else st[c] for c in CSV_COLUMNS[1:]])
    return out.getvalue()


def stage_status(counts: dict[str, int], retries: int = 0) -> str:
    """The live display's status: users per stage, failures, 429/503 answers so far."""
    tail = f" | retries {retries}" if retries else ""
    return " | ".join(f"{st} {counts.get(st, 0)}" for st in STAGES) + tail
