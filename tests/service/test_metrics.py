from datetime import datetime, timedelta, timezone

from jupyterhub_workshop import charts
from jupyterhub_workshop.service.metrics import WorkshopMetrics


def test_line_chart_draws_steps_with_time_labels():
    t0 = datetime(2026, 7, 14, 9, tzinfo=timezone.utc)
    svg = charts.line_chart("Running servers", [(t0, 1), (t0 + timedelta(hours=1), 7), (t0 + timedelta(hours=2), 3)])
    assert svg.startswith("<svg") and "<title>Running servers</title>" in svg
    assert svg.count("H") >= 2 and ">09:00<" in svg and ">11:00<" in svg and ">10<" in svg  # y axis to 10
    assert "no data yet" in charts.line_chart("Active users", [])


def test_time_labels_fit_the_span():
    t0 = datetime(2026, 7, 14, 9, tzinfo=timezone.utc)
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
    assert [label for label, _ in bars] == ["<5m", "<15m", "<30m", "<1h", "<2h", "<4h", "<8h", "<12h", "<1d", "1d+"]
    assert dict(bars) == {"<5m": 1, "<15m": 0, "<30m": 1, "<1h": 0, "<2h": 2, "<4h": 0, "<8h": 0,
                          "<12h": 1, "<1d": 0, "1d+": 1}
    svg = charts.bar_chart("Session durations", bars)
    assert svg.count("<rect") == 10 and "&lt;2h: 2" in svg


def test_metrics_continue_from_the_store_and_price_node_hours():
    metrics = WorkshopMetrics(price_per_node_hour=0.384)
    metrics.load({"idle": 3, "night": 12}, [600.0, 7200.0], node_hours=10.0)
    metrics.running_servers.set(42)
    text = metrics.render().decode()
    assert 'workshop_culls_total{reason="night"} 12.0' in text
    assert 'workshop_culls_total{reason="max-age"} 0.0' in text
    assert "workshop_running_servers 42.0" in text
    assert "workshop_session_duration_seconds_count 2.0" in text
    assert "workshop_node_hours 10.0" in text and "workshop_cost 3.84" in text
