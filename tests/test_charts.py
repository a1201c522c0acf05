"""SVG charts: the admin page's line and bar charts, and the stacked chart of the load test's plot.

The stacked chart is read back as a person reads it: the plot area from the grid lines, the
scale from the y axis' top label, which colour is which from the legend, then the heights.
"""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop import charts
from jupyterhub_workshop.service.metrics import WorkshopMetrics

SVG = "{http://www.w3.org/2000/svg}"


def read_stacks(svg: str, fraction: float) -> list[tuple[str, float]]:
    """The layers of a stacked chart at ``fraction`` of the plot's width, bottom first, as
    (legend name, value); asserts that they stand on the baseline, one on top of the other."""
    root = ET.fromstring(svg)
    grid = root.findall(f"{SVG}line")
    top, bottom = min(float(g.get("y1")) for g in grid), max(float(g.get("y1")) for g in grid)
    left, right = float(grid[0].get("x1")), float(grid[0].get("x2"))
    y_max = max(float(t.text) for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end")
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


# --- the admin page's charts -------------------------------------------------------------


def test_line_chart_draws_steps_with_time_labels():
    t0 = datetime(2026, 7, 14, 9, tzinfo=UTC)
    svg = charts.line_chart(
        "Running servers", [(t0, 1), (t0 + timedelta(hours=1), 7), (t0 + timedelta(hours=2), 3)]
    )
    assert svg.startswith("<svg") and "<title>Running servers</title>" in svg
    assert svg.count("H") >= 2 and ">09:00<" in svg and ">11:00<" in svg and ">10<" in svg  # y axis to 10
    assert "no data yet" in charts.line_chart("Active users", [])


def test_time_labels_fit_the_span():
    t0 = datetime(2026, 7, 14, 9, tzinfo=UTC)
    minutes = charts.line_chart("x", [(t0, 1), (t0 + timedelta(seconds=90), 2)])
    assert ">09:00:00<" in minutes and ">09:01:30<" in minutes
    week = charts.line_chart("x", [(t0, 1), (t0 + timedelta(days=4), 2)])
    assert ">Tue 09:00<" in week and ">Sat 09:00<" in week
    semester = charts.line_chart("x", [(t0, 1), (t0 + timedelta(days=120), 2)])
    assert ">Jul 14<" in semester and ">Nov 11<" in semester


def test_duration_bars_from_the_metrics_histogram():
    metrics = WorkshopMetrics()
    metrics.load({}, [60, 1000, 4000, 4000, 40000, 200000], node_hours=0)
    counts = metrics.session_duration_counts()
    bars = charts.duration_bars(counts)
    assert [label for label, _ in bars] == [
        "<5m",
        "<15m",
        "<30m",
        "<1h",
        "<2h",
        "<4h",
        "<8h",
        "<12h",
        "<1d",
        "1d+",
    ]
    assert dict(bars) == {
        "<5m": 1,
        "<15m": 0,
        "<30m": 1,
        "<1h": 0,
        "<2h": 2,
        "<4h": 0,
        "<8h": 0,
        "<12h": 1,
        "<1d": 0,
        "1d+": 1,
    }
    svg = charts.bar_chart("Session durations", bars)
    assert svg.count("<rect") == 10 and "&lt;2h: 2" in svg


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
    assert ">0.0s<" in svg and ">5.0s<" in svg


def test_the_legend_lists_the_top_layer_first():
    root = ET.fromstring(charts.stacked_area_chart("People", TIMES, LAYERS))
    legend = root.find(f"{SVG}g[@class='legend']")
    assert [t.text for t in legend.iter(f"{SVG}text")] == ["waiting", "working", "done"]


def test_stacks_are_scaled_to_a_round_axis_and_end_where_asked():
    series = [charts.Series("a", "#f00", [30, 30]), charts.Series("b", "#00f", [10, 31])]
    svg = charts.stacked_area_chart("x", [0, 60], series, end=600)
    assert ">80<" in svg and ">60<" in svg  # the axis goes to 80 for a top of 61, a line every 20
    assert read_stacks(svg, 0.05) == [("a", 30), ("b", 10)]
    assert read_stacks(svg, 0.95) == [("a", 30), ("b", 31)]  # the last value holds until the end
    assert ">0s<" in svg and ">2m30s<" in svg and ">10m00s<" in svg


def test_elapsed_labels_fit_the_span():
    assert charts.elapsed_label(2.5, 5) == "2.5s"
    assert charts.elapsed_label(45, 60) == "45s"
    assert charts.elapsed_label(185, 600) == "3m05s" and charts.elapsed_label(0, 600) == "0s"
    assert charts.elapsed_label(4800, 10000) == "1h20m"


def test_an_empty_stacked_chart_says_so():
    assert "no data yet" in charts.stacked_area_chart("x", [], LAYERS)
