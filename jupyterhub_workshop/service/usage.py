"""Usage exports (CSV, JSON) streamed from the store.

The exports are generators of text chunks: memory stays bounded by one chunk whatever the
number of sessions, so they serve a download or a CLI pipe of a year of workshops alike.
Times are ISO 8601 UTC with a ``Z``; ``duration_seconds`` is empty (CSV) or null (JSON) for a
session still running.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TextIO

from ..times import UTC, as_utc
from ..usage_accounting import USAGE_COLUMNS
from .store import SessionRow, UsageStore, normalize_url

FORMATS = ("csv", "json")

_CHUNK_ROWS = 1000  # rows per yielded chunk: big enough for cheap writes, small in memory


def _chunks(rows: Iterable, counter: list[int]) -> Iterator[list]:
    """Rows in lists of up to _CHUNK_ROWS, counted into ``counter[0]``."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, _CHUNK_ROWS)):
        counter[0] += len(chunk)
        yield chunk


def _field_chunks(rows: Iterable[SessionRow], counter: list[int]) -> Iterator[list[tuple]]:
    """Rows as USAGE_COLUMNS tuples, up to _CHUNK_ROWS a list (the exports' hot loop)."""
    utc = UTC
    for chunk in _chunks(rows, counter):
        fields = []
        append = fields.append
        for _id, user, server, profile, started, stopped, reason in chunk:
            if started.tzinfo is not utc:
                started = as_utc(started)
            if stopped is None:
                append((user, server, profile, started.isoformat()[:-6] + "Z", None, None, reason))
                continue
            if stopped.tzinfo is not utc:
                stopped = as_utc(stopped)
            append(
                (
                    user,
                    server,
                    profile,
                    started.isoformat()[:-6] + "Z",
                    stopped.isoformat()[:-6] + "Z",
                    (stopped - started).total_seconds(),
                    reason,
                )
            )
        yield fields


def sessions_csv(rows: Iterable[SessionRow]) -> Iterator[str]:
    """CSV text in chunks: the header line first, then up to 1000 rows a chunk.

    Lines end with ``\\n``; empty cells for missing values; quoting as ``csv`` does it.
    """
    return _sessions_csv(_field_chunks(rows, [0]))


def _sessions_csv(field_chunks: Iterator[list[tuple]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(USAGE_COLUMNS)
    yield buffer.getvalue()
    for fields in field_chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(fields)
        yield buffer.getvalue()


def sessions_json(rows: Iterable[SessionRow]) -> Iterator[str]:
    """One JSON document ``{"sessions": [{...}, ...]}`` in chunks, one session object a line.

    The objects carry the USAGE_COLUMNS keys; the document is complete only once the generator
    is exhausted (it never holds the whole list).
    """
    return _sessions_json(_field_chunks(rows, [0]))


def _sessions_json(field_chunks: Iterator[list[tuple]]) -> Iterator[str]:
    yield '{"sessions": ['
    encode = json.JSONEncoder(ensure_ascii=False).encode
    separator = "\n"
    for fields in field_chunks:
        yield separator + ",\n".join([encode(dict(zip(USAGE_COLUMNS, f))) for f in fields])
        separator = ",\n"
    yield "\n]}\n"


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
        fields = _field_chunks(store.iter_sessions(start, end), counter)
        chunks = _sessions_csv(fields) if fmt == "csv" else _sessions_json(fields)
        write = out.write
        for chunk in chunks:
            write(chunk)
    finally:
        store.close()
    return counter[0]


# --- command line: `jupyterhub-workshop usage export` ---------------------------------------


def add_arguments(parser, typed_time) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    out = actions.add_parser("export", help="write recorded sessions as CSV or JSON")
    out.add_argument(
        "--db",
        required=True,
        help="SQLAlchemy URL of the service database, e.g. sqlite:///workshop-usage.sqlite",
    )
    out.add_argument(
        "--format",
        choices=FORMATS,
        default="csv",
        help='csv (one line per session) or json ({"sessions": [...]})',
    )
    out.add_argument("--start", type=typed_time, help="only sessions overlapping from this ISO 8601 time")
    out.add_argument("--end", type=typed_time, help="... until this ISO 8601 time")
    out.add_argument("--out", type=Path, help="file to write (default: standard output)")


def run(args) -> int:
    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as out:
            count = export(args.db, args.format, out, args.start, args.end)
    else:
        count = export(args.db, args.format, sys.stdout, args.start, args.end)
    print(f"{count} session{'' if count == 1 else 's'}", file=sys.stderr)
    return 0
