"""SVG charts: the admin page's line and bar charts, and the stacked chart of the load test's plot.

The stacked chart is read back as a person reads it: the plot area from the grid lines, the
scale from the y axis' top label, which colour is which from the legend, then the heights.
"""

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop import charts
from jupyterhub_workshop.service.metrics import SESSION_BUCKETS

SVG = "{http://www.w3.org/2000/svg}"


def read_stacks(svg: str, fraction: float) -> list[tuple[str, float]]:
    """The layers of a stacked chart at ``fraction`` of the plot's width, bottom first, as
    (legend name, value); asserts that they stand on the baseline, one on top of the other."""
    root = ET.fromstring(svg)
    grid = [line for line in root.iter(f"{SVG}line") if line.get("class") == "grid y"]
    top, bottom = min(float(g.get("y1")) for g in grid), max(float(g.get("y1")) for g in grid)
    left, right = float(grid[0].get("x1")), float(grid[0].get("x2"))
    y_max = max(float(t.text) for t in root.iter(f"{SVG}text") if t.get("class") == "tick y")
    legend = root.find(f"{SVG}g[@class='legend']")
    names = {r.get("fill"): t.text for r, t in zip(legend.iter(f"{SVG}rect"), legend.iter(f"{SVG}text"))}
    x = left + (right - left) * fraction
    layers = sorted(
        (
            r
            for g in root.findall(f"{SVG}g")
            if g is not legend
            for r in g.iter(f"{SVG}rect")
            if float(r.get("x")) <= x < float(r.get("x")) + float(r.get("width"))
        ),
        key=lambda r: -float(r.get("y")),
    )
    stacks, base = [], bottom
    for r in layers:
        y, h = float(r.get("y")), float(r.get("height"))
        assert y + h == pytest.approx(base, abs=0.02), "a gap or an overlap in the stack"
        stacks.append((names[r.get("fill")], round(h / (bottom - top) * y_max, 3)))
        base = y
    return stacks


def texts(svg: str) -> list[ET.Element]:
    return list(ET.fromstring(svg).iter(f"{SVG}text"))


def labels(svg: str, cls: str) -> list[str]:
    return [t.text for t in texts(svg) if t.get("class") == cls]


def assert_text_inside(svg: str) -> None:
    """Every text, at its estimated width (generous: ``charts.EM`` em a character), lies inside
    the viewBox, and is drawn at least at ``charts.FONT``. The browser test measures the real
    thing in Chromium."""
    root = ET.fromstring(svg)
    _, _, width, height = (float(v) for v in root.get("viewBox").split())
    for t in root.iter(f"{SVG}text"):
        size = float(t.get("font-size"))
        assert size >= charts.FONT, t.text
        w = charts.text_width(t.text, size)
        x = float(t.get("x"))
        start = {"end": x - w, "middle": x - w / 2}.get(t.get("text-anchor"), x)
        assert 0 <= start and start + w <= width, (t.text, start, start + w, width)
        assert size <= float(t.get("y")) <= height, t.text


# --- axes a person reads right -----------------------------------------------------------


@pytest.mark.parametrize(
    "largest, ticks",
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (2.5, [0, 1, 2, 3]),  # counts: 2.5 people is at least 3
        (3, [0, 1, 2, 3]),
        (5, [0, 1, 2, 3, 4, 5]),
        (7, [0, 2, 4, 6, 8]),
        (11, [0, 5, 10, 15]),
        (61, [0, 20, 40, 60, 80]),
        (110, [0, 25, 50, 75, 100, 125]),
        (400, [0, 100, 200, 300, 400]),
        (1100, [0, 250, 500, 750, 1000, 1250]),
    ],
)
def test_count_ticks_are_integers_at_round_steps(largest, ticks):
    assert charts.count_ticks(largest) == ticks


def test_count_ticks_take_the_smallest_round_step_that_fits():
    allowed = [1, 2, 5] + [m * 10**k for k in range(1, 6) for m in (1, 2, 2.5, 5)]
    for largest in range(0, 5001):
        ticks = charts.count_ticks(largest)
        step = ticks[1] - ticks[0]
        assert step in allowed and all(isinstance(t, int) for t in ticks)
        assert ticks == [step * i for i in range(len(ticks))] and ticks[-1] >= largest
        assert 2 <= len(ticks) <= 6
        smaller = [a for a in allowed if a < step]
        assert not any(math.ceil(largest / a) <= 5 for a in smaller), (largest, ticks)


