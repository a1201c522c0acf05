"""Node-hours and usage totals: one rule for the service, the plan and the benchmarks."""

from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop.usage_accounting import NodeHours, read_usage_csv, read_usage_export, usage_totals

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def sample(minutes: float, running: int) -> tuple[datetime, int]:
    return T0 + timedelta(minutes=minutes), running


def node_hours(samples, users_per_node, until=None) -> float:
    meter = NodeHours.from_samples(samples, users_per_node)
    if until is not None:
        meter.hold_until(until)
    return meter.hours


def test_node_hours_step_wise():
    # 4 users per node, 5 servers running for 2 h: 2 nodes x 2 h
    assert node_hours([sample(0, 5), sample(120, 5)], 4) == 4.0
    # the last sample holds until `until`; without it, it adds nothing
    assert node_hours([sample(0, 5)], 4, until=T0 + timedelta(hours=2)) == 4.0
    assert node_hours([sample(0, 5)], 4) == 0.0
    # 1 h at 1 node, 30 min at 0 nodes, 30 min at 3 nodes; input order does not matter
    samples = [sample(90, 9), sample(0, 1), sample(60, 0), sample(120, 9)]
    assert node_hours(samples, 4) == pytest.approx(1.0 + 0.0 + 1.5)
    assert node_hours(samples, 4, until=T0 + timedelta(hours=3)) == pytest.approx(2.5 + 3.0)
    # exactly full nodes, and an `until` before the last sample adds nothing
    assert node_hours([sample(0, 8), sample(60, 8)], 4, until=T0) == 2.0
    assert node_hours([], 4, until=T0) == 0.0
    assert node_hours([sample(0, -3), sample(60, 0)], 4) == 0.0  # never below zero nodes
    with pytest.raises(ValueError):
        node_hours([sample(0, 1)], 0)


def test_the_meter_adds_samples_as_they_come():
    samples = [sample(0, 1), sample(60, 0), sample(90, 9), sample(120, 9)]
    meter = NodeHours(4)
    for at, running in samples:
        meter.add(at, running)
    assert meter.hours == node_hours(list(reversed(samples)), 4) == pytest.approx(1.0 + 0.0 + 1.5)
    with pytest.raises(ValueError):
        NodeHours(0)


USAGE = """user,server,profile,started,stopped,duration_seconds,stop_reason
a,,,2026-07-14T08:00:00Z,2026-07-14T10:00:00Z,7200.0,idle
b,,,2026-07-14T08:00:00Z,2026-07-14T09:00:00Z,3600.0,user
c,,,2026-07-14T08:30:00Z,2026-07-14T09:30:00Z,3600.0,night
d,,,2026-07-14T09:30:00Z,,,
"""


def test_usage_totals_integrate_nodes_over_time(tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text(USAGE)
    sessions = read_usage_csv(path)
    totals = usage_totals(sessions, users_per_node=2)
    # running: 08:00-08:30 two (1 node), 08:30-09:00 three (2), 09:00-09:30 two (1), 09:30-10:00 two (1);
    # d is still open and counts until the last time in the export (10:00)
    assert totals["node_hours"] == pytest.approx(0.5 * 1 + 0.5 * 2 + 0.5 * 1 + 0.5 * 1)
    assert totals["server_hours"] == pytest.approx(2 + 1 + 1 + 0.5)
    assert (totals["peak_servers"], totals["peak_nodes"], totals["open_sessions"], totals["users"]) == (
        3,
        2,
        1,
        4,
    )
    assert totals["peak_at"] == datetime(2026, 7, 14, 8, 30, tzinfo=UTC).isoformat()


def test_a_stop_and_a_start_at_the_same_instant_do_not_make_a_peak(tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text(
        "user,started,stopped\na,2026-07-14T08:00:00Z,2026-07-14T09:00:00Z\n"
        "b,2026-07-14T09:00:00Z,2026-07-14T10:00:00Z\n"
    )
    assert usage_totals(read_usage_csv(path), users_per_node=1)["peak_servers"] == 1


# an export taken at 09:00 during the event: b and c still running, the latest time in it 08:59:59
DURING = """user,server,profile,started,stopped,duration_seconds,stop_reason,exported
a,,,2026-07-14T08:00:00Z,2026-07-14T08:30:00Z,1800.0,user,2026-07-14T09:00:00Z
b,,,2026-07-14T08:50:00Z,,,,2026-07-14T09:00:00Z
c,,,2026-07-14T08:59:59Z,,,,2026-07-14T09:00:00Z
"""


def test_sessions_still_open_count_until_the_export_was_taken(tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text(DURING)
    export = read_usage_export(path)
    assert export.exported == datetime(2026, 7, 14, 9, tzinfo=UTC)
    totals = usage_totals(export.sessions, users_per_node=1, until=export.exported)
    assert (totals["peak_servers"], totals["open_sessions"]) == (2, 2)
    assert totals["server_hours"] == pytest.approx(0.5 + 10 / 60 + 1 / 3600, abs=1e-4)
    assert totals["last"] == "2026-07-14T09:00:00+00:00"
    # an older export (no such column) still reads: counted to its last time, as before
    path.write_text("\n".join(line.rsplit(",", 1)[0] for line in DURING.splitlines()) + "\n")
    older = read_usage_export(path)
    assert older.exported is None and len(older.sessions) == 3
    assert usage_totals(older.sessions, users_per_node=1)["peak_servers"] == 1  # what it can tell


def test_a_json_export_reads_like_the_csv(tmp_path):
    path = tmp_path / "usage.json"
    path.write_text(
        '{"exported": "2026-07-14T09:00:00Z", "sessions": [\n'
        '{"user": "b", "server": "", "profile": null, "started": "2026-07-14T08:50:00Z", "stopped": null},\n'
        '{"user": "a", "server": "gpu", "profile": "large", "started": "2026-07-14T08:00:00Z",'
        ' "stopped": "2026-07-14T08:30:00Z"}\n]}\n'
    )
    export = read_usage_export(path)
    assert export.exported == datetime(2026, 7, 14, 9, tzinfo=UTC)
    assert [(s.user, s.server, s.profile, s.stopped is None) for s in export.sessions] == [
        ("b", "", "", True),
        ("a", "gpu", "large", False),
    ]
    path.write_text('{"sessions": [{"user": "a", "started": "yesterday"}]}')
    with pytest.raises(ValueError, match="usage.json: session 1: "):
        read_usage_export(path)
    path.write_text('{"sessions": [')
    with pytest.raises(ValueError, match="usage.json:1: not JSON"):
        read_usage_export(path)
    path.write_text("[]")
    with pytest.raises(ValueError, match="usage.json:1: not a usage export"):
        read_usage_export(path)
