"""The usage store on SQLite and on PostgreSQL (when WORKSHOP_TEST_POSTGRES_URL answers)."""

from __future__ import annotations

import math
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
import sqlalchemy as sa

from jupyterhub_workshop.service.events import ServerEvent, SpoolPosition
from jupyterhub_workshop.service.series import bucket_peaks
from jupyterhub_workshop.service.store import (
    STOP_REASONS,
    ListedServer,
    SessionRow,
    UsageStore,
    last_known_running,
    normalize_url,
)
from jupyterhub_workshop.usage_accounting import NodeHours

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


def test_sample_peaks_are_kept_until_a_sample_is_added_by_any_writer(store, db_url):
    for minute, active in enumerate([1, 5, 2]):
        store.record_sample(T0 + timedelta(minutes=minute), active, 0)
    assert [v for _, v in store.sample_peaks(3)] == [(1, 0), (5, 0), (2, 0)]
    other = UsageStore(db_url)  # another process's store on the same database
    try:
        # inside the span (a clock set back): the same first and last times, a new id
        other.record_sample(T0 + timedelta(seconds=150), 9, 1)
    finally:
        other.close()
    assert [v for _, v in store.sample_peaks(3)] == [(1, 0), (5, 0), (9, 1)]
    store.record_sample(T0 + timedelta(minutes=3), 7, 0)
    assert max(v for _, v in store.sample_peaks(3)) == (9, 1) and len(store.sample_peaks(3)) == 3


def test_the_duration_histogram_is_kept_until_a_session_ends(store, db_url):
    bounds = [60, 3600]
    store.open_session("a", "", None, T0)
    store.close_session("a", "", T0 + timedelta(seconds=30), "idle")
    assert store.duration_histogram(bounds) == [(60, 1), (3600, 0), (math.inf, 0)]
    store.open_session("b", "", None, T0)  # open: not in the histogram
    assert store.duration_histogram(bounds) == [(60, 1), (3600, 0), (math.inf, 0)]
    other = UsageStore(db_url)  # another process's store on the same database
    try:
        other.close_session("b", "", T0 + timedelta(minutes=10), "night")
    finally:
        other.close()
    assert store.duration_histogram(bounds) == [(60, 1), (3600, 1), (math.inf, 0)]
    assert store.duration_histogram([60]) == [(60, 1), (math.inf, 1)]


def test_a_cull_is_counted_once_from_the_session_it_closes(store):
    for user in "abcde":
        store.open_session(user, "", None, T0)
    # decided and sent; decided again at the next pass (the first stop failed): one cull row
    first = store.record_cull(T0, "a", "", "idle", False, sent=T0)
    assert store.record_cull(T0 + timedelta(minutes=1), "a", "", "idle", False, sent=T0) == first
    store.record_cull(T0, "b", "", "night", False, sent=T0)
    store.record_cull(T0, "c", "", "max-age", True)  # dry runs close nothing
    store.record_cull(T0, "c", "", "max-age", True)
    assert store.culls_by_reason() == {}  # decisions are not culls until their session closes
    assert set(store.sent_culls()) == {("a", ""), ("b", "")}
    # whatever closes the session (an event, a pass, after a restart), it closes as the cull
    [a_closed] = store.apply_server_events([ServerEvent(T0 + timedelta(seconds=5), "stop", "a", "")])
    assert (a_closed.reason, a_closed.stopped) == ("idle", T0 + timedelta(seconds=5))
    [b_closed] = store.reconcile([], {("c", ""), ("d", ""), ("e", "")}, T0 + timedelta(minutes=2), "unknown")
    assert (b_closed.user, b_closed.reason) == ("b", "night")
    store.close_session("d", "", T0 + timedelta(hours=1), "user")
    assert store.culls_by_reason() == {"idle": 1, "night": 1}
    # one row per session for real culls, one per session for dry runs
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT username, dry_run FROM workshop_culls ORDER BY username")).all()
    assert [(user, bool(dry)) for user, dry in rows] == [("a", False), ("b", False), ("c", True)]
    assert store.sent_culls() == {}
    with pytest.raises(ValueError):
        store.record_cull(T0, "e", "", "user", False)  # not a cull reason


def test_a_refused_stop_is_not_the_cull_of_a_later_stop(store):
    store.open_session("a", "", None, T0)
    cull = store.record_cull(T0, "a", "", "idle", False, sent=T0)
    store.clear_stop_sent([cull])  # the hub refused; the user stops the server later
    [closed] = store.apply_server_events([ServerEvent(T0 + timedelta(hours=1), "stop", "a", "")])
    assert closed.reason == "user" and store.culls_by_reason() == {}