def test_a_count_of_three_sits_on_its_grid_line():
    t0 = datetime(2026, 7, 14, 9, tzinfo=UTC)
    svg = charts.line_chart("Running servers", [(t0, 0), (t0 + timedelta(minutes=5), 3)])
    assert labels(svg, "tick y") == ["0", "1", "2", "3"]
    root = ET.fromstring(svg)
    grid = {
        t.text: float(line.get("y1"))
        for line, t in zip(
            (g for g in root.iter(f"{SVG}line") if g.get("class") == "grid y"),
            (t for t in root.iter(f"{SVG}text") if t.get("class") == "tick y"),
        )
    }
    path = root.find(f"{SVG}path").get("d")
    assert path.endswith(f"V{grid['3']:.1f}")  # the line ends on the "3" grid line


# --- the admin page's charts -------------------------------------------------------------


def test_line_chart_draws_steps_with_time_labels():
    t0 = datetime(2026, 7, 14, 9, tzinfo=UTC)
    svg = charts.line_chart(
        "Running servers", [(t0, 1), (t0 + timedelta(hours=1), 7), (t0 + timedelta(hours=2), 3)]
    )
    assert svg.startswith("<svg") and "<title>Running servers</title>" in svg
    assert svg.count("H") >= 2
    assert labels(svg, "tick x") == ["09:00", "09:30", "10:00", "10:30", "11:00"]
    assert labels(svg, "tick y") == ["0", "2", "4", "6", "8"]
    assert_text_inside(svg)
    assert "no data yet" in charts.line_chart("Active users", [])
    assert_text_inside(charts.line_chart("Active users", []))


def test_the_first_and_last_time_labels_are_anchored_inside():
    t0 = datetime(2026, 7, 14, 9, tzinfo=UTC)
    for span in (timedelta(seconds=90), timedelta(hours=3), timedelta(days=4), timedelta(days=120)):
        svg = charts.line_chart("x", [(t0, 1), (t0 + span, 2)])
        ticks = [t for t in texts(svg) if t.get("class") == "tick x"]
        assert ticks[0].get("text-anchor") == "start" and ticks[-1].get("text-anchor") == "end"
        assert all(t.get("text-anchor") == "middle" for t in ticks[1:-1])
        assert_text_inside(svg)


def test_time_labels_fit_the_span_and_never_overlap():
    t0 = datetime(2026, 7, 14, 9, tzinfo=UTC)
    minutes = charts.line_chart("x", [(t0, 1), (t0 + timedelta(seconds=90), 2)])
    assert labels(minutes, "tick x") == ["09:00:00", "09:00:45", "09:01:30"]
    week = charts.line_chart("x", [(t0, 1), (t0 + timedelta(days=4), 2)])
    assert labels(week, "tick x") == ["Tue 09:00", "Thu 09:00", "Sat 09:00"]
    semester = charts.line_chart("x", [(t0, 1), (t0 + timedelta(days=120), 2)])
    assert labels(semester, "tick x")[0] == "Jul 14" and labels(semester, "tick x")[-1] == "Nov 11"
    for svg in (minutes, week, semester):
        spans = []
        for t in texts(svg):
            if t.get("class") != "tick x":
                continue
            w, x = charts.text_width(t.text), float(t.get("x"))
            start = {"end": x - w, "middle": x - w / 2}.get(t.get("text-anchor"), x)
            spans.append((start, start + w))
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans


def test_charts_keep_their_text_at_11_px_or_more_on_any_screen():
    svg = charts.line_chart("x", [])
    root = ET.fromstring(svg)
    _, _, width, _ = (float(v) for v in root.get("viewBox").split())
    style = dict(part.split(":") for part in root.get("style").split(";"))
    smallest = min(float(t.get("font-size")) for t in root.iter(f"{SVG}text"))
    # shown at its narrowest, the smallest text is still 11 CSS px; at its widest, not huge
    assert float(style["min-width"].removesuffix("px")) / width * smallest >= 11
    assert float(style["max-width"].removesuffix("px")) / width * smallest <= 22
    assert root.get("width") == "100%"


def test_a_long_title_is_shortened_to_fit_and_kept_whole_in_the_tooltip():
    title = "Running servers of the ESIP summer meeting 2026, all three days, every profile"
    svg = charts.line_chart(title, [])
    assert f"<title>{title}</title>" in svg
    shown = labels(svg, "chart-title")[0]
    assert shown.endswith("…") and title.startswith(shown[:-1])
    assert_text_inside(svg)


