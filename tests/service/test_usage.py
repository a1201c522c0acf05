"""Usage exports (CSV, JSON streams) and node-hours."""

from __future__ import annotations

import csv
import io
import json
import types
from datetime import UTC, datetime, timedelta, timezone

import pytest

from jupyterhub_workshop.service.store import SessionRow, UsageStore
from jupyterhub_workshop.service.usage import export, sessions_csv, sessions_json
from jupyterhub_workshop.usage_accounting import USAGE_COLUMNS, NodeHours

UTC = UTC
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

ROWS = [
    SessionRow(1, "ws-001", "", "small", T0, T0 + timedelta(hours=1, seconds=30), "idle"),
    SessionRow(2, 'o"brien, jr', "my server", 'say "hi", ok', T0, T0 + timedelta(microseconds=1500), "user"),
    SessionRow(3, "ws-003", "", None, T0 + timedelta(microseconds=250), None, None),
    SessionRow(
        4,
        "zoë\nline",
        "",
        "gpu",
        T0.astimezone(timezone(timedelta(hours=-7))),
        T0 + timedelta(days=1),
        "night",
    ),
]


def test_csv_header_then_rows():
    chunks = sessions_csv(iter(ROWS))
    assert isinstance(chunks, types.GeneratorType)
    header = next(chunks)
    assert header == ",".join(USAGE_COLUMNS) + "\n"
    text = header + "".join(chunks)
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == list(USAGE_COLUMNS)
    assert parsed[1] == [
        "ws-001",
        "",
        "small",
        "2025-03-01T09:00:00Z",
        "2025-03-01T10:00:30Z",
        "3630.0",
        "idle",
    ]
    # quotes and commas survive a round trip
    assert parsed[2] == [
        'o"brien, jr',
        "my server",
        'say "hi", ok',
        "2025-03-01T09:00:00Z",
        "2025-03-01T09:00:00.001500Z",
        "0.0015",
        "user",
    ]
    # open session: empty stopped, duration and reason; no profile: empty cell
    assert parsed[3] == ["ws-003", "", "", "2025-03-01T09:00:00.000250Z", "", "", ""]
    # other zones are written as UTC; a newline inside a value is quoted
    assert parsed[4] == [
        "zoë\nline",
        "",
        "gpu",
        "2025-03-01T09:00:00Z",
        "2025-03-02T09:00:00Z",
        "86400.0",
        "night",
    ]
    assert len(parsed) == 5
    assert '"o""brien, jr"' in text


def test_csv_chunks_are_bounded():
    many = (SessionRow(i, f"u{i}", "", None, T0, T0 + timedelta(seconds=i), "idle") for i in range(2500))
    chunks = list(sessions_csv(many))
    assert len(chunks) == 1 + 3  # header, 1000 + 1000 + 500 rows
    assert [c.count("\n") for c in chunks] == [1, 1000, 1000, 500]


def test_csv_of_nothing_is_the_header():
    assert list(sessions_csv([])) == [",".join(USAGE_COLUMNS) + "\n"]


def test_json_is_one_valid_streamed_document():
    chunks = sessions_json(iter(ROWS))
    assert isinstance(chunks, types.GeneratorType)
    first = next(chunks)
    assert first == '{"sessions": ['
    document = json.loads(first + "".join(chunks))
    assert list(document) == ["sessions"]
    sessions = document["sessions"]
    assert [list(s) for s in sessions] == [list(USAGE_COLUMNS)] * 4
    assert sessions[0] == {
        "user": "ws-001",
        "server": "",
        "profile": "small",
        "started": "2025-03-01T09:00:00Z",
        "stopped": "2025-03-01T10:00:30Z",
        "duration_seconds": 3630.0,
        "stop_reason": "idle",
    }
    assert sessions[1]["user"] == 'o"brien, jr'
    assert sessions[2] == {
        "user": "ws-003",
        "server": "",
        "profile": None,
        "started": "2025-03-01T09:00:00.000250Z",
        "stopped": None,
        "duration_seconds": None,
        "stop_reason": None,
    }
    assert sessions[3]["user"] == "zoë\nline" and sessions[3]["started"] == "2025-03-01T09:00:00Z"


def test_json_streams_without_building_the_list():
    consumed = []

    def rows():
        for i in range(2500):
            consumed.append(i)
            yield SessionRow(i, f"u{i}", "", None, T0, None, None)

    chunks = sessions_json(rows())
    next(chunks)  # the opening
    assert consumed == []
    next(chunks)  # the first 1000 sessions
    assert len(consumed) == 1000
    rest = list(chunks)
    assert len(consumed) == 2500
    assert rest[-1] == "\n]}\n"