def test_server_events_open_and_close_sessions_at_their_times(store):
    t = [T0 + timedelta(seconds=i) for i in range(10)]
    events = [
        ServerEvent(t[0], "start", "a", ""),
        ServerEvent(t[1], "start", "a", "gpu"),
        ServerEvent(t[2], "stop", "a", ""),
        ServerEvent(t[3], "start", "b", ""),
        ServerEvent(t[4], "start", "a", ""),
    ]
    changes = store.apply_server_events(events)
    assert [(c.opened, c.user, c.server) for c in changes] == [
        (True, "a", ""),
        (True, "a", "gpu"),
        (False, "a", ""),
        (True, "b", ""),
        (True, "a", ""),
    ]
    assert changes[2].reason == "user" and changes[2].stopped == t[2]
    rows = [(r.user, r.server, r.started, r.stopped, r.stop_reason) for r in store.iter_sessions()]
    assert rows == [
        ("a", "", t[0], t[2], "user"),
        ("a", "gpu", t[1], None, None),
        ("b", "", t[3], None, None),
        ("a", "", t[4], None, None),
    ]
    # read again (a spool read twice, a crash before the position was saved): nothing changes
    assert store.apply_server_events(events) == []
    assert [(r.user, r.server, r.started, r.stopped) for r in store.iter_sessions()] == [
        row[:4] for row in rows
    ]
    # a stop older than the open session's start, a start while one is open: ignored
    assert (
        store.apply_server_events([ServerEvent(t[3], "stop", "a", ""), ServerEvent(t[5], "start", "b", "")])
        == []
    )


def test_spool_position_is_saved_with_the_events(store):
    assert store.spool_position("server-actions", "/srv/x.jsonl") is None
    position = SpoolPosition("64:1234", 4096)
    store.apply_server_events(
        [ServerEvent(T0, "start", "a", "")], ("server-actions", "/srv/x.jsonl", position)
    )
    assert store.spool_position("server-actions", "/srv/x.jsonl") == position
    assert store.spool_position("server-actions", "/elsewhere.jsonl") is None  # moved: start afresh
    store.save_spool_position("server-actions", "/srv/x.jsonl", SpoolPosition("64:99", 10))
    assert store.spool_position("server-actions", "/srv/x.jsonl") == SpoolPosition("64:99", 10)


def test_reconcile_opens_fills_profiles_and_closes_what_is_gone(store):
    store.apply_server_events([ServerEvent(T0, "start", "a", ""), ServerEvent(T0, "start", "gone", "")])
    now = T0 + timedelta(minutes=1)
    running = [
        ListedServer("a", "", "large", T0 - timedelta(seconds=3)),  # opened by its event: profile added
        ListedServer("b", "", "small", T0 + timedelta(seconds=20)),  # new to the records
        ListedServer("c", "named", None, None),  # the hub gives no start: now
    ]
    present = {("a", ""), ("b", ""), ("c", "named"), ("d", "")}  # d: still starting
    changes = store.reconcile(running, present, now, "unknown")
    assert sorted((c.opened, c.user, c.reason) for c in changes) == [
        (False, "gone", "unknown"),
        (True, "b", None),
        (True, "c", None),
    ]
    rows = {r.user: r for r in store.iter_sessions()}
    assert (rows["a"].started, rows["a"].profile) == (T0, "large")  # the event's start is kept
    assert (rows["b"].started, rows["b"].profile) == (T0 + timedelta(seconds=20), "small")
    assert rows["c"].started == now
    assert rows["gone"].stopped == T0  # nobody saw it stop: at the last moment it was known to run
    assert store.reconcile(running, present, now, "unknown") == []  # idempotent
    with pytest.raises(ValueError):
        store.reconcile([], set(), now, "bored")