def test_duration_bars_from_the_session_histogram():
    # sessions of 60, 1000, 4000, 4000, 40000 and 200000 s in the service's buckets, as
    # UsageStore.duration_histogram(SESSION_BUCKETS) counts them
    counts = list(zip([*SESSION_BUCKETS, math.inf], [1, 0, 1, 0, 2, 0, 0, 1, 0, 1]))
    bars = charts.duration_bars(counts)
    assert [label for label, _ in bars] == [
        "<5m",
        "5–15m",
        "15–30m",
        "30m–1h",
        "1–2h",
        "2–4h",
        "4–8h",
        "8–12h",
        "12h–1d",
        "1d+",
    ]
    assert [count for _, count in bars] == [1, 0, 1, 0, 2, 0, 0, 1, 0, 1]
    svg = charts.bar_chart("Session durations", bars)
    assert svg.count("<rect") == 10 and "1–2h: 2</title>" in svg
    assert labels(svg, "category") == [label for label, _ in bars]  # one per row: none overlap
    assert labels(svg, "value") == ["1", "0", "1", "0", "2", "0", "0", "1", "0", "1"]
    assert labels(svg, "tick x") == ["0", "1", "2"]
    assert_text_inside(svg)


def test_bar_lengths_are_the_counts():
    svg = charts.bar_chart("x", [("a", 3), ("b", 7), ("c", 0)])
    root = ET.fromstring(svg)
    grid = [float(g.get("x1")) for g in root.iter(f"{SVG}line") if g.get("class") == "grid x"]
    scale = (grid[-1] - grid[0]) / 8  # ticks 0, 2, 4, 6, 8
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert [w / scale for w in widths] == pytest.approx([3, 7, 0], abs=0.01)
    assert "no data yet" in charts.bar_chart("x", [])


# --- the stacked chart -------------------------------------------------------------------

TIMES = [0, 1, 2, 3, 4]
LAYERS = [  # three people over five seconds: waiting, working, done
    charts.Series("done", "#bee1be", [0, 0, 1, 1, 3]),
    charts.Series("working", "#4285f4", [0, 2, 2, 2, 0]),
    charts.Series("waiting", "#c8c8c8", [3, 1, 0, 0, 0]),
]


def test_stacked_heights_at_each_time_are_the_values():
    svg = charts.stacked_area_chart("People", TIMES, LAYERS)
    # each value holds for one second, the last one too: five equal columns
    assert read_stacks(svg, 0.1) == [("waiting", 3)]
    assert read_stacks(svg, 0.3) == [("working", 2), ("waiting", 1)]
    assert read_stacks(svg, 0.5) == read_stacks(svg, 0.7) == [("done", 1), ("working", 2)]
    assert read_stacks(svg, 0.9) == [("done", 3)]
    assert svg.count("<title>working: 2") == 2  # a run of equal values is one rectangle
    assert "<title>working: 2 (2.0s to 4.0s)</title>" in svg
    assert labels(svg, "tick x") == ["0.0s", "1.2s", "2.5s", "3.8s", "5.0s"]
    assert labels(svg, "tick y") == ["0", "1", "2", "3"]
    assert_text_inside(svg)


def test_the_legend_lists_the_top_layer_first():
    root = ET.fromstring(charts.stacked_area_chart("People", TIMES, LAYERS))
    legend = root.find(f"{SVG}g[@class='legend']")
    assert [t.text for t in legend.iter(f"{SVG}text")] == ["waiting", "working", "done"]


def test_stacks_are_scaled_to_a_round_axis_and_end_where_asked():
    series = [charts.Series("a", "#f00", [30, 30]), charts.Series("b", "#00f", [10, 31])]
    svg = charts.stacked_area_chart("x", [0, 60], series, end=600)
    assert labels(svg, "tick y") == ["0", "20", "40", "60", "80"]  # a top of 61: to 80, a line every 20
    assert read_stacks(svg, 0.05) == [("a", 30), ("b", 10)]
    assert read_stacks(svg, 0.95) == [("a", 30), ("b", 31)]  # the last value holds until the end
    assert labels(svg, "tick x") == ["0s", "2m30s", "5m00s", "7m30s", "10m00s"]
    assert_text_inside(svg)


def test_elapsed_labels_fit_the_span():
    assert charts.elapsed_label(2.5, 5) == "2.5s"
    assert charts.elapsed_label(45, 60) == "45s"
    assert charts.elapsed_label(185, 600) == "3m05s" and charts.elapsed_label(0, 600) == "0s"
    assert charts.elapsed_label(4800, 10000) == "1h20m"


def test_an_empty_stacked_chart_says_so():
    svg = charts.stacked_area_chart("x", [], LAYERS)
    assert "no data yet" in svg
    assert_text_inside(svg)
