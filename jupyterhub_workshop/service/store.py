"""The usage store: sessions, samples, culls and night opt-outs in one SQL database.

JupyterHub keeps no session history, so the workshop service writes its own. SQLAlchemy Core
(no ORM), SQLite by default, any SQLAlchemy URL otherwise (PostgreSQL for larger installs).

Durability: every write is its own transaction, committed before the method returns; nothing
is buffered, so a ``kill -9`` of the service loses no row a method call has returned from.
On SQLite the database runs in WAL mode with ``synchronous=NORMAL``: a commit is in the WAL
file (the OS page cache) before the call returns, which survives a killed process (only a
power loss or OS crash can lose the last commits).

Times are timezone-aware UTC in and out: naive datetimes are refused (``ValueError``), other
zones are converted. SQLite stores them as fixed-width ISO 8601 strings
(``2025-03-01T09:00:00.000000Z``, so text order is time order), other backends as
``TIMESTAMP WITH TIME ZONE``.

Schema: versioned, with alembic migrations shipped in the package (:mod:`.schema`); opening a
store upgrades an older database and refuses one written by a newer release.

Thread safety: every method takes its own pooled connection for one transaction, so a store
may be shared by the asyncio thread and worker threads. ``iter_sessions`` pages by id (keyset
pagination): it holds no connection or transaction between batches, so a slow consumer (an
HTTP download) blocks neither writers nor SQLite's WAL checkpoints.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    cast,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from ..times import UTC, as_utc, parse_machine_time
from ..usage_accounting import NodeHours
from . import schema, series
from .events import ServerEvent, SpoolPosition

#: Why a session ended.
STOP_REASONS = frozenset({"idle", "night", "max-age", "closed", "user", "unknown"})
#: The reasons that are culls (a session closed with one of them was stopped by the service);
#: ``closed``: stopped at the hub's closing time.
CULL_REASONS = ("idle", "night", "max-age", "closed")


class SessionRow(NamedTuple):
    """One single-user server session; ``stopped``/``stop_reason`` are None while it runs."""

    id: int
    user: str
    server: str  # "" for the default server
    profile: str | None
    started: datetime
    stopped: datetime | None
    stop_reason: str | None


class SampleRow(NamedTuple):
    at: datetime
    active_users: int  # at the moment of the sample
    running_servers: int
    peak_active_users: int | None = None  # the highest since the previous sample (None: not kept)
    peak_running_servers: int | None = None


class SessionChange(NamedTuple):
    """A session the store opened or closed, for the service's counts and metrics."""

    opened: bool  # True: opened at ``started``; False: closed at ``stopped``
    user: str
    server: str
    started: datetime
    stopped: datetime | None
    reason: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.user, self.server)


class ListedServer(NamedTuple):
    """A ready server as the hub lists it, for :meth:`UsageStore.reconcile`."""

    user: str
    server: str
    profile: str | None
    started: datetime | None


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (fixed-width ISO text on SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    _SQLITE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(27))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.strftime(self._SQLITE_FORMAT)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # SQLite: "YYYY-MM-DDTHH:MM:SS.ffffffZ"
            return parse_machine_time(value)
        if value.tzinfo is None:  # a backend without time zones keeps what we wrote: UTC
            return value.replace(tzinfo=UTC)
        return value if value.tzinfo is UTC else value.astimezone(UTC)

    def result_processor(self, dialect, coltype):
        if dialect.name == "sqlite":
            # the hot path of an export: one small function per value, no TypeDecorator layers
            parse = parse_machine_time
            return lambda value: None if value is None else parse(value)
        return super().result_processor(dialect, coltype)


metadata = MetaData()

sessions = Table(
    "workshop_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # not "user": that is a reserved word (and a function) in PostgreSQL's SQL
    Column("username", String(255), nullable=False),
    Column("server_name", String(255), nullable=False, default=""),
    Column("profile", String(255), nullable=True),
    Column("started", UTCDateTime, nullable=False),
    Column("stopped", UTCDateTime, nullable=True),
    Column("stop_reason", String(16), nullable=True),
    # the last moment the server was known to run (a pass listed it, the service stopped while
    # it ran); NULL: its start. A session whose stop nobody saw ends there (schema 0004)
    Column("seen", UTCDateTime, nullable=True),
)
# At most one open session per (user, server): the partial unique index is both the lookup
# index and what makes open_session safe against a concurrent second writer. Backends
# without partial indexes get a plain index instead.
Index(
    "ix_workshop_sessions_open",
    sessions.c.username,
    sessions.c.server_name,
    unique=True,
    sqlite_where=sessions.c.stopped.is_(None),
    postgresql_where=sessions.c.stopped.is_(None),
).ddl_if(dialect=("sqlite", "postgresql"))
Index("ix_workshop_sessions_user_server", sessions.c.username, sessions.c.server_name).ddl_if(
    callable_=lambda ddl, target, bind, dialect, **kw: dialect.name not in ("sqlite", "postgresql")
)
Index("ix_workshop_sessions_started", sessions.c.started)
Index("ix_workshop_sessions_stop_reason", sessions.c.stop_reason)

