"""Small server-side SVG charts a person can read at a glance (no JavaScript, prints fine).

The workshop service's admin page draws its line and bar charts here; the load test's
``--plot`` draws its users-per-stage timeline with :func:`stacked_area_chart`.

Rules every chart keeps, so it reads right wherever it is shown:

- counts get integer ticks at round steps (1, 2, 5, 10, 20, 25, 50, 100 … apart), never a tick
  between two integers (:func:`count_ticks`);
- text is :data:`FONT` units in a drawing :data:`WIDTH` units wide (the stacked chart is wider),
  and the ``<svg>`` carries its own ``min-width``/``max-width``: shown at least
  ``MIN_TEXT_PX / FONT`` of its size, its text is never under 11 CSS px however narrow the
  column (the column scrolls instead), and never over 1.5 times its size however wide;
- every label stays inside the drawing: the first and last time labels are anchored at the
  start and end of the axis, margins are sized from the labels they hold, and a title too long
  for the drawing is shortened (in full in the ``<title>`` tooltip).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

FONT = 14  # axis labels, bar labels, legend: in the drawing's units
TITLE_FONT = 15
MIN_TEXT_PX = 11  # the smallest text, in CSS px, a chart may show
MAX_SCALE = 1.5  # how far a chart may grow beyond its drawing size
WIDTH, HEIGHT = 400, 240  # the admin page's charts: sized for a phone's width and a third of a laptop's
STACKED_WIDTH, STACKED_HEIGHT = 640, 260
EM = 0.68  # a generous average character width (in em) of a sans-serif label, for the layout
PAD = 8  # space between the drawing's edge, the labels and the plot
TITLE_BAND = 34  # the title above the plot
TIME_BAND = 30  # the time labels under the plot
LEGEND_ROW = 20
BAR_ROW = 22


def text_width(text: str, size: float = FONT) -> float:
    """An upper estimate of how wide ``text`` is drawn at ``size`` (for margins and spacing)."""
    return len(text) * size * EM


def min_display_width(width: float = WIDTH) -> int:
    """The narrowest a chart ``width`` units wide may be shown with its text >= MIN_TEXT_PX."""
    return math.ceil(width * MIN_TEXT_PX / FONT)


def _round_steps() -> Iterator[int]:
    yield from (1, 2, 5)
    decade = 10
    while True:
        yield from (decade, 2 * decade, 5 * decade // 2, 5 * decade)
        decade *= 10


def count_ticks(largest: float, max_intervals: int = 5) -> list[int]:
    """Ticks for an axis of counts up to ``largest``: 0, step, 2·step, … to the first multiple
    of step that reaches it, with the smallest round step that needs at most ``max_intervals``
    intervals. ``count_ticks(5) == [0, 1, 2, 3, 4, 5]``, ``count_ticks(61) == [0, 20, 40, 60, 80]``."""
    largest = max(0, math.ceil(largest))
    for step in _round_steps():
        intervals = max(1, math.ceil(largest / step))
        if intervals <= max_intervals:
            return [step * i for i in range(intervals + 1)]
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Frame:
    """Where the plot area lies in a drawing ``width`` × ``height``."""

    width: float
    height: float
    left: float
    right: float
    top: float = TITLE_BAND
    bottom: float = TIME_BAND

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.top

    @property
    def y1(self) -> float:
        return self.height - self.bottom

    @property
    def plot_w(self) -> float:
        return self.x1 - self.x0

    @property
    def plot_h(self) -> float:
        return self.y1 - self.y0


def _fit(text: str, room: float, size: float) -> str:
    """``text`` shortened with an ellipsis to fit ``room`` at ``size``."""
    if text_width(text, size) <= room:
        return text
    keep = max(1, int(room / (size * EM)) - 1)
    return text[:keep].rstrip() + "…"


def _svg(title: str, width: float, height: float, body: str) -> str:
    style = f"display:block;min-width:{min_display_width(width)}px;max-width:{width * MAX_SCALE:g}px"
    shown = _fit(title, width - 2 * PAD, TITLE_FONT)
    return (
        f'<svg class="workshop-chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width:g} {height:g}" '
        f'width="100%" style="{style}" font-family="sans-serif" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
        f'<text class="chart-title" x="{PAD}" y="{PAD + TITLE_FONT}" font-size="{TITLE_FONT}" font-weight="bold" '
        f'fill="currentColor">{escape(shown)}</text>{body}</svg>'
    )


def _label(x: float, y: float, text: str, anchor: str, cls: str) -> str:
    return (
        f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" font-size="{FONT}" text-anchor="{anchor}" '
        f'fill="currentColor">{escape(text)}</text>'
    )


def _count_axis_left(ticks: Sequence[int]) -> float:
    """The left margin that holds the widest count label."""
    return PAD + max(text_width(str(t)) for t in ticks) + PAD


def _y_counts(frame: _Frame, ticks: Sequence[int]) -> str:
    """Grid lines across the plot and count labels to their left, one per tick."""
    parts = []
    for value in ticks:
        y = frame.y1 - frame.plot_h * value / ticks[-1]
        parts.append(
            f'<line class="grid y" x1="{frame.x0:.1f}" x2="{frame.x1:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#999" stroke-opacity=".35"/>'
        )
        parts.append(_label(frame.x0 - PAD, y + FONT * 0.35, str(value), "end", "tick y"))
    return "".join(parts)


def _x_labels(frame: _Frame, labels: Sequence[tuple[float, str]]) -> str:
    """Labels under the plot at fractions of its width; one at the very start or end is anchored
    there, so it stays inside the drawing."""
    parts = []
    for fraction, text in labels:
        anchor = "start" if fraction <= 0 else "end" if fraction >= 1 else "middle"
        parts.append(_label(frame.x0 + frame.plot_w * fraction, frame.height - 10, text, anchor, "tick x"))
    return "".join(parts)


def label_intervals(plot_width: float, label_width: float, most: int = 4) -> int:
    """How many equal intervals (most first: 4, 3, 2, 1) the time axis can be cut into with a
    label at every cut that overlaps no other; the first and last labels are anchored inside the
    axis, so their neighbours must keep one and a half labels of room."""
    for intervals in range(most, 1, -1):
        if plot_width / intervals >= 1.5 * label_width + PAD:
            return intervals
    return 1


def _no_data(frame: _Frame) -> str:
    return (
        f'<text class="note" x="{frame.x0 + frame.plot_w / 2:.1f}" y="{frame.y0 + frame.plot_h / 2:.1f}" '
        f'text-anchor="middle" font-size="{FONT}" fill="currentColor">no data yet</text>'
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


def line_chart(
    title: str,
    points: Sequence[tuple[datetime, float]],
    time_format: str | None = None,
    width: float = WIDTH,
    height: float = HEIGHT,
) -> str:
    """A step line of a count over time (e.g. running servers per sample)."""
    ticks = count_ticks(max((v for _, v in points), default=0))
    frame = _Frame(width, height, left=_count_axis_left(ticks), right=PAD + 4)
    if not points:
        return _svg(title, width, height, _y_counts(frame, ticks) + _no_data(frame))
    t0, t1 = points[0][0], points[-1][0]
    span = max((t1 - t0).total_seconds(), 1.0)

    def xy(t, v):
        x = frame.x0 + frame.plot_w * (t - t0).total_seconds() / span
        return x, frame.y1 - frame.plot_h * v / ticks[-1]

    path = []
    for i, (t, v) in enumerate(points):
        x, y = xy(t, v)
        path.append(f"M{x:.1f},{y:.1f}" if i == 0 else f"H{x:.1f}V{y:.1f}")
    time_format = time_format or time_format_for(span)
    widest = max(text_width(t.strftime(time_format)) for t in (t0, t1))
    intervals = label_intervals(frame.plot_w, widest)
    labels = [
        (i / intervals, (t0 + (t1 - t0) * (i / intervals)).strftime(time_format))
        for i in range(intervals + 1)
    ]
    body = (
        _y_counts(frame, ticks)
        + _x_labels(frame, labels)
        + f'<path d="{"".join(path)}" fill="none" stroke="#f37524" stroke-width="2.5"/>'
    )
    return _svg(title, width, height, body)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], width: float = WIDTH) -> str:
    """Labelled counts as horizontal bars (e.g. sessions per duration bucket): the labels stay
    readable however many bars there are, and the count is written at each bar's end."""
    ticks = count_ticks(max((v for _, v in bars), default=0))
    left = PAD + max((text_width(label) for label, _ in bars), default=0) + PAD
    right = PAD + text_width(str(ticks[-1])) + PAD  # a bar's count, or half the last tick label
    height = TITLE_BAND + BAR_ROW * max(len(bars), 3) + TIME_BAND
    frame = _Frame(width, height, left=left, right=right, top=TITLE_BAND)
    parts = []
    for value in ticks:
        x = frame.x0 + frame.plot_w * value / ticks[-1]
        parts.append(
            f'<line class="grid x" x1="{x:.1f}" x2="{x:.1f}" y1="{frame.y0:.1f}" y2="{frame.y1:.1f}" '
            f'stroke="#999" stroke-opacity=".35"/>'
        )
        parts.append(_label(x, frame.height - 10, str(value), "middle", "tick x"))
    if not bars:
        return _svg(title, width, height, "".join(parts) + _no_data(frame))
    for i, (label, value) in enumerate(bars):
        top = frame.y0 + BAR_ROW * i
        middle = top + BAR_ROW / 2 + FONT * 0.35
        w = frame.plot_w * value / ticks[-1]
        parts.append(_label(frame.x0 - PAD, middle, label, "end", "category"))
        parts.append(
            f'<rect x="{frame.x0:.1f}" y="{top + 3:.1f}" width="{w:.1f}" height="{BAR_ROW - 6}" fill="#4c72b0">'
            f"<title>{escape(label)}: {value:g}</title></rect>"
        )
        parts.append(_label(frame.x0 + w + 4, middle, f"{value:g}", "start", "value"))
    return _svg(title, width, height, "".join(parts))


