"""The notebook rehearsal's numbers: per cell (crowd against the lead), per participant's
resources, and the verdict (pure functions of the results; no IO).

The lead ran the notebooks alone first; every cell's crowd latency is divided by the lead's
(under :data:`RATIO_FLOOR` the lead's time counts as the floor, so a 2 ms cell does not make a
ratio of thousands out of noise). A participant *failed* a cell when it raised, timed out or its
kernel died; the rehearsal fails when anyone failed a cell the lead passed (without a lead: any
failed cell), anyone hit the memory limit, or anyone did not get through login, spawn or stop.
"""

from __future__ import annotations

from collections import Counter

from ...wording import count
from .notebook import Lesson
from .report import UserResult, percentile, step_stats
from .resources import NEAR_LIMIT

RATIO_FLOOR = 0.01  # seconds
EXAMPLES = 5  # usernames shown per failure
MIB = 1024**2


def _ratio(crowd: float | None, lead: float | None) -> float | None:
    if crowd is None or lead is None:
        return None
    return round(crowd / max(lead, RATIO_FLOOR), 2)


def _distribution(values: list[float]) -> dict:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else None,
    }


def _failures(runs: list[tuple[str, object]]) -> list[dict]:
    """Failed runs of one cell grouped by (status, ename, evalue), most frequent first."""
    groups: dict[tuple, dict] = {}
    for user, run in runs:
        if run.status == "ok":
            continue
        key = (run.status, run.ename, run.evalue)
        g = groups.setdefault(
            key, {"status": run.status, "ename": run.ename, "evalue": run.evalue, "count": 0, "users": []}
        )
        g["count"] += 1
        if len(g["users"]) < EXAMPLES:
            g["users"].append(user)
    return sorted(groups.values(), key=lambda g: (-g["count"], g["status"], g["ename"]))


def cell_rows(lessons: list[Lesson], lead: UserResult | None, crowd: list[UserResult]) -> list[dict]:
    """One row per code cell, in the order the notebooks run them."""
    lead_runs = {c.key: c for c in (lead.cells if lead else [])}
    peaks = [(r.username, r.usage.peak_by_cell(), r.usage.limit) for r in crowd if r.usage is not None]
    rows = []
    for lesson in lessons:
        for cell in lesson.cells:
            runs = [(r.username, c) for r in crowd for c in r.cells if c.key == cell.key]
            seconds = [c.seconds for _, c in runs]
            stats = step_stats(seconds)
            statuses = Counter(c.status for _, c in runs)
            mine = lead_runs.get(cell.key)
            lead_passed = mine is not None and mine.status == "ok"
            failed_users = [u for u, c in runs if c.status != "ok"]
            row = {
                "key": cell.key,
                "notebook": lesson.name,
                "cell": cell.number,
                "headline": cell.headline,
                "lead": None
                if mine is None
                else {
                    "seconds": mine.seconds,
                    "status": mine.status,
                    "ename": mine.ename,
                    "evalue": mine.evalue,
                },
                "crowd": {
                    **stats,
                    "ok": statuses["ok"],
                    "errors": statuses["error"],
                    "timeouts": statuses["timeout"],
                    "died": statuses["died"],
                    "not_run": len(crowd) - len(runs),
                },
                "ratio": {q: _ratio(stats[q], mine.seconds if mine else None) for q in ("p50", "p95", "max")},
                "failures": _failures(runs),
                # a cell the lead passed (or, without a lead, any cell) failed for these
                "regressions": len(failed_users) if (lead is None or lead_passed) else 0,
            }
            cell_peaks = [p[cell.key] for _, p, _ in peaks if cell.key in p]
            if cell_peaks:
                row["memory"] = {
                    "p95": round(percentile(cell_peaks, 95)),
                    "max": max(cell_peaks),
                    "near_limit": [
                        u for u, p, limit in peaks if limit and p.get(cell.key, 0) >= NEAR_LIMIT * limit
                    ],
                }
            rows.append(row)
    return rows