def test_a_stop_nobody_saw_ends_a_session_when_it_was_last_known_to_run(store):
    store.apply_server_events([ServerEvent(T0, "start", s, "") for s in ("a", "b", "c", "d", "e")])
    listed = [ListedServer(s, "", None, T0) for s in ("a", "b", "c", "d", "e")]
    everyone = {(s, "") for s in ("a", "b", "c", "d", "e")}
    store.reconcile(listed, everyone, T0 + timedelta(minutes=1), "unknown")  # a pass lists them
    store.reconcile(listed[1:], everyone - {("a", "")}, T0 + timedelta(minutes=2), "unknown")
    store.record_cull(T0, "d", "", "idle", False, sent=T0 + timedelta(minutes=2, seconds=5))
    store.seen_running(T0 + timedelta(minutes=2, seconds=30))  # the service stops, b..e running
    store.seen_running(T0 + timedelta(minutes=2))  # an earlier moment changes nothing
    # back an hour later: b and d went meanwhile; without events a pass finding e gone is its stop
    back = T0 + timedelta(hours=1)
    store.reconcile([listed[2]], {("c", "")} | {("e", "")}, back, "unknown")
    store.reconcile([listed[2]], {("c", "")}, back + timedelta(minutes=1), "user")
    rows = {r.user: (r.stopped, r.stop_reason) for r in store.iter_sessions()}
    assert rows == {
        "a": (T0 + timedelta(minutes=1), "unknown"),  # its last pass
        "b": (T0 + timedelta(minutes=2, seconds=30), "unknown"),  # when the service stopped
        "c": (None, None),
        "d": (T0 + timedelta(minutes=2, seconds=30), "idle"),
        "e": (back + timedelta(minutes=1), "user"),
    }
    with store.engine.connect() as conn:
        [seen] = conn.execute(sa.text("SELECT seen FROM workshop_sessions WHERE username = 'c'")).one()
    assert seen is not None


def test_a_server_started_during_the_listing_is_not_gone(store):
    # the listing began at T0+20s; b's start event, read after it, is not in it
    store.apply_server_events(
        [ServerEvent(T0, "start", "a", ""), ServerEvent(T0 + timedelta(seconds=30), "start", "b", "")]
    )
    [closed] = store.reconcile([], set(), T0 + timedelta(minutes=1), "unknown", T0 + timedelta(seconds=20))
    assert closed.user == "a"
    assert [s.user for s in store.open_sessions()] == ["b"]


def test_the_records_know_until_the_last_pass_event_or_stop(store):
    assert store.last_known() is None
    store.apply_server_events([ServerEvent(T0, "start", "a", ""), ServerEvent(T0, "start", "b", "")])
    assert store.last_known() == T0
    store.record_sample(T0 + timedelta(minutes=1), 2, 2)
    assert store.last_known() == T0 + timedelta(minutes=1)
    store.apply_server_events([ServerEvent(T0 + timedelta(minutes=1, seconds=20), "stop", "b", "")])
    assert store.last_known() == T0 + timedelta(minutes=1, seconds=20)
    store.seen_running(T0 + timedelta(minutes=1, seconds=40))  # the service stops, a still running
    assert store.last_known() == T0 + timedelta(minutes=1, seconds=40)


def test_last_known_running_is_the_latest_of_what_is_known():
    assert last_known_running(T0, None, None) == T0
    later = T0 + timedelta(minutes=3)
    assert last_known_running(T0, later, None) == later
    assert last_known_running(T0, later, T0 + timedelta(minutes=4)) == T0 + timedelta(minutes=4)
    assert last_known_running(later, T0, None) == later  # never before its start


def test_a_close_never_goes_before_its_start(store):
    store.open_session("a", "", None, T0 + timedelta(seconds=2))
    change = store.close_open_session("a", "", T0 + timedelta(seconds=5), "unknown")
    assert change.stopped == T0 + timedelta(seconds=5)
    store.open_session("b", "", None, T0 + timedelta(seconds=2))  # the hub's clock ran ahead
    [closed] = store.reconcile([], set(), T0, "unknown")
    assert closed.stopped == T0 + timedelta(seconds=2)
    assert store.close_open_session("nobody", "", T0, "unknown") is None


def test_set_profile_names_the_latest_session_once(store):
    store.apply_server_events(
        [ServerEvent(T0, "start", "a", ""), ServerEvent(T0 + timedelta(seconds=2), "stop", "a", "")]
    )
    assert store.set_profile("a", "", "gpu")  # a short session, already over
    assert not store.set_profile("a", "", "small")  # has one
    assert not store.set_profile("nobody", "", "small")
    assert [r.profile for r in store.iter_sessions()] == ["gpu"]


def duration_buckets(durations, bounds):
    """The reference: Prometheus' le buckets counted in Python."""
    counts = [0] * len(bounds)
    for seconds in durations:
        counts[next(i for i, bound in enumerate(bounds) if seconds <= bound)] += 1
    return list(zip(bounds, counts))


class StoreWithoutDurationArithmetic(UsageStore):
    def _duration_expression(self):
        return None