def _short_duration(seconds: float) -> tuple[float, str]:
    if seconds >= 86400 and seconds % 86400 == 0:
        return seconds / 86400, "d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return seconds / 3600, "h"
    return seconds / 60, "m"


def _duration_range(low: float, high: float) -> str:
    (a, unit_a), (b, unit_b) = _short_duration(low), _short_duration(high)
    if unit_a == unit_b:
        return f"{a:g}–{b:g}{unit_b}"
    return f"{a:g}{unit_a}–{b:g}{unit_b}"


def duration_bars(counts: Sequence[tuple[float, int]]) -> list[tuple[str, float]]:
    """Bars from (upper bound in seconds, sessions) buckets, the last bound infinite:
    "<5m", "5–15m", "30m–1h", … and "1d+" for the open-ended last one."""
    bars = []
    for i, (bound, count) in enumerate(counts):
        low = counts[i - 1][0] if i else 0
        if math.isinf(bound):
            value, unit = _short_duration(low)
            label = f"{value:g}{unit}+" if i else "all"
        elif not i:
            value, unit = _short_duration(bound)
            label = f"<{value:g}{unit}"
        else:
            label = _duration_range(low, bound)
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


def _legend(series: Sequence[Series], x: float, top: float) -> str:
    # top layer first, so the legend reads in the order the layers are stacked
    rows = []
    for i, s in enumerate(reversed(series)):
        y = top + i * LEGEND_ROW
        rows.append(
            f'<rect x="{x:.1f}" y="{y}" width="12" height="12" fill="{escape(s.color)}"/>'
            f'<text x="{x + 18:.1f}" y="{y + 11}" font-size="{FONT}" fill="currentColor">{escape(s.label)}</text>'
        )
    return f'<g class="legend">{"".join(rows)}</g>'