def resources_section(lead: UserResult | None, crowd: list[UserResult], interval: float) -> dict | None:
    """Per participant peaks and their distribution; None when nothing was measured (the
    extension is missing: no numbers at all, never zeros)."""
    measured = [(r.username, r.usage.summary()) for r in crowd if r.usage is not None]
    measured = [(u, s) for u, s in measured if s is not None]
    if not measured:
        return None
    peaks = [s["peak_memory"] for _, s in measured]
    means = [s["mean_cpu"] for _, s in measured if s["mean_cpu"] is not None]
    cpu_peaks = [s["peak_cpu"] for _, s in measured if s["peak_cpu"] is not None]
    kernels = [s["peak_kernel_memory"] for _, s in measured if s["peak_kernel_memory"] is not None]
    # the limit most servers ran with (a profile may give some another one; each is judged by its own)
    limits = Counter(s["memory_limit"] for _, s in measured if s["memory_limit"])
    limit = limits.most_common(1)[0][0] if limits else None
    memory = _distribution(peaks)
    return {
        "interval": interval,
        "measured": len(measured),
        "unmeasured": [r.username for r in crowd if r.usage is None],
        "memory_limit": limit,
        "memory": {k: None if v is None else round(v) for k, v in memory.items()},
        "kernel_memory": None if not kernels else {k: round(v) for k, v in _distribution(kernels).items()},
        "cpu": None
        if not means
        else {
            "mean": {k: round(v, 3) for k, v in _distribution(means).items()},
            "peak": {k: round(v, 3) for k, v in _distribution(cpu_peaks).items()},
        },
        "near_limit": [u for u, s in measured if s["near_limit"]],
        "hit_limit": [u for u, s in measured if s["hit_limit"]],
        "lead": None if lead is None or lead.usage is None else lead.usage.summary(),
        "participants": [{"username": u, **s} for u, s in measured],
    }


def verdict(cells: list[dict], resources: dict | None, crowd: list[UserResult], lead: bool) -> dict:
    """Pass or fail, and why, in sentences an organizer acts on."""
    reasons = []
    for row in cells:
        if row["regressions"]:
            first = row["failures"][0] if row["failures"] else {}
            what = f"{first.get('ename', '')}: {first.get('evalue', '')}".strip(": ")
            passed = "which the lead passed" if lead else "(no lead run to compare with)"
            reasons.append(
                f"{count(row['regressions'], 'participant')} failed {row['key']} {passed}"
                + (f" ({what})" if what else "")
            )
    died = sorted({r.username for r in crowd for c in r.cells if c.status == "died"})
    hit = sorted(set((resources or {}).get("hit_limit", [])) | set(died))
    if hit:
        reasons.append(
            f"{count(len(hit), 'participant')} hit the memory limit or lost the kernel ({', '.join(hit[:EXAMPLES])}"
            + (", ..." if len(hit) > EXAMPLES else "")
            + ")"
        )
    unfinished = [r.username for r in crowd if r.error is not None]
    if unfinished:
        reasons.append(f"{count(len(unfinished), 'participant')} did not finish (see errors)")
    return {"ok": not reasons, "reasons": reasons}


def notebook_section(
    lessons: list[Lesson],
    lead: UserResult | None,
    crowd: list[UserResult],
    settings: dict,
    interval: float,
) -> dict:
    """The report's ``notebooks``, ``resources`` (absent when nothing was measured, with
    ``resources_missing`` saying why) and ``verdict``."""
    cells = cell_rows(lessons, lead, crowd)
    resources = resources_section(lead, crowd, interval)
    section: dict = {
        "notebooks": {
            "files": [
                {
                    "name": lesson.name,
                    "path": lesson.server_path,
                    "uploaded": lesson.content is not None,
                    "kernel": lesson.kernel_name,
                    "cells": len(lesson.cells),
                }
                for lesson in lessons
            ],
            "settings": settings,
            "lead": None if lead is None else _lead(lead),
            "cells": cells,
            "per_user": [
                {
                    "username": r.username,
                    "resources_missing": r.resources_missing,
                    "cells": [
                        {
                            "key": c.key,
                            "seconds": c.seconds,
                            "status": c.status,
                            "ename": c.ename,
                            "evalue": c.evalue,
                        }
                        for c in r.cells
                    ],
                }
                for r in crowd
            ],
        },
        "verdict": verdict(cells, resources, crowd, lead is not None),
    }
    if resources is not None:
        section["resources"] = resources
    else:
        missing = next(
            (r.resources_missing for r in [*crowd, *([lead] if lead else [])] if r.resources_missing), None
        )
        section["resources_missing"] = (
            missing or "no resource samples were taken (sampling off, or no server came up)"
        )
    return section


def _lead(lead: UserResult) -> dict:
    return {
        "username": lead.username,
        "ok": lead.error is None,
        "error": None
        if lead.error is None
        else {"step": lead.error.step, "kind": lead.error.kind, "detail": lead.error.detail},
    }


def _mib(n: float | None) -> str:
    return "-" if n is None else f"{n / MIB:.0f} MiB"


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}s"


