"""The hub's server events: the hub's handler (in a real jupyter_events EventLogger, set up as the
hub sets it up) writing the spool, and the service's reader."""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jupyterhub
import pytest
from jupyter_events.logger import EventLogger
from traitlets.config import Config

from jupyterhub_workshop.hubconfig.services import install_server_events
from jupyterhub_workshop.service.events import (
    SERVER_ACTION,
    EventSpoolReader,
    ServerEvent,
    ServerEventSpool,
    SpoolPosition,
    parse_event,
    parse_timestamp,
)

pytestmark = pytest.mark.jh55  # JupyterHub 5.5's schema (version 1, an integer) and 6.1's ("1")


def hub_event_logger(c: Config) -> EventLogger:
    """The EventLogger as JupyterHub's init_eventlog builds it, with the hub's own schemas."""
    eventlog = EventLogger(config=c)
    for schema in (Path(jupyterhub.__file__).parent / "event-schemas").glob("**/*.yaml"):
        eventlog.register_event_schema(schema)
    return eventlog


def emit(eventlog: EventLogger, action: str, user: str, server: str = "") -> None:
    eventlog.emit(schema_id=SERVER_ACTION, data={"action": action, "username": user, "servername": server})


def read_all(reader: EventSpoolReader, position: SpoolPosition) -> tuple[list[ServerEvent], SpoolPosition]:
    events = []
    for batch in reader.read(position):
        events.extend(batch.events)
        position = batch.position
    return events, position


def test_timestamps_as_jupyter_events_writes_them():
    expected = datetime(2026, 7, 14, 8, 0, 0, 123456, tzinfo=UTC)
    assert parse_timestamp("2026-07-14T08:00:00.123456+00:00Z") == expected  # jupyter_events 0.12
    assert parse_timestamp("2026-07-14T08:00:00.123456Z") == expected
    assert parse_timestamp("2026-07-14T08:00:00.123456") == expected
    assert parse_timestamp("2026-07-14T02:00:00.123456-06:00") == expected
    assert parse_timestamp("2026-07-14T02:00:00.123456-06:00").tzinfo is UTC
    with pytest.raises(ValueError):
        parse_timestamp(None)


def test_event_lines():
    line = json.dumps(
        {
            "__timestamp__": "2026-07-14T08:00:00+00:00Z",
            "__schema__": SERVER_ACTION,
            "__schema_version__": 1,
            "action": "stop",
            "username": "ws001",
            "servername": "gpu",
        }
    )
    assert parse_event(line) == ServerEvent(datetime(2026, 7, 14, 8, tzinfo=UTC), "stop", "ws001", "gpu")
    assert parse_event(json.dumps({"__schema__": "https://example.org/other"})) is None
    for bad in ("{not json", "[1]", json.dumps({"__schema__": SERVER_ACTION, "action": "restart"})):
        with pytest.raises(ValueError):
            parse_event(bad)


def test_the_hub_handler_writes_what_the_reader_reads(tmp_path):
    c = Config()
    path = tmp_path / "spool" / "events.jsonl"
    install_server_events(c, path)
    eventlog = hub_event_logger(c)
    before = datetime.now(UTC)
    emit(eventlog, "start", "ws001")
    emit(eventlog, "start", "ws002", "gpu")
    emit(eventlog, "stop", "ws001")
    after = datetime.now(UTC)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it names users
    assert len(path.read_text().splitlines()) == 3
    events, position = read_all(EventSpoolReader(path), SpoolPosition("", 0))
    assert [(e.action, e.user, e.server) for e in events] == [
        ("start", "ws001", ""),
        ("start", "ws002", "gpu"),
        ("stop", "ws001", ""),
    ]
    assert all(before <= e.at <= after and e.at.tzinfo is UTC for e in events)
    assert events == sorted(events, key=lambda e: e.at)
    assert position.offset == path.stat().st_size
    assert read_all(EventSpoolReader(path), position) == ([], position)  # nothing new


def test_only_server_events_go_to_the_spool(tmp_path):
    c = Config()
    path = tmp_path / "events.jsonl"
    install_server_events(c, path)
    eventlog = hub_event_logger(c)
    other = {
        "$id": "https://example.org/events/other",
        "version": "1",
        "title": "other",
        "description": "an extension's event",
        "type": "object",
        "properties": {"thing": {"type": "string", "title": "thing", "description": "x"}},
    }
    eventlog.register_event_schema(other)
    eventlog.emit(schema_id=other["$id"], data={"thing": "x"})
    emit(eventlog, "start", "ws001")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["__schema__"] for line in lines] == [SERVER_ACTION]


def test_installing_keeps_other_handlers_and_installs_once(tmp_path):
    c = Config()
    own = logging.StreamHandler()
    c.EventLogger.handlers = [own]
    first = install_server_events(c, tmp_path / "events.jsonl")
    again = install_server_events(c, tmp_path / "events.jsonl")
    assert again is first and c.EventLogger.handlers == [own, first]
    assert not (tmp_path / "events.jsonl").exists()  # nothing written before the first event


