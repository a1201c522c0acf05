"""The usage store on SQLite and on PostgreSQL (when WORKSHOP_TEST_POSTGRES_URL answers)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from jupyterhub_workshop.service.series import bucket_peaks
from jupyterhub_workshop.service.store import STOP_REASONS, SessionRow, UsageStore, normalize_url

UTC = UTC
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(db_url):
    s = UsageStore(db_url)
    yield s
    s.close()


def assert_utc(value: datetime):
    assert value.tzinfo is UTC, value


def test_open_session_is_idempotent(store):
    first = store.open_session("ws-001", "", "small", T0)
    again = store.open_session("ws-001", "", "large", T0 + timedelta(minutes=5))
    assert again == first
    other_server = store.open_session("ws-001", "gpu", None, T0)
    other_user = store.open_session("ws-002", "", None, T0)
    assert len({first, other_server, other_user}) == 3
    (row,) = [s for s in store.open_sessions() if s.id == first]
    assert (row.profile, row.started) == ("small", T0)  # unchanged by the repeat


def test_open_session_race_returns_the_winner(store, db_url, monkeypatch):
    """Two writers that both saw no open session: the unique index makes the second reuse it."""
    with UsageStore(db_url) as other:
        winner = other.open_session("ws-001", "", None, T0)
    real = store._open_id
    calls = []

    def stale_first_look(conn, user, server):
        calls.append(user)
        return None if len(calls) == 1 else real(conn, user, server)

    monkeypatch.setattr(store, "_open_id", stale_first_look)
    assert store.open_session("ws-001", "", None, T0 + timedelta(seconds=1)) == winner
    assert len(calls) == 2
    assert [s.id for s in store.open_sessions()] == [winner]


def test_close_session(store):
    store.open_session("ws-001", "", None, T0)
    assert store.close_session("ws-001", "", T0 + timedelta(hours=1), "idle")
    assert not store.close_session("ws-001", "", T0 + timedelta(hours=2), "idle")  # none open
    assert not store.close_session("nobody", "", T0, "user")
    # after closing, the same server starts a new session
    reopened = store.open_session("ws-001", "", None, T0 + timedelta(hours=3))
    (closed, opened) = list(store.iter_sessions())
    assert opened.id == reopened and closed.id != reopened
    assert (closed.stopped, closed.stop_reason) == (T0 + timedelta(hours=1), "idle")
    assert (opened.stopped, opened.stop_reason) == (None, None)


def test_close_session_with_bad_reason(store):
    store.open_session("ws-001", "", None, T0)
    with pytest.raises(ValueError, match="unknown reason"):
        store.close_session("ws-001", "", T0 + timedelta(hours=1), "bored")
    assert [s.user for s in store.open_sessions()] == ["ws-001"]  # still open
    for reason in sorted(STOP_REASONS):
        store.open_session(f"u-{reason}", "", None, T0)
        assert store.close_session(f"u-{reason}", "", T0 + timedelta(seconds=1), reason)


def test_open_sessions(store):
    store.open_session("a", "", None, T0)
    store.open_session("b", "named", "gpu", T0 + timedelta(minutes=1))
    store.open_session("c", "", None, T0 + timedelta(minutes=2))
    store.close_session("a", "", T0 + timedelta(hours=1), "night")
    rows = store.open_sessions()
    assert [(r.user, r.server, r.profile) for r in rows] == [("b", "named", "gpu"), ("c", "", None)]
    assert all(isinstance(r, SessionRow) and r.stopped is None for r in rows)


def test_samples(store):
    store.record_sample(T0 + timedelta(minutes=2), 3, 4)
    store.record_sample(T0, 1, 2)
    store.record_sample(T0 + timedelta(minutes=1), 2, 3)
    rows = store.samples()
    assert [(r.at - T0, r.active_users, r.running_servers) for r in rows] == [
        (timedelta(0), 1, 2),
        (timedelta(minutes=1), 2, 3),
        (timedelta(minutes=2), 3, 4),
    ]
    window = store.samples(T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))  # [start, end)
    assert [r.running_servers for r in window] == [3]
    assert store.sample_span() == (T0, T0 + timedelta(minutes=2))
    # streamed in recording order, every page
    assert [r.active_users for r in store.iter_samples(batch=2)] == [3, 1, 2]


def test_sample_span_before_the_first_sample(store):
    assert store.sample_span() is None
    assert list(store.iter_samples()) == []
    assert store.sample_peaks(10) == []


class StoreWithoutDateArithmetic(UsageStore):
    """As on a database the store has no slice expression for: peaks computed in Python."""

    def _slice_of(self, column, first, width):
        return None


def test_sample_peaks_in_sql_match_their_definition(store, db_url):
    rng = random.Random(3)
    # 2,000 samples ~61 s apart with jitter (never exactly on a slice boundary), shuffled
    times = [T0 + timedelta(seconds=61 * i + rng.uniform(1, 20)) for i in range(2000)]
    rng.shuffle(times)
    for at in times:
        store.record_sample(at, rng.randint(0, 300), rng.randint(0, 400))
    first, last = store.sample_span()
    expected = bucket_peaks(
        ((s.at, (s.active_users, s.running_servers)) for s in store.iter_samples()), first, last, 37
    )
    assert len(expected) == 37
    assert store.sample_peaks(37) == expected
    fallback = StoreWithoutDateArithmetic(db_url)
    try:
        assert fallback.sample_peaks(37) == expected
    finally:
        fallback.close()


def test_culls_by_reason_excludes_dry_runs(store):
    store.record_cull(T0, "a", "", "idle", False)
    store.record_cull(T0, "b", "", "idle", False)
    store.record_cull(T0, "c", "", "night", False)
    store.record_cull(T0, "d", "", "max-age", True)
    store.record_cull(T0, "e", "", "night", True)
    assert store.culls_by_reason() == {"idle": 2, "night": 1}
    with pytest.raises(ValueError):
        store.record_cull(T0, "f", "", "because", False)


def test_opt_outs_per_night_are_idempotent(store):
    night = date(2025, 3, 1)
    store.add_opt_out("a", night, T0)
    store.add_opt_out("a", night, T0 + timedelta(minutes=5))  # repeat: nothing changes
    store.add_opt_out("b", night, T0 + timedelta(minutes=1))
    store.add_opt_out("a", night + timedelta(days=1), T0 + timedelta(days=1))
    store.add_opt_out("old", night - timedelta(days=3), T0 - timedelta(days=3))
    assert store.opted_out(night) == {"a", "b"}
    assert store.opted_out(night + timedelta(days=1)) == {"a"}
    assert store.opted_out(night + timedelta(days=2)) == set()


def test_iter_sessions_filters_by_overlap(store):
    # a: 09-10, b: 10-11, c: 11-12, d: open since 12
    for i, user in enumerate("abc"):
        store.open_session(user, "", None, T0 + timedelta(hours=i))
        store.close_session(user, "", T0 + timedelta(hours=i + 1), "user")
    store.open_session("d", "", None, T0 + timedelta(hours=3))

    def users(start=None, end=None):
        return [s.user for s in store.iter_sessions(start, end)]

    assert users() == ["a", "b", "c", "d"]
    assert users(T0 + timedelta(minutes=30), T0 + timedelta(hours=1, minutes=30)) == ["a", "b"]
    # [10:00, 11:00): a stopped exactly at 10:00 and c started exactly at 11:00 do not overlap
    assert users(T0 + timedelta(hours=1), T0 + timedelta(hours=2)) == ["b"]
    assert users(start=T0 + timedelta(hours=5)) == ["d"]  # still running
    assert users(end=T0 + timedelta(hours=1)) == ["a"]
    assert users(T0 + timedelta(days=1), T0 + timedelta(days=2)) == ["d"]
    assert users(T0 - timedelta(days=2), T0 - timedelta(days=1)) == []


def test_iter_sessions_streams_in_batches(store, monkeypatch):
    for i in range(23):
        store.open_session(f"u{i:02d}", "", None, T0 + timedelta(minutes=i))
        if i % 2:
            store.close_session(f"u{i:02d}", "", T0 + timedelta(minutes=i, seconds=30), "idle")

    queries = []
    monkeypatch.setattr(store, "_begin", _counting(store._begin, queries))
    rows = store.iter_sessions(batch=5)
    assert queries == []  # a generator: nothing fetched before it is iterated
    first = next(rows)
    assert first.user == "u00" and len(queries) == 1
    rest = list(rows)
    assert [r.user for r in [first, *rest]] == [f"u{i:02d}" for i in range(23)]
    assert len(queries) == 5  # 5+5+5+5+3 rows
    # filtered streaming pages correctly too: the open (even) ones, and those stopped after :10
    later = [r.user for r in store.iter_sessions(start=T0 + timedelta(minutes=10), batch=2)]
    assert later == [f"u{i:02d}" for i in range(23) if i % 2 == 0 or i >= 10]
    assert list(store.session_durations(batch=4)) == [30.0] * 11


def _counting(begin, calls):
    def counted():
        calls.append(1)
        return begin()

    return counted


def test_session_durations_window(store):
    store.open_session("a", "", None, T0)
    store.close_session("a", "", T0 + timedelta(minutes=90), "idle")
    store.open_session("b", "", None, T0 + timedelta(days=1))
    store.close_session("b", "", T0 + timedelta(days=1, seconds=12.5), "user")
    store.open_session("c", "", None, T0)  # open: no duration
    assert list(store.session_durations()) == [5400.0, 12.5]
    assert list(store.session_durations(T0 + timedelta(hours=12))) == [12.5]
    assert list(store.session_durations(end=T0 + timedelta(hours=12))) == [5400.0]


def test_times_come_back_aware_utc(store):
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2025, 3, 1, 11, 0, 0, 123456, tzinfo=plus_two)  # 09:00:00.123456Z
    store.open_session("a", "", None, local)
    store.record_sample(local, 1, 1)
    store.record_cull(local, "a", "", "idle", False)
    (session,) = store.open_sessions()
    assert session.started == local and session.started.utcoffset() == timedelta(0)
    assert_utc(session.started)
    assert session.started.isoformat() == "2025-03-01T09:00:00.123456+00:00"
    store.close_session("a", "", local + timedelta(hours=1), "idle")
    (closed,) = store.iter_sessions()
    assert_utc(closed.started)
    assert_utc(closed.stopped)
    (sample,) = store.samples()
    assert_utc(sample.at)
    assert sample.at == local
    # naive datetimes are ambiguous: refused rather than guessed
    with pytest.raises(ValueError, match="naive"):
        store.open_session("b", "", None, datetime(2025, 3, 1, 9))
    with pytest.raises(ValueError, match="naive"):
        store.record_sample(datetime(2025, 3, 1, 9), 0, 0)


def test_store_reopens_existing_database(db_url):
    with UsageStore(db_url) as first:
        sid = first.open_session("a", "", None, T0)
    with UsageStore(db_url) as second:  # create_all on existing tables is a no-op
        assert [s.id for s in second.open_sessions()] == [sid]
        assert second.open_session("a", "", None, T0) == sid


def test_in_memory_sqlite_is_shared_across_calls():
    with UsageStore("sqlite://") as s:
        s.open_session("a", "", None, T0)
        assert [r.user for r in s.open_sessions()] == ["a"]


def test_safe_url_hides_password():
    url = normalize_url("postgresql://svc:secret@db.example/usage")
    assert url.drivername in ("postgresql+psycopg", "postgresql+psycopg2", "postgresql")
    assert "secret" not in url.render_as_string(hide_password=True)


# --- SQLite specifics -------------------------------------------------------------------


def test_sqlite_uses_wal(tmp_path):
    path = tmp_path / "usage.sqlite"
    with UsageStore(f"sqlite:///{path}") as s:
        s.record_sample(T0, 0, 0)
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    # WAL is a property of the file: a plain sqlite3 connection sees it too
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_usable_from_a_worker_thread(tmp_path):
    import threading

    s = UsageStore(f"sqlite:///{tmp_path / 'usage.sqlite'}")
    errors = []

    def work(n):
        try:
            for i in range(20):
                s.open_session(f"t{n}-{i}", "", None, T0)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    work(3)
    for t in threads:
        t.join()
    assert errors == []
    assert len(s.open_sessions()) == 80
    s.close()


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta, timezone
    from jupyterhub_workshop.service.store import UsageStore

    store = UsageStore(sys.argv[1])
    t0 = datetime(2025, 3, 1, 9, tzinfo=timezone.utc)
    for i in range(int(sys.argv[2])):
        store.open_session(f"u{i}", "", "small", t0 + timedelta(seconds=i))
        store.record_sample(t0 + timedelta(seconds=i), i, i)
        print(i, flush=True)  # both rows of i are committed before this line
    print("done", flush=True)
    """
)


def test_killed_writer_loses_nothing(tmp_path):
    path = tmp_path / "usage.sqlite"
    url = f"sqlite:///{path}"
    total = 1_000_000  # far more than it can write before the kill
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(total)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    reported = []
    try:
        for line in writer.stdout:
            reported.append(int(line))
            if len(reported) >= 300:
                break
        writer.send_signal(signal.SIGKILL)  # mid-way: no chance to flush, close or checkpoint
        # lines printed between our last read and the kill were committed too
        rest = writer.stdout.read()
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    reported += [int(x) for x in rest.split() if x != "done"]
    assert writer.returncode == -signal.SIGKILL, writer.stderr.read()
    assert len(reported) >= 300 and reported[-1] < total - 1, "the writer must be killed mid-way"
    assert path.with_name(path.name + "-wal").exists()  # the kill left an un-checkpointed WAL

    with UsageStore(url) as store:
        users = {s.user for s in store.iter_sessions()}
        expected = {f"u{i}" for i in reported}
        assert expected <= users, f"lost {len(expected - users)} committed sessions"
        samples = {s.running_servers for s in store.samples()}
        assert set(reported) <= samples
        # at most the one row in flight at the kill may be there beyond what was reported
        assert len(users) - len(expected) <= 1
