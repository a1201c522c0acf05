"""Small server-side SVG charts a person can read at a glance (no JavaScript, prints fine)."""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import Sequence

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 36


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step:
            return step
    return value


def _frame(title: str, y_max: float, x_labels: Sequence[tuple[float, str]], body: str) -> str:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="workshop-chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title>{escape(title)}</title>',
        f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold" fill="currentColor">{escape(title)}</text>',
    ]
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" stroke-opacity=".35"/>')
        label = f"{value:.0f}" if y_max >= 4 else f"{value:.1f}"
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="currentColor">{label}</text>')
    for fraction, label in x_labels:
        x = LEFT + plot_w * fraction
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 12}" font-size="11" text-anchor="middle" fill="currentColor">{escape(label)}</text>')
    parts.append(body)
    parts.append("</svg>")
    return "".join(parts)


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
        return _frame(title, 1, [], f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                                    f'font-size="12" fill="currentColor">no data yet</text>')
    t0, t1 = points[0][0], points[-1][0]
    span = max((t1 - t0).total_seconds(), 1.0)
    y_max = _nice_max(max(v for _, v in points))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

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
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(bars), 1)
    slot = plot_w / n
    body, labels = [], []
    for i, (label, value) in enumerate(bars):
        h = plot_h * value / y_max
        x = LEFT + slot * i + slot * 0.15
        body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="#4c72b0">'
                    f'<title>{escape(label)}: {value:g}</title></rect>')
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
