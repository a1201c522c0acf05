"""Usage exports (CSV, JSON streams) and node-hours."""

from __future__ import annotations

import csv
import io
import json
import types
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from jupyterhub_workshop.service.store import SessionRow, UsageStore
from jupyterhub_workshop.service.usage import database_url, export, sessions_csv, sessions_json
from jupyterhub_workshop.usage_accounting import CSV_COLUMNS, USAGE_COLUMNS, NodeHours, read_usage_export

UTC = UTC
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TAKEN = datetime(2025, 3, 2, 9, 30, 15, 250000, tzinfo=UTC)  # when the exports below are taken

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
    chunks = sessions_csv(iter(ROWS), TAKEN)
    assert isinstance(chunks, types.GeneratorType)
    header = next(chunks)
    assert header == ",".join(USAGE_COLUMNS) + ",exported\n"
    text = header + "".join(chunks)
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == list(CSV_COLUMNS)
    # every row says when the export was taken
    assert {row[-1] for row in parsed[1:]} == {"2025-03-02T09:30:15.250000Z"}
    parsed = [row[:-1] for row in parsed]
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
    assert list(sessions_csv([])) == [",".join(CSV_COLUMNS) + "\n"]


def test_json_is_one_valid_streamed_document():
    chunks = sessions_json(iter(ROWS), TAKEN)
    assert isinstance(chunks, types.GeneratorType)
    first = next(chunks)
    assert first == '{"exported": "2025-03-02T09:30:15.250000Z", "sessions": ['
    document = json.loads(first + "".join(chunks))
    assert list(document) == ["exported", "sessions"]
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
    assert json.loads("".join(sessions_json([], TAKEN))) == {
        "exported": "2025-03-02T09:30:15.250000Z",
        "sessions": [],
    }


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
        expected = "".join(render(store.iter_sessions(), TAKEN))
        window = (T0 + timedelta(hours=10), T0 + timedelta(hours=20))
        expected_window = "".join(render(store.iter_sessions(*window), TAKEN))
    out = io.StringIO()
    assert export(url, fmt, out, now=TAKEN) == 1300
    assert out.getvalue() == expected
    assert ".000000Z" not in expected and ".250001Z" in expected
    out = io.StringIO()
    export(url, fmt, out, *window, now=TAKEN)
    assert out.getvalue() == expected_window


def test_export_errors(filled_store, tmp_path):
    with pytest.raises(ValueError, match="format"):
        export(filled_store, "xml", io.StringIO())
    missing = tmp_path / "nope.sqlite"
    for name in (f"sqlite:///{missing}", str(missing)):
        with pytest.raises(FileNotFoundError, match=f"no usage database at {missing}"):
            export(name, "csv", io.StringIO())
    assert not missing.exists()  # an export never creates a database


def test_a_plain_path_is_a_sqlite_file(filled_store, tmp_path, monkeypatch):
    path = filled_store.removeprefix("sqlite:///")
    assert database_url(path).render_as_string() == f"sqlite:///{path}"
    monkeypatch.chdir(tmp_path)  # relative to where the command runs, as a shell user means it
    assert database_url("usage.sqlite").database == str(tmp_path / "usage.sqlite")
    by_path, by_url = io.StringIO(), io.StringIO()
    assert (
        export("usage.sqlite", "csv", by_path, now=TAKEN)
        == export(filled_store, "csv", by_url, now=TAKEN)
        == 7
    )
    assert by_path.getvalue() == by_url.getvalue()


def test_what_is_not_a_usage_database_is_named_and_left_alone(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but long enough to have an SQLite header's worth of text\n" * 3)
    with pytest.raises(
        ValueError, match=f"^{text}: cannot read it as a usage database: file is not a database"
    ):
        export(str(text), "csv", io.StringIO())
    # the hub's own database (or any other): said so, and nothing is written to it
    hub_db = tmp_path / "jupyterhub.sqlite"
    engine = sa.create_engine(f"sqlite:///{hub_db}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"))
    engine.dispose()
    before = hub_db.read_bytes()
    with pytest.raises(ValueError, match=f"^{hub_db}: no workshop usage records in this database"):
        export(str(hub_db), "csv", io.StringIO())
    assert hub_db.read_bytes() == before
    with pytest.raises(ValueError, match="^--db '://x' is not a database URL or a file: give the usage"):
        export("://x", "csv", io.StringIO())
    with pytest.raises(ValueError, match="^nosuchdb://host/db: cannot open it as a database"):
        export("nosuchdb://host/db", "csv", io.StringIO())
    with pytest.raises(
        ValueError, match="^postgresql\\+\\w+://127.0.0.1:1/db: cannot read it as a usage database: "
    ):
        export("postgresql://127.0.0.1:1/db", "csv", io.StringIO())


def test_an_export_from_the_database_is_as_of_the_services_last_word(tmp_path):
    """The hub (and its service) stopped for the night at 17:00:40 with a server running: an
    export the morning after counts it until then, not until the morning."""
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    evening = datetime(2025, 3, 1, 17, tzinfo=UTC)
    with UsageStore(url) as store:
        store.open_session("ws-001", "", None, evening - timedelta(hours=8))
        store.record_sample(evening, 1, 1)
        store.seen_running(evening + timedelta(seconds=40))
    out = io.StringIO()
    export(url, "csv", out)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert (row["stopped"], row["exported"]) == ("", "2025-03-01T17:00:40Z")


def test_plan_reads_back_when_an_export_was_taken(filled_store, tmp_path):
    for fmt in ("csv", "json"):
        path = tmp_path / f"usage.{fmt}"
        with open(path, "w", newline="", encoding="utf-8") as out:
            export(filled_store, fmt, out, now=TAKEN)
        read = read_usage_export(path)
        assert read.exported == TAKEN
        assert [s.user for s in read.sessions] == [f"ws-{i:03d}" for i in range(7)]
        assert [s.stopped is None for s in read.sessions] == [False] * 5 + [True] * 2


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_on_each_backend(db_url, fmt):  # noqa: F811 - the fixture
    with UsageStore(db_url) as store:
        for i in range(5):
            started = T0 + timedelta(hours=i, microseconds=333 * i)
            store.open_session(f"ws-{i}", "", "small" if i % 2 else None, started)
            if i < 3:
                store.close_session(f"ws-{i}", "", started + timedelta(minutes=10 * i + 1), "night")
        render = sessions_csv if fmt == "csv" else sessions_json
        expected = "".join(render(store.iter_sessions(T0 + timedelta(hours=1)), TAKEN))
    out = io.StringIO()
    assert export(db_url, fmt, out, start=T0 + timedelta(hours=1), now=TAKEN) == 4
    assert out.getvalue() == expected
    if fmt == "json":
        assert [s["user"] for s in json.loads(out.getvalue())["sessions"]] == ["ws-1", "ws-2", "ws-3", "ws-4"]