def test_a_failing_write_is_logged_and_never_raised_into_the_hub(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    c = Config()
    install_server_events(c, blocker / "events.jsonl")  # its folder cannot be made
    eventlog = hub_event_logger(c)
    with caplog.at_level(logging.WARNING, logger="JupyterHub"):
        emit(eventlog, "start", "ws001")  # the hub's request goes on
        emit(eventlog, "stop", "ws001")
    warnings = [r for r in caplog.records if r.name == "JupyterHub"]
    assert len(warnings) == 2 and "could not write a server event" in warnings[0].getMessage()
    assert "next pass will reconcile" in warnings[0].getMessage()


def test_the_reader_waits_for_a_line_being_written(tmp_path):
    path = tmp_path / "events.jsonl"
    handler = ServerEventSpool(path)
    line = handler.format(
        logging.makeLogRecord(
            {
                "msg": {
                    "__timestamp__": "2026-07-14T08:00:00+00:00Z",
                    "__schema__": SERVER_ACTION,
                    "action": "start",
                    "username": "ws001",
                    "servername": "",
                }
            }
        )
    )
    half = len(line) // 2
    with open(path, "w") as f:
        f.write(line + "\n" + line[:half])
    reader = EventSpoolReader(path)
    events, position = read_all(reader, SpoolPosition("", 0))
    assert len(events) == 1 and position.offset == len(line) + 1
    with open(path, "a") as f:
        f.write(line[half:] + "\n")
    events, position = read_all(reader, position)
    assert len(events) == 1 and position.offset == 2 * (len(line) + 1)


def test_a_new_reader_starts_after_what_was_written_before_it(tmp_path):
    path = tmp_path / "events.jsonl"
    reader = EventSpoolReader(path)
    assert reader.start_position() == SpoolPosition("", 0)  # nothing yet: read it from its start
    c = Config()
    install_server_events(c, path)
    eventlog = hub_event_logger(c)
    emit(eventlog, "start", "old")
    start = reader.start_position()
    assert start.offset == path.stat().st_size
    emit(eventlog, "start", "new")
    events, _ = read_all(reader, start)
    assert [e.user for e in events] == ["new"]


def test_every_event_is_read_once_across_turnovers(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    c = Config()
    install_server_events(c, path, max_bytes=2000)  # about eight events a file
    eventlog = hub_event_logger(c)
    reader = EventSpoolReader(path, batch_bytes=700)
    position = SpoolPosition("", 0)
    seen = []
    sent = 0
    # the reader falls behind by up to a file's worth (8 events), in steps of every size
    for step in (1, 3, 7, 8, 2, 5, 8, 1, 6, 4):
        for _ in range(step):
            emit(eventlog, "start", f"u{sent:03d}")
            sent += 1
        events, position = read_all(reader, position)
        seen += [e.user for e in events]
    assert Path(str(path) + ".1").exists()  # it did turn over
    assert seen == [f"u{i:03d}" for i in range(sent)]
    assert "lost" not in caplog.text

    # turned over twice while the reader was away: it says so, and reads what is left
    for _ in range(30):
        emit(eventlog, "start", f"u{sent:03d}")
        sent += 1
    with caplog.at_level(logging.WARNING):
        events, position = read_all(reader, position)
    assert "turned over twice" in caplog.text
    users = [e.user for e in events]
    assert users == sorted(users) and users[-1] == f"u{sent - 1:03d}" and len(users) < 30


def test_a_batch_position_resumes_exactly(tmp_path):
    """Stop after any batch (a crash before the next one is stored): resuming from its position
    reads each event once."""
    path = tmp_path / "events.jsonl"
    c = Config()
    install_server_events(c, path, max_bytes=3000)
    eventlog = hub_event_logger(c)
    for i in range(40):
        emit(eventlog, "start" if i % 2 == 0 else "stop", f"u{i:03d}")
    reader = EventSpoolReader(path, batch_bytes=500)
    position, seen = SpoolPosition("", 0), []
    while True:
        batches = reader.read(position)
        batch = next(batches, None)
        batches.close()
        if batch is None:
            break
        seen += [e.user for e in batch.events]
        position = batch.position
    assert seen[-1] == "u039" and seen == sorted(set(seen))


def test_a_spool_replaced_by_hand_is_read_from_its_start(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    c = Config()
    install_server_events(c, path)
    eventlog = hub_event_logger(c)
    emit(eventlog, "start", "a")
    reader = EventSpoolReader(path)
    _, position = read_all(reader, SpoolPosition("", 0))
    os.remove(path)
    emit(eventlog, "start", "b")  # a handler that was not told: it writes to the removed file
    c2 = Config()
    install_server_events(c2, path)
    emit(hub_event_logger(c2), "start", "c")
    with caplog.at_level(logging.WARNING):
        events, _ = read_all(reader, position)
    assert [e.user for e in events] == ["c"] and "was replaced" in caplog.text


def test_event_times_are_utc_whatever_the_hub_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "America/Denver")
    c = Config()
    install_server_events(c, tmp_path / "events.jsonl")
    emit(hub_event_logger(c), "start", "a")
    [event], _ = read_all(EventSpoolReader(tmp_path / "events.jsonl"), SpoolPosition("", 0))
    assert event.at.utcoffset() == timedelta(0) and abs(event.at - datetime.now(UTC)) < timedelta(seconds=5)