def render_notebook_text(report: dict, slowest: int = 5) -> str:
    """The printed summary: slowest cells with their ratio to the lead, cells that failed for
    anyone, memory p50/p95/max, and the verdict against the server's limit."""
    nb = report["notebooks"]
    cells = nb["cells"]
    lead = nb["lead"]
    lines = [
        "",
        "Notebooks: " + ", ".join(f"{f['name']} ({count(f['cells'], 'code cell')})" for f in nb["files"]),
    ]
    if lead is None:
        lines.append("  no lead run (--no-baseline): latencies are not compared")
    elif not lead["ok"]:
        lines.append(f"  the lead's run failed at {lead['error']['step']}: {lead['error']['kind']}")
    ranked = sorted((c for c in cells if c["crowd"]["p95"] is not None), key=lambda c: -c["crowd"]["p95"])
    if ranked:
        lines.append("")
        lines.append(
            f"slowest cells (crowd p95; x: ratio to the lead alone; floor {RATIO_FLOOR * 1000:g} ms):"
        )
        lines.append(f"  {'cell':24} {'lead':>8} {'p50':>8} {'p95':>8} {'max':>8} {'x p95':>7}  first line")
        for c in ranked[:slowest]:
            ratio = c["ratio"]["p95"]
            lead_s = c["lead"]["seconds"] if c["lead"] else None
            lines.append(
                f"  {c['key']:24} {_secs(lead_s):>8} {_secs(c['crowd']['p50']):>8} {_secs(c['crowd']['p95']):>8} "
                f"{_secs(c['crowd']['max']):>8} {'-' if ratio is None else f'{ratio:g}x':>7}  {c['headline']}"
            )
    failed = [c for c in cells if c["failures"] or (c["lead"] and c["lead"]["status"] != "ok")]
    if failed:
        lines.append("")
        lines.append("cells that failed for anyone:")
        for c in failed:
            lead_note = (
                "lead: ok"
                if c["lead"] and c["lead"]["status"] == "ok"
                else ("lead: " + (f"{c['lead']['ename']} too" if c["lead"] else "not run"))
            )
            failures = c["failures"] or []
            if not failures:
                lines.append(f"  {c['key']:24} crowd: ok  ({lead_note})")
            for g in failures:
                users = ", ".join(g["users"]) + (", ..." if g["count"] > len(g["users"]) else "")
                lines.append(
                    f"  {c['key']:24} {g['count']:>3} x {g['status']}: {g['ename']}: {g['evalue'][:120]}  "
                    f"({lead_note}; {users})"
                )
    res = report.get("resources")
    lines.append("")
    if res is None:
        lines.append(f"resources: not measured. {report.get('resources_missing', '')}")
    else:
        m = res["memory"]
        limit = res["memory_limit"]
        lines.append(
            f"memory per participant (peak, server and kernels): p50 {_mib(m['p50'])}, p95 {_mib(m['p95'])}, "
            f"max {_mib(m['max'])}; limit {_mib(limit) if limit else 'none set'}"
        )
        unmeasured = res["unmeasured"]
        if unmeasured:
            why = next(
                (u["resources_missing"] for u in nb["per_user"] if u.get("resources_missing")),
                "no sample was taken",
            )
            lines.append(
                f"  not measured for {count(len(unmeasured), 'participant')} ({', '.join(unmeasured[:5])}"
                + (", ..." if len(unmeasured) > 5 else "")
                + f"): {why}"
            )
        if res["kernel_memory"]:
            k = res["kernel_memory"]
            lines.append(f"  of which the kernel alone: p95 {_mib(k['p95'])}, max {_mib(k['max'])}")
        if res["cpu"]:
            c = res["cpu"]
            lines.append(
                f"CPU per participant (cores): mean p50 {c['mean']['p50']:g}, p95 {c['mean']['p95']:g}; "
                f"peak p95 {c['peak']['p95']:g}, max {c['peak']['max']:g}"
            )
        else:
            lines.append("CPU: not measured (ResourceUseDisplay.track_cpu_percent is off on the servers)")
        if limit:
            if res["hit_limit"]:
                lines.append(f"  {count(len(res['hit_limit']), 'participant')} reached the memory limit")
            elif res["near_limit"]:
                lines.append(
                    f"  {count(len(res['near_limit']), 'participant')} came within 10% of the memory limit"
                )
            else:
                lines.append(f"  everyone stayed under 90% of the limit (max {m['max'] / limit:.0%} of it)")
        near_cells = [c["key"] for c in cells if (c.get("memory") or {}).get("near_limit")]
        if near_cells:
            lines.append("  cells near the limit: " + ", ".join(near_cells))
    v = report["verdict"]
    lines.append("")
    lines.append("verdict: " + ("PASS" if v["ok"] else "FAIL"))
    lines.extend(f"  - {r}" for r in v["reasons"])
    return "\n".join(lines) + "\n"