samples_table = Table(
    "workshop_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("active_users", Integer, nullable=False),
    Column("running_servers", Integer, nullable=False),
    Column("peak_active_users", Integer, nullable=True),
    Column("peak_running_servers", Integer, nullable=True),
)

culls = Table(
    "workshop_culls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("username", String(255), nullable=False),
    Column("server_name", String(255), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    # the session the cull closes (None in rows written before schema 0002)
    Column("session_id", Integer, nullable=True),
    # when the stop was sent to the hub; None: decided only (dry run), or refused by the hub
    Column("stop_sent", UTCDateTime, nullable=True),
)
# one cull (and one dry-run cull) per session, whatever the number of passes that decide it
Index("ix_workshop_culls_session", culls.c.session_id, culls.c.dry_run, unique=True)

opt_outs_table = Table(
    "workshop_opt_outs",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("night", Date, primary_key=True),
    Column("created", UTCDateTime, nullable=False),
)

downloads_table = Table(
    "workshop_downloads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(255), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
)

event_spool = Table(
    "workshop_event_spool",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("path", Text, nullable=False),
    Column("file_id", String(64), nullable=False),
    Column("offset", BigInteger, nullable=False),
)

desk_audit = Table(
    "workshop_desk_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("staff", String(255), nullable=False),
    Column("action", String(16), nullable=False),
    Column("cards", Text, nullable=False),
    Column("detail", Text, nullable=False),
)


class AuditRow(NamedTuple):
    at: datetime
    staff: str
    action: str
    cards: str
    detail: str


def _sqlite_micros(column):
    """Microseconds since the epoch of a UTCDateTime on SQLite, exactly: the whole seconds of
    its fixed-width text (julianday() of them, exact to the millisecond, rounded to the second;
    several times quicker than strftime('%s')), then its six-digit fraction."""
    days = func.julianday(func.substr(column, 1, 19)) - 2440587.5
    whole = cast(func.round(days * 86400.0), Integer)
    return whole * 1_000_000 + cast(func.substr(column, 21, 6), Integer)


def sample_peak(sample: SampleRow) -> tuple[int, int]:
    """(active users, running servers) a sample stands for on a chart and in the final report:
    its peaks if kept."""
    active = sample.active_users if sample.peak_active_users is None else sample.peak_active_users
    running = sample.running_servers if sample.peak_running_servers is None else sample.peak_running_servers
    return max(active, sample.active_users), max(running, sample.running_servers)


def last_known_running(started: datetime, seen: datetime | None, stop_sent: datetime | None) -> datetime:
    """When a session nobody saw stop ends: the last moment its server was known to run — a
    pass listed it or the service stopped while it ran (``seen``), the service sent its stop
    (``stop_sent``: it was running then), else its start."""
    return max(t for t in (started, seen, stop_sent) if t is not None)


def _check_reason(reason: str) -> str:
    if reason not in STOP_REASONS:
        raise ValueError(f"unknown reason {reason!r}: one of {', '.join(sorted(STOP_REASONS))}")
    return reason


def normalize_url(url: str | URL) -> URL:
    """The URL with a PostgreSQL driver that is installed when none is named.

    ``postgresql://`` means psycopg2 to SQLAlchemy 2.0 and psycopg (3) to 2.1: pick whichever
    of the two is importable so the same URL works everywhere. ``postgres://`` is accepted too.
    """
    url = make_url(url)
    if url.drivername in ("postgres", "postgresql"):
        for module, driver in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
            if importlib.util.find_spec(module) is not None:
                return url.set(drivername=driver)
        return url.set(drivername="postgresql")
    return url


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or url.query.get("mode") == "memory"


class UsageStore:
    """Usage records of the workshop service. See the module docstring for the guarantees."""

    def __init__(self, url: str | URL, *, busy_timeout: float = 10.0):
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self._lock: contextlib.AbstractContextManager = contextlib.nullcontext()
        self._peaks_memo: tuple | None = None  # (key, peaks): see sample_peaks
        self._durations_memo: tuple | None = None  # (key, histogram): see duration_histogram
        if self.dialect == "sqlite":
            if _is_sqlite_memory(self.url):
                # one shared connection, or every checkout would see its own empty database
                self._lock = threading.RLock()
                self.engine = create_engine(
                    self.url, poolclass=StaticPool, connect_args={"check_same_thread": False}
                )
            else:
                self.engine = create_engine(
                    self.url,
                    pool_size=2,
                    max_overflow=4,
                    connect_args={"check_same_thread": False, "timeout": busy_timeout},
                )
            event.listen(self.engine, "connect", self._sqlite_pragmas(int(busy_timeout * 1000)))
        else:
            self.engine = create_engine(
                self.url,
                pool_size=2,
                max_overflow=4,
                pool_pre_ping=True,  # survive a database restart between passes
                pool_recycle=1800,
            )
        try:
            with self._lock:
                schema.upgrade(self.engine, where=self.safe_url, memory=_is_sqlite_memory(self.url))
        except BaseException:
            self.engine.dispose()
            raise

    @staticmethod
    def _sqlite_pragmas(busy_timeout_ms: int):
        def on_connect(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA journal_mode=WAL")  # persistent; "memory" for :memory:
                cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable against kill -9
                cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
            finally:
                cursor.close()

        return on_connect

    @property
    def safe_url(self) -> str:
        """The database URL with any password masked, for logs."""
        return self.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def _begin(self):
        """One transaction, committed on leaving the block (rolled back on an exception)."""
        with self._lock, self.engine.begin() as conn:
            yield conn

    # --- sessions --------------------------------------------------------------------

    def _open_id(self, conn, user: str, server: str) -> int | None:
        return conn.execute(
            select(sessions.c.id).where(
                sessions.c.username == user,
                sessions.c.server_name == server,
                sessions.c.stopped.is_(None),
            )
        ).scalar_one_or_none()

    def open_session(self, user: str, server: str, profile: str | None, started: datetime) -> int:
        """Record a running server; the open session's id if one is already recorded."""
        started = as_utc(started)
        try:
            with self._begin() as conn:
                existing = self._open_id(conn, user, server)
                if existing is not None:
                    return existing
                result = conn.execute(
                    sessions.insert().values(
                        username=user, server_name=server, profile=profile, started=started
                    )
                )
                return result.inserted_primary_key[0]
        except IntegrityError:
            # another writer opened it between our select and insert (the partial unique index)
            with self._begin() as conn:
                existing = self._open_id(conn, user, server)
            if existing is None:
                raise
            return existing

    def close_session(self, user: str, server: str, stopped: datetime, reason: str) -> bool:
        """Close the open session of (user, server) with ``reason``; False if none is open."""
        _check_reason(reason)
        stopped = as_utc(stopped)
        with self._begin() as conn:
            result = conn.execute(
                sessions.update()
                .where(
                    sessions.c.username == user,
                    sessions.c.server_name == server,
                    sessions.c.stopped.is_(None),
                )
                .values(stopped=stopped, stop_reason=reason)
            )
            return result.rowcount > 0

    # --- sessions from the hub's events and the passes -------------------------------

    def _open_row(self, conn, user: str, server: str):
        c = sessions.c
        return conn.execute(
            select(c.id, c.started, c.profile, c.seen).where(
                c.username == user, c.server_name == server, c.stopped.is_(None)
            )
        ).one_or_none()

    @staticmethod
    def _sent_cull(conn, session_id: int):
        """(reason, when its stop was sent) of the cull whose stop was sent for this session."""
        return conn.execute(
            select(culls.c.reason, culls.c.stop_sent).where(
                culls.c.session_id == session_id, culls.c.dry_run.is_(False), culls.c.stop_sent.is_not(None)
            )
        ).one_or_none()

    def _close_row(
        self, conn, row, user: str, server: str, at: datetime | None, default: str
    ) -> SessionChange:
        """Close an open session at ``at``: with the reason of a cull whose stop was sent for
        it (whenever the stop took effect: before a crash, in a later pass), else ``default``.

        ``at`` None: nobody saw the stop (the hub stopped the server while the service was
        down, or it died on its own), so the session ends at the last moment it was known to
        run (:func:`last_known_running`), never at the moment the service noticed.
        """
        sent = self._sent_cull(conn, row.id)
        reason = _check_reason(sent.reason if sent else default)
        if at is None:
            at = last_known_running(row.started, row.seen, sent.stop_sent if sent else None)
        stopped = max(as_utc(at), row.started)  # never before its start (two clocks)
        conn.execute(
            sessions.update()
            .where(sessions.c.id == row.id, sessions.c.stopped.is_(None))
            .values(stopped=stopped, stop_reason=reason)
        )
        return SessionChange(False, user, server, row.started, stopped, reason)

    def apply_server_events(
        self,
        events: Iterable[ServerEvent],
        spool: tuple[str, str, SpoolPosition] | None = None,
    ) -> list[SessionChange]:
        """Open and close sessions at the times of the hub's start and stop events, and save
        ``spool`` (name, path, position after these events) in the same transaction.

        Idempotent: a start for a server with an open session, or older than the server's
        last stop, and a stop older than the open session's start, change nothing, so events
        read twice (a spool read again from its start) are harmless. A stop closes the session
        with its cull's reason when the service had sent that stop, else as ``user``.
        """
        changes = []
        c = sessions.c
        with self._begin() as conn:
            for event in events:
                row = self._open_row(conn, event.user, event.server)
                if event.action == "start":
                    if row is not None:
                        continue
                    last_stop = conn.execute(
                        select(func.max(c.stopped)).where(
                            c.username == event.user, c.server_name == event.server
                        )
                    ).scalar()
                    if last_stop is not None and last_stop > event.at:
                        continue
                    conn.execute(
                        sessions.insert().values(
                            username=event.user, server_name=event.server, profile=None, started=event.at
                        )
                    )
                    changes.append(SessionChange(True, event.user, event.server, event.at, None, None))
                elif row is not None and row.started <= event.at:
                    changes.append(self._close_row(conn, row, event.user, event.server, event.at, "user"))
            if spool is not None:
                self._save_spool_position(conn, *spool)
        return changes

    def reconcile(
        self,
        running: Iterable[ListedServer],
        present: set[tuple[str, str]],
        now: datetime,
        vanished: str,
        listed_from: datetime | None = None,
    ) -> list[SessionChange]:
        """Match the records with what the hub lists, in one transaction.

        ``running``: ready servers (a session is opened for any without one, at its ``started``
        or ``now``; a missing profile is filled in). ``present``: every server the hub lists
        (ready, starting or stopping); an open session whose server is not there is closed with
        its cull's reason if the service had sent its stop, else ``vanished``: as ``user`` at
        ``now`` (without the hub's events, the pass that finds a server gone is its stop), as
        ``unknown`` at the last moment it was known to run (nobody saw it stop: a restart an
        hour later must not bill that hour). A session that started at or after ``listed_from``
        (when the listing began: an event opened it meanwhile) is not in a listing that could
        not show it, and stays open. The sessions left open were seen running ``now``.
        """
        _check_reason(vanished)
        now = as_utc(now)
        running = list(running)
        for _attempt in range(3):
            try:
                return self._reconcile(running, present, now, vanished, listed_from)
            except IntegrityError:
                continue  # another writer opened one of these sessions: look again
        return self._reconcile(running, present, now, vanished, listed_from)

    def _reconcile(self, running, present, now, vanished, listed_from) -> list[SessionChange]:
        c = sessions.c
        changes = []
        with self._begin() as conn:
            rows = conn.execute(
                select(c.id, c.username, c.server_name, c.started, c.profile, c.seen).where(
                    c.stopped.is_(None)
                )
            ).all()
            recorded = {(row.username, row.server_name): row for row in rows}
            for user, server, profile, started in running:
                row = recorded.get((user, server))
                if row is None:
                    started = as_utc(started) if started else now
                    conn.execute(
                        sessions.insert().values(
                            username=user, server_name=server, profile=profile, started=started
                        )
                    )
                    changes.append(SessionChange(True, user, server, started, None, None))
                elif row.profile is None and profile is not None:
                    conn.execute(sessions.update().where(c.id == row.id).values(profile=profile))
            at = now if vanished == "user" else None
            since = as_utc(listed_from) if listed_from is not None else None
            for key, row in recorded.items():
                if key not in present and (since is None or row.started < since):
                    changes.append(self._close_row(conn, row, *key, at, vanished))
            self._seen_running(conn, now)
        return changes

    def seen_running(self, at: datetime) -> None:
        """Every open session's server was running at ``at`` (the service is stopping and knows
        of no stop: its events are read to the end), so a stop nobody sees ends it no earlier."""
        with self._begin() as conn:
            self._seen_running(conn, as_utc(at))

    @staticmethod
    def _seen_running(conn, at: datetime) -> None:
        c = sessions.c
        conn.execute(
            sessions.update().where(c.stopped.is_(None), c.seen.is_(None) | (c.seen < at)).values(seen=at)
        )

    def close_open_session(self, user: str, server: str, at: datetime, default: str) -> SessionChange | None:
        """Close the open session of (user, server) at ``at`` (with its cull's reason if its
        stop was sent, else ``default``); None when none is open or it started after ``at``."""
        _check_reason(default)
        with self._begin() as conn:
            row = self._open_row(conn, user, server)
            if row is None or row.started > as_utc(at):
                return None
            return self._close_row(conn, row, user, server, at, default)

    def set_profile(self, user: str, server: str, profile: str) -> bool:
        """Give the latest session of (user, server) its profile if it has none yet."""
        c = sessions.c
        with self._begin() as conn:
            latest = conn.execute(
                select(func.max(c.id)).where(c.username == user, c.server_name == server)
            ).scalar()
            if latest is None:
                return False
            done = conn.execute(
                sessions.update().where(c.id == latest, c.profile.is_(None)).values(profile=profile)
            )
            return done.rowcount > 0

    # --- the event spool's position ---------------------------------------------------

    def spool_position(self, name: str, path: str) -> SpoolPosition | None:
        """Where reading the spool ``name`` at ``path`` stopped; None if it never started
        (or the spool has moved to another path)."""
        with self._begin() as conn:
            row = conn.execute(
                select(event_spool.c.path, event_spool.c.file_id, event_spool.c.offset).where(
                    event_spool.c.name == name
                )
            ).one_or_none()
        if row is None or row.path != str(path):
            return None
        return SpoolPosition(row.file_id, int(row.offset))

    def save_spool_position(self, name: str, path: str, position: SpoolPosition) -> None:
        with self._begin() as conn:
            self._save_spool_position(conn, name, path, position)

    @staticmethod
    def _save_spool_position(conn, name: str, path: str, position: SpoolPosition) -> None:
        values = dict(path=str(path), file_id=position.file_id, offset=int(position.offset))
        updated = conn.execute(event_spool.update().where(event_spool.c.name == name).values(**values))
        if updated.rowcount == 0:
            conn.execute(event_spool.insert().values(name=name, **values))

    def recent_stops(self, user: str, limit: int = 5) -> list[tuple[datetime, str, str]]:
        """``user``'s last ``limit`` servers that stopped without them (any reason but ``user``),
        newest first: (stopped, reason, server name)."""
        c = sessions.c
        query = (
            select(c.stopped, c.stop_reason, c.server_name)
            .where(c.username == user, c.stopped.is_not(None), c.stop_reason != "user")
            .order_by(c.stopped.desc())
            .limit(limit)
        )
        with self._begin() as conn:
            return [(row[0], row[1] or "unknown", row[2]) for row in conn.execute(query)]

    def open_sessions(self) -> list[SessionRow]:
        """Sessions not closed yet, oldest first (to reconcile with what the hub runs)."""
        with self._begin() as conn:
            rows = conn.execute(
                self._session_select().where(sessions.c.stopped.is_(None)).order_by(sessions.c.id)
            )
            return [SessionRow._make(row) for row in rows]

    @staticmethod
    def _session_select():
        c = sessions.c
        return select(c.id, c.username, c.server_name, c.profile, c.started, c.stopped, c.stop_reason)

    @staticmethod
    def _overlapping(start: datetime | None, end: datetime | None) -> list:
        """Sessions overlapping [start, end): started before end, not stopped by start."""
        where = []
        if end is not None:
            where.append(sessions.c.started < as_utc(end))
        if start is not None:
            where.append(sessions.c.stopped.is_(None) | (sessions.c.stopped > as_utc(start)))
        return where

    def _pages(self, query, batch: int, key=sessions.c.id) -> Iterator[list]:
        """Keyset pagination by ``key`` (the query's first column): one short transaction a page."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        query = query.order_by(key).limit(batch)

        last = None
        while True:
            with self._begin() as conn:
                rows = conn.execute(query if last is None else query.where(key > last)).all()
            if rows:
                yield rows
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def iter_sessions(
        self, start: datetime | None = None, end: datetime | None = None, batch: int = 5000
    ) -> Iterator[SessionRow]:
        """Sessions overlapping [start, end) in id order, fetched ``batch`` rows at a time.

        Keyset pagination (``id > last ORDER BY id LIMIT batch``): memory is bounded by one
        batch and no connection is held while the consumer works on a batch.
        """
        query = self._session_select().where(*self._overlapping(start, end))
        for rows in self._pages(query, batch):
            yield from map(SessionRow._make, rows)

    def session_durations(
        self, start: datetime | None = None, end: datetime | None = None, batch: int = 10000
    ) -> Iterator[float]:
        """Seconds of each closed session overlapping [start, end), in id order, streamed."""
        where = [*self._overlapping(start, end), sessions.c.stopped.is_not(None)]
        query = select(sessions.c.id, sessions.c.started, sessions.c.stopped).where(*where)
        for rows in self._pages(query, batch):
            yield from ((stopped - started).total_seconds() for _, started, stopped in rows)

    def duration_histogram(self, bounds: Sequence[float]) -> list[tuple[float, int]]:
        """Finished sessions per duration bucket: ``(upper bound in seconds, count)`` for each
        of ``bounds`` (increasing; ``math.inf`` is added as the last bound when missing), a
        session counted in the first bucket whose bound it does not exceed (Prometheus' ``le``).

        Counted by the database (GROUP BY bucket) on SQLite and PostgreSQL, to the microsecond;
        streamed through Python elsewhere.
        """
        bounds = [float(b) for b in bounds]
        if any(math.isnan(b) for b in bounds) or any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise ValueError(f"bounds must increase: {bounds}")
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        if math.inf in bounds[:-1]:
            raise ValueError("math.inf can only be the last bound")
        # A finished session never changes (it is closed once, never reopened nor deleted), so
        # the finished sessions are the same while their number is: all sessions less the open
        # ones (each count a walk of an index, not a duration computed per session)
        with self._begin() as conn:
            key = (
                tuple(bounds),
                conn.execute(select(func.count()).select_from(sessions)).scalar(),
                conn.execute(select(func.count()).where(sessions.c.stopped.is_(None))).scalar(),
            )
        if self._durations_memo is not None and self._durations_memo[0] == key:
            return list(self._durations_memo[1])
        histogram = self._duration_histogram(bounds)
        self._durations_memo = (key, histogram)
        return list(histogram)

    def _duration_histogram(self, bounds: list[float]) -> list[tuple[float, int]]:
        counts = [0] * len(bounds)
        finite = bounds[:-1]
        duration = self._duration_expression()
        if duration is None:
            import bisect

            for seconds in self.session_durations():
                counts[bisect.bisect_left(finite, seconds)] += 1
        elif not finite:
            with self._begin() as conn:
                counts[0] = conn.execute(select(func.count()).where(sessions.c.stopped.is_not(None))).scalar()
        else:
            column, scale = duration
            # each duration computed once, then compared with every bound
            durations = (
                select(column.label("seconds")).where(sessions.c.stopped.is_not(None)).cte("durations")
            )
            if self.dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 35):
                durations = durations.prefix_with("MATERIALIZED")  # not folded back into the CASE
            seconds = durations.c.seconds
            bucket = case(
                *((seconds <= literal(bound * scale), index) for index, bound in enumerate(finite)),
                else_=len(finite),
            ).label("bucket")
            query = select(bucket, func.count()).select_from(durations).group_by(bucket)
            with self._begin() as conn:
                for index, count in conn.execute(query):
                    counts[int(index)] += count
        return list(zip(bounds, counts))

    def _duration_expression(self):
        """(SQL for a finished session's duration, its units per second), or None."""
        c = sessions.c
        if self.dialect == "sqlite":
            return _sqlite_micros(c.stopped) - _sqlite_micros(c.started), 1_000_000
        if self.dialect == "postgresql":
            return func.extract("epoch", c.stopped - c.started), 1
        return None

    # --- samples and culls -----------------------------------------------------------

    def record_sample(
        self,
        at: datetime,
        active_users: int,
        running_servers: int,
        peak_active_users: int | None = None,
        peak_running_servers: int | None = None,
    ) -> None:
        """A sample: the counts at ``at`` and, if known, the highest counts since the previous
        sample (what the charts show; they are never below the counts at ``at``)."""
        peaks = {}
        if peak_active_users is not None:
            peaks["peak_active_users"] = max(int(peak_active_users), int(active_users))
        if peak_running_servers is not None:
            peaks["peak_running_servers"] = max(int(peak_running_servers), int(running_servers))
        with self._begin() as conn:
            conn.execute(
                samples_table.insert().values(
                    at=as_utc(at),
                    active_users=int(active_users),
                    running_servers=int(running_servers),
                    **peaks,
                )
            )

    def _sample_columns(self):
        c = samples_table.c
        return c.at, c.active_users, c.running_servers, c.peak_active_users, c.peak_running_servers

    def samples(self, start: datetime | None = None, end: datetime | None = None) -> list[SampleRow]:
        """Samples taken in [start, end), oldest first."""
        c = samples_table.c
        query = select(*self._sample_columns())
        if start is not None:
            query = query.where(c.at >= as_utc(start))
        if end is not None:
            query = query.where(c.at < as_utc(end))
        with self._begin() as conn:
            return [SampleRow._make(row) for row in conn.execute(query.order_by(c.at, c.id))]

    def last_known(self) -> datetime | None:
        """The latest moment the records know of: the service's last pass, the last start or
        stop it applied, or its stop (it notes the servers running then); None when empty.

        A session still open ran at least until then, and past it only if the service is
        running (the hub may have stopped it meanwhile, as a hub stopped for the night does).
        """
        s, c = samples_table.c, sessions.c
        with self._begin() as conn:
            moments = [
                conn.execute(select(func.max(column))).scalar()
                for column in (s.at, c.started, c.stopped, c.seen)
            ]
        known = [m for m in moments if m is not None]
        return max(known) if known else None

    def sample_span(self) -> tuple[datetime, datetime] | None:
        """Times of the first and last sample, or None before the first."""
        c = samples_table.c
        # two scalar subqueries: each is one step down the index on ``at`` (one query asking for
        # both reads every sample on SQLite: 0.2 s for a year of one-minute samples)
        first_at = select(func.min(c.at)).scalar_subquery()
        last_at = select(func.max(c.at)).scalar_subquery()
        with self._begin() as conn:
            first, last = conn.execute(select(first_at, last_at)).one()
        return (first, last) if first is not None else None

    def sample_peaks(self, slices: int) -> list[tuple[datetime, tuple[int, int]]]:
        """``series.bucket_peaks`` of (active users, running servers) over every sample: at
        most ``slices`` points, whatever the length of the record. A sample counts with its
        peaks since the previous sample, so a crowd that came and went between two samples
        shows. Reduced by the database (GROUP BY slice) on SQLite and PostgreSQL, streamed
        through Python elsewhere.

        Samples are only ever added (never changed), so the result is kept until the record
        changes: its first and last times and its last id (one step down an index each) say
        whether it did. The admin page, reloaded between two passes, reduces the record once."""
        c = samples_table.c
        with self._begin() as conn:
            first, last, last_id = conn.execute(
                select(
                    select(func.min(c.at)).scalar_subquery(),
                    select(func.max(c.at)).scalar_subquery(),
                    select(func.max(c.id)).scalar_subquery(),
                )
            ).one()
        if first is None:
            return []
        key = (slices, first, last, last_id)
        if self._peaks_memo is not None and self._peaks_memo[0] == key:
            return list(self._peaks_memo[1])
        peaks = self._sample_peaks(slices, first, last)
        self._peaks_memo = (key, peaks)
        return list(peaks)

    def _sample_peaks(
        self, slices: int, first: datetime, last: datetime
    ) -> list[tuple[datetime, tuple[int, int]]]:
        c = samples_table.c
        width = series.slice_seconds(first, last, slices)
        index = self._slice_of(c.at, first, width)
        if index is None:
            points = ((s.at, sample_peak(s)) for s in self.iter_samples())
            return series.bucket_peaks(points, first, last, slices)
        index = index.label("slice")
        query = select(
            index,
            func.max(func.coalesce(c.peak_active_users, c.active_users)),
            func.max(func.coalesce(c.peak_running_servers, c.running_servers)),
        ).group_by(index)
        peaks: dict[int, tuple[int, int]] = {}
        with self._begin() as conn:
            for raw, active, running in conn.execute(query):
                # the same clamp as series.slice_index: the last instant is in the last slice
                series.add_peak(peaks, min(slices - 1, max(0, int(raw))), (active, running))
        return series.peaks_in_order(peaks, first, width)

    def _slice_of(self, column, first: datetime, width: float):
        """SQL for the slice (as ``series.slice_index`` before its clamp) that ``column`` falls
        in, or None on databases other than SQLite and PostgreSQL."""
        if self.dialect == "sqlite":
            # fixed-width ISO text, which julianday() reads; offsets are >= 0, so the cast
            # floors (SQLite's floor() exists only in builds with its math functions)
            start = as_utc(first).strftime(UTCDateTime._SQLITE_FORMAT)
            seconds = (func.julianday(column) - func.julianday(start)) * 86400.0
            return cast(seconds / width, Integer)
        if self.dialect == "postgresql":
            return func.floor(func.extract("epoch", column - as_utc(first)) / width)
        return None

    def iter_samples(self, batch: int = 10000) -> Iterator[SampleRow]:
        """Every sample, streamed in pages (in recording order, which is time order unless the
        clock was set back)."""
        c = samples_table.c
        query = select(c.id, *self._sample_columns())
        for rows in self._pages(query, batch, key=c.id):
            yield from (SampleRow(*row[1:]) for row in rows)

    def node_seconds(self, users_per_node: int) -> NodeHours:
        """The node-seconds meter (``usage_accounting.NodeHours``) over every sample, summed by
        the database (a window over the samples in time order) on SQLite and PostgreSQL, so a
        restart does not read a year of samples into memory; it continues from the last sample.
        Sample times count to the millisecond there (SQLite's julianday())."""
        meter = NodeHours(users_per_node)
        c = samples_table.c
        order = (c.at, c.id)
        if self.dialect not in ("sqlite", "postgresql"):
            for sample in sorted(self.iter_samples(), key=lambda s: s.at):
                meter.add(sample.at, sample.running_servers)
            return meter
        # seconds on a common scale, each sample's computed once
        if self.dialect == "sqlite":
            moment = func.julianday(c.at) * 86400.0
        else:
            moment = func.extract("epoch", c.at)
        steps = select(
            moment.label("t"),
            func.lag(moment).over(order_by=order).label("previous_t"),
            func.lag(c.running_servers).over(order_by=order).label("previous"),
        ).subquery()
        span = steps.c.t - steps.c.previous_t
        nodes = (steps.c.previous + (users_per_node - 1)) // users_per_node  # ceil, as nodes_for
        total = select(func.sum(nodes * span)).where(steps.c.previous_t.is_not(None), span > 0)
        last = select(c.at, c.running_servers).order_by(c.at.desc(), c.id.desc()).limit(1)
        with self._begin() as conn:
            seconds = conn.execute(total).scalar()
            last_row = conn.execute(last).one_or_none()
        meter.seconds = float(seconds or 0.0)
        meter.last = (last_row.at, last_row.running_servers) if last_row else None
        return meter

    def record_cull(
        self,
        at: datetime,
        user: str,
        server: str,
        reason: str,
        dry_run: bool,
        sent: datetime | None = None,
    ) -> int:
        """Record a cull decision for the open session of (user, server); returns its id.

        One row per session (and one per session for dry runs): a later decision for the same
        session (a stop that failed and is tried again) updates that row's reason and
        ``sent`` (when the stop was sent, None for a dry run) instead of adding a row.
        Reasons as CULL_REASONS (a session closed with one counts as culled).
        """
        if reason not in CULL_REASONS:
            raise ValueError(f"unknown cull reason {reason!r}: one of {', '.join(CULL_REASONS)}")
        at = as_utc(at)
        sent = as_utc(sent) if sent is not None else None
        c = culls.c
        with self._begin() as conn:
            row = self._open_row(conn, user, server)
            session_id = row.id if row is not None else None
            if session_id is not None:
                existing = conn.execute(
                    select(c.id).where(c.session_id == session_id, c.dry_run.is_(bool(dry_run)))
                ).scalar_one_or_none()
                if existing is not None:
                    conn.execute(culls.update().where(c.id == existing).values(reason=reason, stop_sent=sent))
                    return existing
            result = conn.execute(
                culls.insert().values(
                    at=at,
                    username=user,
                    server_name=server,
                    reason=reason,
                    dry_run=bool(dry_run),
                    session_id=session_id,
                    stop_sent=sent,
                )
            )
            return result.inserted_primary_key[0]

    def clear_stop_sent(self, cull_ids: Iterable[int]) -> None:
        """The stops of these culls did not happen (refused, or no longer wanted): a later
        stop of their sessions is not theirs."""
        ids = list(cull_ids)
        if ids:
            with self._begin() as conn:
                conn.execute(culls.update().where(culls.c.id.in_(ids)).values(stop_sent=None))

    def sent_culls(self) -> dict[tuple[str, str], tuple[int, str]]:
        """Culls whose stop was sent and whose session is still open: (user, server) ->
        (cull id, reason)."""
        query = (
            select(culls.c.id, culls.c.reason, sessions.c.username, sessions.c.server_name)
            .join(sessions, sessions.c.id == culls.c.session_id)
            .where(sessions.c.stopped.is_(None), culls.c.dry_run.is_(False), culls.c.stop_sent.is_not(None))
        )
        with self._begin() as conn:
            return {
                (user, server): (cull_id, reason) for cull_id, reason, user, server in conn.execute(query)
            }

    def culls_by_reason(self) -> dict[str, int]:
        """How many servers the service stopped, by reason: sessions closed by a cull. Each
        session closes once, so a cull is counted once whatever happened on the way (a crash
        mid-pass, a stop that failed and was tried again, a restart); dry runs close nothing."""
        c = sessions.c
        query = (
            select(c.stop_reason, func.count()).where(c.stop_reason.in_(CULL_REASONS)).group_by(c.stop_reason)
        )
        with self._begin() as conn:
            return {reason: count for reason, count in conn.execute(query)}

    # --- home downloads (the closing banner's link) ---------------------------------------

    def record_download(self, user: str, at: datetime) -> None:
        """``user`` asked for their home as an archive (followed the closing banner's link)."""
        with self._begin() as conn:
            conn.execute(downloads_table.insert().values(username=user, at=as_utc(at)))

    def downloaders(self) -> int:
        """How many people asked for their home as an archive at least once."""
        with self._begin() as conn:
            return conn.execute(select(func.count(func.distinct(downloads_table.c.username)))).scalar() or 0

    # --- night opt-outs --------------------------------------------------------------

    def add_opt_out(self, user: str, night: date, at: datetime) -> None:
        """``user`` keeps their server through ``night``; repeating it changes nothing."""
        if isinstance(night, datetime) or not isinstance(night, date):
            raise TypeError("night must be a date")
        values = dict(username=user, night=night, created=as_utc(at))
        if self.dialect in ("sqlite", "postgresql"):
            if self.dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert
            else:
                from sqlalchemy.dialects.postgresql import insert
            stmt = insert(opt_outs_table).values(**values).on_conflict_do_nothing()
            with self._begin() as conn:
                conn.execute(stmt)
            return
        try:
            with self._begin() as conn:
                conn.execute(opt_outs_table.insert().values(**values))
        except IntegrityError:
            pass

    def opted_out(self, night: date) -> set[str]:
        with self._begin() as conn:
            rows = conn.execute(select(opt_outs_table.c.username).where(opt_outs_table.c.night == night))
            return {user for (user,) in rows}

    def record_desk_action(
        self, at: datetime, staff: str, action: str, cards: Iterable[str], detail: str = ""
    ) -> None:
        """Audit one card desk action (never a password): who, what, which cards, when."""
        with self._begin() as conn:
            conn.execute(
                desk_audit.insert().values(
                    at=as_utc(at), staff=staff, action=action, cards=" ".join(cards), detail=detail
                )
            )

    def desk_audit(self, limit: int | None = None) -> list[AuditRow]:
        """Card desk actions, newest first (``limit`` of them, or all)."""
        c = desk_audit.c
        query = select(c.at, c.staff, c.action, c.cards, c.detail).order_by(c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._begin() as conn:
            return [AuditRow(*row) for row in conn.execute(query)]

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