def test_json_of_nothing():
    assert json.loads("".join(sessions_json([]))) == {"sessions": []}


def test_naive_times_are_refused():
    row = SessionRow(1, "a", "", None, datetime(2025, 3, 1, 9), None, None)
    with pytest.raises(ValueError, match="naive"):
        list(sessions_csv([row]))


def test_node_hours_on_store_samples(tmp_path):
    with UsageStore(f"sqlite:///{tmp_path / 'usage.sqlite'}") as store:
        for minute, running in [(0, 5), (60, 12), (120, 0)]:
            store.record_sample(T0 + timedelta(minutes=minute), running, running)
        samples = [(s.at, s.running_servers) for s in store.samples()]
        assert NodeHours.from_samples(samples, 4).hours == pytest.approx(2 + 3)


@pytest.fixture
def filled_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    with UsageStore(url) as store:
        for i in range(7):
            store.open_session(f"ws-{i:03d}", "" if i % 3 else "named", "small", T0 + timedelta(hours=i))
            if i < 5:
                store.close_session(
                    f"ws-{i:03d}", "" if i % 3 else "named", T0 + timedelta(hours=i, minutes=30), "idle"
                )
    return url


def test_export_csv(filled_store):
    out = io.StringIO()
    assert export(filled_store, "csv", out) == 7
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [r["user"] for r in rows] == [f"ws-{i:03d}" for i in range(7)]
    assert rows[0]["server"] == "named" and rows[1]["server"] == ""
    assert [r["duration_seconds"] for r in rows] == ["1800.0"] * 5 + ["", ""]


def test_export_json_window(filled_store):
    out = io.StringIO()
    n = export(filled_store, "json", out, start=T0 + timedelta(hours=2), end=T0 + timedelta(hours=4))
    sessions = json.loads(out.getvalue())["sessions"]
    assert n == len(sessions) == 2
    assert [s["user"] for s in sessions] == ["ws-002", "ws-003"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_writes_what_the_row_functions_write(tmp_path, fmt):
    """export() from a database is byte for byte sessions_csv/json of the same rows."""
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    with UsageStore(url) as store:
        for i in range(1300):  # more than one chunk
            started = T0 + timedelta(minutes=i, microseconds=(i * 7919) % 3 * 250_001)
            user = f"ws-{i % 50:03d}" if i % 11 else f'o"dd, {i % 50}'
            store.open_session(user, "" if i % 5 else "named", ["small", None, 'a "b"'][i % 3], started)
            if i < 1270:
                stopped = started + timedelta(seconds=i * 37, microseconds=(i * 104729) % 1_000_000 * (i % 2))
                store.close_session(user, "" if i % 5 else "named", stopped, "idle")
        render = sessions_csv if fmt == "csv" else sessions_json
        expected = "".join(render(store.iter_sessions()))
        window = (T0 + timedelta(hours=10), T0 + timedelta(hours=20))
        expected_window = "".join(render(store.iter_sessions(*window)))
    out = io.StringIO()
    assert export(url, fmt, out) == 1300
    assert out.getvalue() == expected
    assert ".000000Z" not in expected and ".250001Z" in expected
    out = io.StringIO()
    export(url, fmt, out, *window)
    assert out.getvalue() == expected_window


def test_export_errors(filled_store, tmp_path):
    with pytest.raises(ValueError, match="format"):
        export(filled_store, "xml", io.StringIO())
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(FileNotFoundError):
        export(f"sqlite:///{missing}", "csv", io.StringIO())
    assert not missing.exists()  # an export never creates a database


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_on_each_backend(db_url, fmt):  # noqa: F811 - the fixture
    with UsageStore(db_url) as store:
        for i in range(5):
            started = T0 + timedelta(hours=i, microseconds=333 * i)
            store.open_session(f"ws-{i}", "", "small" if i % 2 else None, started)
            if i < 3:
                store.close_session(f"ws-{i}", "", started + timedelta(minutes=10 * i + 1), "night")
        render = sessions_csv if fmt == "csv" else sessions_json
        expected = "".join(render(store.iter_sessions(T0 + timedelta(hours=1))))
    out = io.StringIO()
    assert export(db_url, fmt, out, start=T0 + timedelta(hours=1)) == 4
    assert out.getvalue() == expected
    if fmt == "json":
        assert [s["user"] for s in json.loads(out.getvalue())["sessions"]] == ["ws-1", "ws-2", "ws-3", "ws-4"]
