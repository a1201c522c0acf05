"""Usage exports (CSV, JSON) streamed from the store, and totals computed from its records.

The exports are generators of text chunks: memory stays bounded by one chunk whatever the
number of sessions, so they serve a download or a CLI pipe of a year of workshops alike.
Times are ISO 8601 UTC with a ``Z``; ``duration_seconds`` is empty (CSV) or null (JSON) for a
session still running.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from datetime import datetime, timezone
from itertools import islice
from typing import Iterable, Iterator, TextIO

from .store import SampleRow, SessionRow, UsageStore, normalize_url, parse_stored_time

CSV_COLUMNS = ("user", "server", "profile", "started", "stopped", "duration_seconds", "stop_reason")
FORMATS = ("csv", "json")

_CHUNK_ROWS = 1000  # rows per yielded chunk: big enough for cheap writes, small in memory
_UTC = timezone.utc


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r} in a session row")
    return value.astimezone(_UTC)


def _chunks(rows: Iterable, counter: list[int]) -> Iterator[list]:
    """Rows in lists of up to _CHUNK_ROWS, counted into ``counter[0]``."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, _CHUNK_ROWS)):
        counter[0] += len(chunk)
        yield chunk


def _field_chunks(rows: Iterable[SessionRow], counter: list[int]) -> Iterator[list[tuple]]:
    """Rows as CSV_COLUMNS tuples, up to _CHUNK_ROWS a list (the exports' hot loop)."""
    utc = _UTC
    for chunk in _chunks(rows, counter):
        fields = []
        append = fields.append
        for _id, user, server, profile, started, stopped, reason in chunk:
            if started.tzinfo is not utc:
                started = _to_utc(started)
            if stopped is None:
                append((user, server, profile, started.isoformat()[:-6] + "Z", None, None, reason))
                continue
            if stopped.tzinfo is not utc:
                stopped = _to_utc(stopped)
            append((
                user, server, profile, started.isoformat()[:-6] + "Z", stopped.isoformat()[:-6] + "Z",
                (stopped - started).total_seconds(), reason,
            ))
        yield fields


def _iso_field_chunks(rows: Iterable[tuple], counter: list[int]) -> Iterator[list[tuple]]:
    """Like _field_chunks, from ``UsageStore.iter_sessions_iso`` rows (times already text).

    Same output: ``.000000`` is dropped as ``isoformat`` does; durations from the same
    microsecond arithmetic.
    """
    parse = parse_stored_time
    for chunk in _chunks(rows, counter):
        fields = []
        append = fields.append
        for _id, user, server, profile, started, stopped, reason in chunk:
            if stopped is None:
                append((user, server, profile, started.replace(".000000Z", "Z"), None, None, reason))
                continue
            append((
                user, server, profile, started.replace(".000000Z", "Z"), stopped.replace(".000000Z", "Z"),
                (parse(stopped) - parse(started)).total_seconds(), reason,
            ))
        yield fields


def sessions_csv(rows: Iterable[SessionRow]) -> Iterator[str]:
    """CSV text in chunks: the header line first, then up to 1000 rows a chunk.

    Lines end with ``\\n``; empty cells for missing values; quoting as ``csv`` does it.
    """
    return _sessions_csv(_field_chunks(rows, [0]))


def _sessions_csv(field_chunks: Iterator[list[tuple]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for fields in field_chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(fields)
        yield buffer.getvalue()


def sessions_json(rows: Iterable[SessionRow]) -> Iterator[str]:
    """One JSON document ``{"sessions": [{...}, ...]}`` in chunks, one session object a line.

    The objects carry the CSV_COLUMNS keys; the document is complete only once the generator
    is exhausted (it never holds the whole list).
    """
    return _sessions_json(_field_chunks(rows, [0]))


def _sessions_json(field_chunks: Iterator[list[tuple]]) -> Iterator[str]:
    yield '{"sessions": ['
    encode = json.JSONEncoder(ensure_ascii=False).encode
    separator = "\n"
    for fields in field_chunks:
        yield separator + ",\n".join([encode(dict(zip(CSV_COLUMNS, f))) for f in fields])
        separator = ",\n"
    yield "\n]}\n"


def node_hours(samples: list[SampleRow], users_per_node: int, now: datetime | None = None) -> float:
    """Node-hours: the integral over time of ``ceil(running_servers / users_per_node)``.

    Step-wise: each sample's count holds until the next sample, and the last one until
    ``now`` (nothing after the last sample when ``now`` is None). Unsorted input is fine.
    """
    if users_per_node < 1:
        raise ValueError("users_per_node must be at least 1")
    ordered = sorted(samples, key=lambda s: s.at)
    seconds = 0.0
    for current, following in zip(ordered, [*ordered[1:], None]):
        until = following.at if following is not None else now
        if until is None:
            break
        nodes = max(0, math.ceil(current.running_servers / users_per_node))
        span = (until - current.at).total_seconds()
        if span > 0:
            seconds += nodes * span
    return seconds / 3600.0


def export(
    url: str,
    fmt: str,
    out: TextIO,
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """Write the sessions overlapping [start, end) of the store at ``url`` as ``fmt``
    (``csv`` or ``json``) to ``out``; return how many sessions were written.

    A SQLite file that does not exist is an error (FileNotFoundError), not a new empty store.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database not in ("", ":memory:") and not database.startswith("file:"):
            if not os.path.exists(database):
                raise FileNotFoundError(f"no usage database at {database}")
    counter = [0]
    store = UsageStore(parsed)
    try:
        if store.dialect == "sqlite":  # the fast path: times stay text from file to output
            fields = _iso_field_chunks(store.iter_sessions_iso(start, end), counter)
        else:
            fields = _field_chunks(store.iter_sessions(start, end), counter)
        chunks = _sessions_csv(fields) if fmt == "csv" else _sessions_json(fields)
        write = out.write
        for chunk in chunks:
            write(chunk)
    finally:
        store.close()
    return counter[0]
