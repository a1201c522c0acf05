"""Usage exports (CSV, JSON) streamed from the store.

The exports are generators of text chunks: memory stays bounded by one chunk whatever the
number of sessions, so they serve a download or a CLI pipe of a year of workshops alike.
Times are ISO 8601 UTC with a ``Z``; ``duration_seconds`` is empty (CSV) or null (JSON) for a
session still running. Each export says when it was taken (CSV: the ``exported`` column; JSON:
the document's ``exported``): a session still open ran at least until then.
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

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..times import UTC, as_utc, format_machine_time, now_utc
from ..usage_accounting import CSV_COLUMNS, USAGE_COLUMNS
from .store import SessionRow, UsageStore, normalize_url

FORMATS = ("csv", "json")

_CHUNK_ROWS = 1000  # rows per yielded chunk: big enough for cheap writes, small in memory


def _chunks(rows: Iterable, counter: list[int]) -> Iterator[list]:
    """Rows in lists of up to _CHUNK_ROWS, counted into ``counter[0]``."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, _CHUNK_ROWS)):
        counter[0] += len(chunk)
        yield chunk


def _field_chunks(rows: Iterable[SessionRow], counter: list[int], exported: str) -> Iterator[list[tuple]]:
    """Rows as CSV_COLUMNS tuples, up to _CHUNK_ROWS a list (the exports' hot loop)."""
    utc = UTC
    for chunk in _chunks(rows, counter):
        fields = []
        append = fields.append
        for _id, user, server, profile, started, stopped, reason in chunk:
            if started.tzinfo is not utc:
                started = as_utc(started)
            if stopped is None:
                append((user, server, profile, started.isoformat()[:-6] + "Z", None, None, reason, exported))
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
                    exported,
                )
            )
        yield fields


def _when(exported: datetime | None) -> str:
    return format_machine_time(now_utc() if exported is None else exported)


def sessions_csv(rows: Iterable[SessionRow], exported: datetime | None = None) -> Iterator[str]:
    """CSV text in chunks: the header line first, then up to 1000 rows a chunk.

    Lines end with ``\\n``; empty cells for missing values; quoting as ``csv`` does it. The last
    column, ``exported``, is when the export was taken (``exported``, default now), the same on
    every row: a column rather than a comment line, which every CSV reader (pandas, a
    spreadsheet, ``csv.DictReader``) reads as it is.
    """
    return _sessions_csv(_field_chunks(rows, [0], _when(exported)))


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


def sessions_json(rows: Iterable[SessionRow], exported: datetime | None = None) -> Iterator[str]:
    """One JSON document ``{"exported": TIME, "sessions": [{...}, ...]}`` in chunks, one
    session object a line; ``exported`` is when the export was taken (default now).

    The objects carry the USAGE_COLUMNS keys; the document is complete only once the generator
    is exhausted (it never holds the whole list).
    """
    return _sessions_json(_field_chunks(rows, [0], ""), _when(exported))


def _sessions_json(field_chunks: Iterator[list[tuple]], exported: str) -> Iterator[str]:
    yield '{"exported": ' + json.dumps(exported) + ', "sessions": ['
    encode = json.JSONEncoder(ensure_ascii=False).encode
    separator = "\n"
    for fields in field_chunks:
        yield separator + ",\n".join([encode(dict(zip(USAGE_COLUMNS, f))) for f in fields])
        separator = ",\n"
    yield "\n]}\n"


def database_url(text: str) -> URL:
    """The usage database ``--db`` names: a SQLAlchemy URL, or a path to a SQLite file (what
    the demo and the service's default leave, e.g. ``workshop-demo/workshop-usage.sqlite``).

    ValueError for a URL SQLAlchemy cannot read.
    """
    if "://" not in text:
        return URL.create("sqlite", database=str(Path(text).expanduser().absolute()))
    try:
        return normalize_url(text)
    except ArgumentError:
        raise ValueError(
            f"--db {text!r} is not a database URL or a file: give the usage database's SQLite file "
            "(workshop-usage.sqlite) or the service's db_url (sqlite:///FILE, postgresql://HOST/DB)"
        ) from None


def open_for_export(url: str | URL) -> UsageStore:
    """The usage store at ``url`` for reading, or an error that says what is wrong with it:
    FileNotFoundError for a SQLite file that is not there (an export never makes a database),
    ValueError for a file that is not a database, a database without the service's records (the
    hub's own, say: nothing is written to it) or one that cannot be reached."""
    parsed = database_url(url) if isinstance(url, str) else url
    where = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database not in ("", ":memory:") and not database.startswith("file:"):
            where = database
            if not os.path.exists(database):
                raise FileNotFoundError(
                    f"no usage database at {database} (the workshop service's db_url; the demo's is "
                    "workshop-demo/workshop-usage.sqlite)"
                )
    try:
        engine = create_engine(parsed, poolclass=NullPool)
    except (ArgumentError, ImportError) as e:
        raise ValueError(f"{where}: cannot open it as a database: {e}") from None
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except SQLAlchemyError as e:
        raise ValueError(f"{where}: cannot read it as a usage database: {_reason(e)}") from None
    finally:
        engine.dispose()
    if "workshop_sessions" not in tables:
        raise ValueError(
            f"{where}: no workshop usage records in this database (is it the workshop service's "
            "db_url, workshop-usage.sqlite, rather than the hub's?); nothing was written to it"
        )
    return UsageStore(parsed)


def _reason(error: SQLAlchemyError) -> str:
    """The driver's own words, without SQLAlchemy's statement and background link."""
    original = getattr(error, "orig", None)
    return str(original or error).strip().splitlines()[0]


def export(
    url: str | URL,
    fmt: str,
    out: TextIO,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Write the sessions overlapping [start, end) of the store at ``url`` (a SQLAlchemy URL or
    a SQLite file's path) as ``fmt`` (``csv`` or ``json``) to ``out``; return how many sessions
    were written.

    The export says when it was taken, as far as its records know (``exported``; ``now``
    overrides it): the latest moment in the database — the service's last pass, event or stop
    (:meth:`UsageStore.last_known`). Read from a running service that is its last pass, a
    minute ago at most; from a hub stopped for the night it is when the service stopped, not
    the morning after: sessions still open count until then (``plan --from-usage``), since the
    hub may have stopped them without a word. The admin page's download is taken live: now.

    Errors as :func:`open_for_export` (nothing is created or written in the database).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")
    counter = [0]
    store = open_for_export(url)
    try:
        exported = _when(now if now is not None else store.last_known())
        rows = store.iter_sessions(start, end)
        if fmt == "csv":
            chunks = _sessions_csv(_field_chunks(rows, counter, exported))
        else:
            chunks = _sessions_json(_field_chunks(rows, counter, ""), exported)
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
        help="the service's usage database: its SQLite file (workshop-demo/workshop-usage.sqlite) or "
        "its SQLAlchemy URL (sqlite:///FILE, postgresql://HOST/DB)",
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
