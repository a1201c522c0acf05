"""Small server-side SVG charts a person can read at a glance (no JavaScript, prints fine).

The workshop service's admin page draws its line and bar charts here; the load test's
``--plot`` draws its users-per-stage timeline with :func:`stacked_area_chart`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 36
LEGEND_WIDTH = 96  # room on the right for a legend's swatches and names
LEGEND_ROW = 18


# axis tops whose quarters (the grid lines) are round numbers; 40, 60 and 80 so that, say,
# 60 users fill the chart rather than 60 % of it
_AXIS_TOPS = (
    1,
    2,
    5,
    10,
    20,
    25,
    40,
    50,
    60,
    80,
    100,
    200,
    250,
    400,
    500,
    600,
    800,
    1000,
    2000,
    4000,
    5000,
    6000,
    8000,
    10000,
)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    for top in _AXIS_TOPS:
        if value <= top:
            return top
    return value


def _plot_size(right: float = RIGHT) -> tuple[float, float]:
    return WIDTH - LEFT - right, HEIGHT - TOP - BOTTOM


def _frame(
    title: str, y_max: float, x_labels: Sequence[tuple[float, str]], body: str, right: float = RIGHT
) -> str:
    plot_w, plot_h = _plot_size(right)
    parts = [
        f'<svg class="workshop-chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold" fill="currentColor">{escape(title)}</text>',
    ]
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" stroke-opacity=".35"/>'
        )
        label = f"{value:.0f}" if y_max >= 4 else f"{value:.1f}"
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="currentColor">{label}</text>'
        )
    for fraction, label in x_labels:
        x = LEFT + plot_w * fraction
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 12}" font-size="11" text-anchor="middle" fill="currentColor">{escape(label)}</text>'
        )
    parts.append(body)
    parts.append("</svg>")
    return "".join(parts)


def _no_data(title: str, right: float = RIGHT) -> str:
    return _frame(
        title,
        1,
        [],
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
        f'font-size="12" fill="currentColor">no data yet</text>',
        right,
    )


def time_format_for(span_seconds: float) -> str:
    """Axis labels that tell the ticks apart: seconds for minutes, days for weeks."""
    if span_seconds < 600:
        return "%H:%M:%S"
    if span_seconds < 86400:
        return "%H:%M"
    if span_seconds < 7 * 86400:
        return "%a %H:%M"
    return "%b %d"


def line_chart(title: str, points: Sequence[tuple[datetime, float]], time_format: str | None = None) -> str:
    """A step line of a value over time (e.g. running servers per sample)."""
    if not points:
        return _no_data(title)
    t0, t1 = points[0][0], points[-1][0]
    span = max((t1 - t0).total_seconds(), 1.0)
    y_max = _nice_max(max(v for _, v in points))
    plot_w, plot_h = _plot_size()

    def xy(t, v):
        return LEFT + plot_w * (t - t0).total_seconds() / span, TOP + plot_h - plot_h * v / y_max

    path = []
    for i, (t, v) in enumerate(points):
        x, y = xy(t, v)
        if i == 0:
            path.append(f"M{x:.1f},{y:.1f}")
        else:
            path.append(f"H{x:.1f}V{y:.1f}")
    time_format = time_format or time_format_for(span)
    ticks = [(i / 4, (t0 + (t1 - t0) * (i / 4)).strftime(time_format)) for i in range(5)]
    body = f'<path d="{"".join(path)}" fill="none" stroke="#f37524" stroke-width="2.5"/>'
    return _frame(title, y_max, ticks, body)


def bar_chart(title: str, bars: Sequence[tuple[str, float]]) -> str:
    """Labelled bars (e.g. sessions per duration bucket)."""
    y_max = _nice_max(max((v for _, v in bars), default=0))
    plot_w, plot_h = _plot_size()
    n = max(len(bars), 1)
    slot = plot_w / n
    body, labels = [], []
    for i, (label, value) in enumerate(bars):
        h = plot_h * value / y_max
        x = LEFT + slot * i + slot * 0.15
        body.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="#4c72b0">'
            f"<title>{escape(label)}: {value:g}</title></rect>"
        )
        labels.append(((i + 0.5) / n, label))
    return _frame(title, y_max, labels, "".join(body))


def _short_duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 60:g}m"


def duration_bars(counts: Sequence[tuple[float, int]]) -> list[tuple[str, float]]:
    """Bars from (upper bound in seconds, sessions) buckets, the last bound infinite:
    "<5m", "<15m", ... and "1d+" for the open-ended last one."""
    bars = []
    for i, (bound, count) in enumerate(counts):
        if math.isinf(bound):
            label = f"{_short_duration(counts[i - 1][0])}+" if i else "all"
        else:
            label = f"<{_short_duration(bound)}"
        bars.append((label, count))
    return bars


@dataclass(frozen=True)
class Series:
    """One layer of a stacked chart: its name in the legend, its colour, a value per time."""

    label: str
    color: str
    values: Sequence[float]


def elapsed_label(seconds: float, span: float) -> str:
    """Seconds since the start, as precise as a span of ``span`` seconds needs: 2.5s, 45s, 3m05s, 1h20m."""
    if span < 10:
        return f"{seconds:.1f}s"
    if span < 120:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if span < 7200:
        return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _legend(series: Sequence[Series], x: float) -> str:
    # top layer first, so the legend reads in the order the layers are stacked
    rows = []
    for i, s in enumerate(reversed(series)):
        y = TOP + i * LEGEND_ROW
        rows.append(
            f'<rect x="{x:.1f}" y="{y}" width="12" height="12" fill="{escape(s.color)}"/>'
            f'<text x="{x + 18:.1f}" y="{y + 10}" font-size="11" fill="currentColor">{escape(s.label)}</text>'
        )
    return f'<g class="legend">{"".join(rows)}</g>'


def stacked_area_chart(
    title: str, times: Sequence[float], series: Sequence[Series], end: float | None = None
) -> str:
    """Values stacked over time (seconds from the start), the first series at the bottom, with a legend.

    Each value holds from its time until the next one (steps, as in :func:`line_chart`), the
    last one until ``end`` (default: one more of the last interval). Each layer is drawn as
    rectangles, one per run of times where it neither moves nor changes, so long runs stay small.
    """
    right = RIGHT + LEGEND_WIDTH
    if not times or not series:
        return _no_data(title, right)
    if end is None:
        end = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1.0)
    t0, span = times[0], max(end - times[0], 1e-9)
    edges = [*times, end]
    plot_w, plot_h = _plot_size(right)
    y_max = _nice_max(max(sum(s.values[i] for s in series) for i in range(len(times))))

    def x(t: float) -> float:
        return LEFT + plot_w * (t - t0) / span

    base = [0.0] * len(times)
    rects = []
    for s in series:
        i = 0
        while i < len(times):
            j = i + 1
            while j < len(times) and (base[j], s.values[j]) == (base[i], s.values[i]):
                j += 1
            value = s.values[i]
            if value > 0:
                top = TOP + plot_h - plot_h * (base[i] + value) / y_max
                rects.append(
                    f'<rect x="{x(edges[i]):.2f}" y="{top:.2f}" width="{x(edges[j]) - x(edges[i]):.2f}" '
                    f'height="{plot_h * value / y_max:.2f}" fill="{escape(s.color)}"><title>{escape(s.label)}: '
                    f"{value:g} ({elapsed_label(edges[i], span)} to {elapsed_label(edges[j], span)})</title></rect>"
                )
            i = j
        base = [b + v for b, v in zip(base, s.values)]
    ticks = [(i / 4, elapsed_label(t0 + span * i / 4, span)) for i in range(5)]
    body = f'<g shape-rendering="crispEdges">{"".join(rects)}</g>' + _legend(series, WIDTH - LEGEND_WIDTH)
    return _frame(title, y_max, ticks, body, right)