def stacked_area_chart(
    title: str,
    times: Sequence[float],
    series: Sequence[Series],
    end: float | None = None,
    width: float = STACKED_WIDTH,
    height: float = STACKED_HEIGHT,
) -> str:
    """Counts stacked over time (seconds from the start), the first series at the bottom, with a legend.

    Each value holds from its time until the next one (steps, as in :func:`line_chart`), the
    last one until ``end`` (default: one more of the last interval). Each layer is drawn as
    rectangles, one per run of times where it neither moves nor changes, so long runs stay small.
    """
    legend_width = 18 + max((text_width(s.label) for s in series), default=0) + PAD
    totals = [sum(s.values[i] for s in series) for i in range(len(times))]
    ticks = count_ticks(max(totals, default=0))
    frame = _Frame(width, height, left=_count_axis_left(ticks), right=PAD + legend_width + PAD)
    legend = _legend(series, width - legend_width, frame.y0)
    if not times or not series:
        return _svg(title, width, height, _y_counts(frame, ticks) + _no_data(frame) + legend)
    if end is None:
        end = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1.0)
    t0, span = times[0], max(end - times[0], 1e-9)
    edges = [*times, end]
    y_max = ticks[-1]

    def x(t: float) -> float:
        return frame.x0 + frame.plot_w * (t - t0) / span

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
                top = frame.y1 - frame.plot_h * (base[i] + value) / y_max
                rects.append(
                    f'<rect x="{x(edges[i]):.2f}" y="{top:.2f}" width="{x(edges[j]) - x(edges[i]):.2f}" '
                    f'height="{frame.plot_h * value / y_max:.2f}" fill="{escape(s.color)}"><title>{escape(s.label)}: '
                    f"{value:g} ({elapsed_label(edges[i], span)} to {elapsed_label(edges[j], span)})</title></rect>"
                )
            i = j
        base = [b + v for b, v in zip(base, s.values)]
    widest = max(text_width(elapsed_label(t, span)) for t in (t0, t0 + span))
    intervals = label_intervals(frame.plot_w, widest)
    labels = [(i / intervals, elapsed_label(t0 + span * i / intervals, span)) for i in range(intervals + 1)]
    body = (
        _y_counts(frame, ticks)
        + _x_labels(frame, labels)
        + f'<g class="stacks" shape-rendering="crispEdges">{"".join(rects)}</g>'
        + legend
    )
    return _svg(title, width, height, body)
