"""The load test's ``--plot``: users per stage over time, stacked, drawn by the admin page's
chart code (:mod:`jupyterhub_workshop.charts`), as SVG or a small HTML page holding it."""

from __future__ import annotations

from html import escape
from pathlib import Path

from ... import charts

STAGE_COLORS = {
    "waiting": "#c8c8c8",
    "login": "#4285f4",
    "spawn": "#fbbc05",
    "kernel": "#9b59b6",
    "code": "#34a853",
    "stop": "#00acc1",
    "done": "#bee1be",
    "failed": "#ea4335",
}
# bottom of the stack first: finished users pile up at the bottom, arrivals wait on top
STACK_ORDER = ("failed", "done", "stop", "code", "kernel", "spawn", "login", "waiting")
SUFFIXES = (".svg", ".html")


def check_plot_path(path: str | Path) -> None:
    """Refuse a file name the plot cannot be written as, before the load test runs."""
    if Path(path).suffix.lower() not in SUFFIXES:
        raise ValueError(
            f"--plot {path}: the plot is SVG (name it .svg) or an HTML page holding the SVG "
            "(.html); PNG is no longer written"
        )


def timeline_chart(timeline: dict, title: str) -> str:
    """The SVG of a report's ``timeline`` (users per stage at evenly spaced times)."""
    samples = timeline["samples"]
    column = {stage: i + 1 for i, stage in enumerate(timeline["stages"])}
    series = [
        charts.Series(stage, STAGE_COLORS[stage], [row[column[stage]] for row in samples])
        for stage in STACK_ORDER
    ]
    times = [row[0] for row in samples]
    # the last sample (the end of the run) holds for one interval, so the final state shows
    end = times[-1] + timeline["interval"] if times else None
    return charts.stacked_area_chart(title, times, series, end)


def html_page(svg: str, title: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n"
        "<style>body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }</style>\n"
        f"</head>\n<body>\n{svg}\n</body>\n</html>\n"
    )


def write_plot(path: str | Path, timeline: dict, title: str) -> None:
    path = Path(path)
    check_plot_path(path)
    svg = timeline_chart(timeline, title)
    path.write_text(html_page(svg, title) if path.suffix.lower() == ".html" else svg + "\n", encoding="utf-8")
