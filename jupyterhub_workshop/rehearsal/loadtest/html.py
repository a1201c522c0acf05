"""The notebook rehearsal's HTML page: the admin page's charts (:mod:`jupyterhub_workshop.charts`)
over the report's numbers, and a table per cell. A pure function of the report."""

from __future__ import annotations

from html import escape

from ... import charts
from .notebook_report import MIB, render_notebook_text
from .plot import html_page, timeline_chart


def _latency_bars(cells: list[dict]) -> tuple[str, list[tuple[str, float]]]:
    """Per cell: the lead alone, then the crowd's p50, p95 and max; milliseconds when every
    value is under ten seconds (the chart's ticks are whole numbers)."""
    values = [c["crowd"]["max"] or 0 for c in cells] + [(c["lead"] or {}).get("seconds") or 0 for c in cells]
    scale, unit = (1000, "ms") if max(values, default=0) < 10 else (1, "s")
    bars = []
    for c in cells:
        if c["lead"]:
            bars.append((f"{c['key']} lead", round(c["lead"]["seconds"] * scale, 1)))
        for q in ("p50", "p95", "max"):
            if c["crowd"][q] is not None:
                bars.append((f"{c['key']} crowd {q}", round(c["crowd"][q] * scale, 1)))
    return unit, bars


def _buckets(values: list[float], width: float, label) -> list[tuple[str, float]]:
    """A histogram as labelled bars: how many participants in each ``width`` wide bucket."""
    if not values:
        return []
    low = int(min(values) // width)
    high = int(max(values) // width)
    counts = [0] * (high - low + 1)
    for v in values:
        counts[int(v // width) - low] += 1
    return [(label((low + i) * width, (low + i + 1) * width), n) for i, n in enumerate(counts)]


def _step(span: float, target: int = 8) -> float:
    """A round bucket width giving about ``target`` buckets over ``span``."""
    for w in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096):
        if span / w <= target:
            return w
    return 8192


def _cell_table(cells: list[dict]) -> str:
    head = (
        "<tr><th>cell</th><th>first line</th><th>lead</th><th>p50</th><th>p95</th><th>max</th>"
        "<th>× lead (p95)</th><th>failed</th><th>peak memory p95</th></tr>"
    )
    rows = []
    for c in cells:
        lead = c["lead"]
        lead_text = (
            "-" if not lead else (f"{lead['seconds']:.2f}s" if lead["status"] == "ok" else lead["ename"])
        )
        failed = "; ".join(f"{g['count']}× {g['ename']}: {g['evalue'][:80]}" for g in c["failures"]) or ""
        mem = (c.get("memory") or {}).get("p95")
        ratio = c["ratio"]["p95"]
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{escape(str(v))}</td>"
                for v in (
                    c["key"],
                    c["headline"],
                    lead_text,
                    *(
                        "-" if c["crowd"][q] is None else f"{c['crowd'][q]:.2f}s"
                        for q in ("p50", "p95", "max")
                    ),
                    "-" if ratio is None else f"{ratio:g}",
                    failed,
                    "-" if mem is None else f"{mem / MIB:.0f} MiB",
                )
            )
            + "</tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _participant_table(res: dict) -> str:
    """Every measured participant, the largest peak first: who came near the limit."""
    head = (
        "<tr><th>participant</th><th>peak memory</th><th>kernel peak</th><th>mean CPU</th>"
        "<th>peak CPU</th><th>limit</th></tr>"
    )
    rows = []
    for p in sorted(res["participants"], key=lambda p: -p["peak_memory"]):
        flag = " (reached)" if p["hit_limit"] else (" (near)" if p["near_limit"] else "")
        values = (
            p["username"],
            f"{p['peak_memory'] / MIB:.0f} MiB",
            "-" if p["peak_kernel_memory"] is None else f"{p['peak_kernel_memory'] / MIB:.0f} MiB",
            "-" if p["mean_cpu"] is None else f"{p['mean_cpu']:g}",
            "-" if p["peak_cpu"] is None else f"{p['peak_cpu']:g}",
            ("-" if not p["memory_limit"] else f"{p['memory_limit'] / MIB:.0f} MiB") + flag,
        )
        rows.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in values) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def render_html(report: dict) -> str:
    """The whole page: summary text, charts, the per-cell table."""
    cells = report["notebooks"]["cells"]
    title = f"Notebook rehearsal of {report['url']}: {report['users']} participants"
    unit, bars = _latency_bars(cells)
    parts = [
        f"<h1>{escape(title)}</h1>",
        f"<p><strong>{'PASS' if report['verdict']['ok'] else 'FAIL'}</strong></p>",
        f"<pre>{escape(render_notebook_text(report).strip())}</pre>",
        charts.bar_chart(f"time per cell ({unit}): the lead alone and the crowd's p50, p95, max", bars),
        charts.bar_chart(
            "participants who failed each cell",
            [(c["key"], sum(g["count"] for g in c["failures"])) for c in cells],
        ),
    ]
    res = report.get("resources")
    if res is None:
        parts.append(f"<p>Resources not measured: {escape(report.get('resources_missing', ''))}</p>")
    else:
        peaks = [p["peak_memory"] / MIB for p in res["participants"]]
        width = _step(max(peaks) - min(peaks))
        parts.append(
            charts.bar_chart(
                "participants by peak memory (MiB, server and kernels)"
                + (f"; limit {res['memory_limit'] / MIB:.0f} MiB" if res["memory_limit"] else ""),
                _buckets(peaks, width, lambda lo, hi: f"{lo:g}–{hi:g} MiB"),
            )
        )
        cpus = [p["mean_cpu"] for p in res["participants"] if p["mean_cpu"] is not None]
        if cpus:
            width = _step(max(cpus) - min(cpus))
            parts.append(
                charts.bar_chart(
                    "participants by mean CPU (cores)",
                    _buckets(cpus, width, lambda lo, hi: f"{lo:g}–{hi:g}"),
                )
            )
    parts.append(timeline_chart(report["timeline"], "participants per stage over time"))
    parts.append("<h2>Cells</h2>" + _cell_table(cells))
    if res is not None:
        parts.append("<h2>Participants</h2>" + _participant_table(res))
    page = html_page("\n".join(parts), title)
    return page.replace(
        "</style>",
        " table { border-collapse: collapse; font-size: .85rem; } td, th { border: 1px solid #ccc; "
        "padding: .2rem .4rem; text-align: left; } pre { white-space: pre-wrap; }</style>",
        1,
    )