def test_duration_histogram_is_counted_by_the_database(store, db_url):
    rng = random.Random(5)
    bounds = [300, 900, 1800, 3600, 7200]
    exact = [299.999999, 300, 300.000001, 0, 3600, 7200.5, 86400 * 3]
    durations = exact + [rng.uniform(0, 20000) for _ in range(300)]
    for i, seconds in enumerate(durations):
        started = T0 + timedelta(seconds=rng.uniform(0, 86400), microseconds=rng.randrange(10**6))
        store.open_session(f"u{i}", "", None, started)
        store.close_session(f"u{i}", "", started + timedelta(seconds=seconds), "idle")
    store.open_session("running", "", None, T0)  # not finished: not counted
    expected = duration_buckets(list(store.session_durations()), [*bounds, math.inf])
    assert [b for b, _ in expected] == [300, 900, 1800, 3600, 7200, math.inf]
    assert store.duration_histogram(bounds) == expected
    assert store.duration_histogram([*bounds, math.inf]) == expected
    assert sum(count for _, count in expected) == len(durations)
    assert expected[0][1] >= 3 and expected[-1][1] >= 1  # boundaries land in the buckets they bound
    fallback = StoreWithoutDurationArithmetic(db_url)
    try:
        assert fallback.duration_histogram(bounds) == expected
    finally:
        fallback.close()
    for bad in ([300, 300], [900, 300], [math.inf, 300]):
        with pytest.raises(ValueError):
            store.duration_histogram(bad)
    assert store.duration_histogram([]) == [(math.inf, len(durations))]


def test_duration_histogram_groups_in_the_database(store):
    for i in range(50):
        store.open_session(f"u{i}", "", None, T0)
        store.close_session(f"u{i}", "", T0 + timedelta(seconds=60 * i), "idle")
    statements = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert sum(count for _, count in store.duration_histogram([600, 1800])) == 50
    # two counts say whether the finished sessions changed; one query groups them
    *counts, query = [s for s in statements if "workshop_sessions" in s]
    assert len(counts) == 2 and all("count(" in c.lower() and "GROUP BY" not in c.upper() for c in counts)
    assert "GROUP BY" in query.upper() and "CASE" in query.upper()


def test_node_seconds_sum_in_the_database_match_their_definition(store, db_url):
    rng = random.Random(11)
    times = [
        T0 + timedelta(seconds=60 * i + rng.uniform(0, 30), microseconds=rng.randrange(10**6))
        for i in range(500)
    ]
    rng.shuffle(times)
    for at in times:
        store.record_sample(at, 0, rng.randint(0, 45))
    reference = NodeHours.from_samples(((s.at, s.running_servers) for s in store.samples()), 8)
    meter = store.node_seconds(8)
    # to the millisecond of each of 500 samples, at most 6 nodes
    assert math.isclose(meter.seconds, reference.seconds, abs_tol=0.001 * 500 * 6)
    assert meter.last == reference.last
    before = reference.seconds
    # it continues like the reference
    meter.add(max(times) + timedelta(minutes=5), 3)
    reference.add(max(times) + timedelta(minutes=5), 3)
    assert math.isclose(meter.seconds, reference.seconds, abs_tol=0.001 * 500 * 6)
    fallback = UsageStore(db_url)
    try:
        fallback.dialect = "elsewhere"  # a database without window functions: summed in Python
        streamed = fallback.node_seconds(8)
        assert math.isclose(streamed.seconds, before, rel_tol=1e-9)
    finally:
        fallback.close()


def test_samples_keep_the_peaks_between_them(store):
    store.record_sample(T0, 1, 2)  # an older row: no peaks kept
    store.record_sample(T0 + timedelta(minutes=1), 0, 0, peak_active_users=4, peak_running_servers=5)
    store.record_sample(T0 + timedelta(minutes=2), 3, 3, peak_active_users=1, peak_running_servers=2)
    rows = store.samples()
    assert [(r.peak_active_users, r.peak_running_servers) for r in rows] == [(None, None), (4, 5), (3, 3)]
    # the charts show the peaks, never below the values at the sample
    assert [values for _, values in store.sample_peaks(3)] == [(1, 2), (4, 5), (3, 3)]
    assert max(running for _, (_, running) in store.sample_peaks(1)) == 5


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


def test_recent_stops_are_a_users_last_stops_without_them(store, db_url):
    for n, reason in enumerate(["idle", "user", "night", "unknown", "max-age", "idle", "closed"]):
        store.open_session("ws-001", "", None, T0 + timedelta(hours=n))
        store.close_session("ws-001", "", T0 + timedelta(hours=n, minutes=30), reason)
    store.open_session("ws-002", "", None, T0)
    store.close_session("ws-002", "", T0 + timedelta(minutes=5), "idle")
    store.open_session("ws-001", "", None, T0 + timedelta(hours=9))  # open: not a stop
    stops = store.recent_stops("ws-001", 5)
    assert [reason for _, reason, _ in stops] == ["closed", "idle", "max-age", "unknown", "night"]
    assert stops[0][0] == T0 + timedelta(hours=6, minutes=30)
    assert store.recent_stops("nobody") == []
