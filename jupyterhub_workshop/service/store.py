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

Thread safety: every method takes its own pooled connection for one transaction, so a store
may be shared by the asyncio thread and worker threads. ``iter_sessions`` pages by id (keyset
pagination): it holds no connection or transaction between batches, so a slow consumer (an
HTTP download) blocks neither writers nor SQLite's WAL checkpoints.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Iterator
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    cast,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from ..times import UTC, as_utc, parse_machine_time
from . import series

#: Why a session ended; also the vocabulary of cull reasons.
STOP_REASONS = frozenset({"idle", "night", "max-age", "user", "unknown"})


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
    active_users: int
    running_servers: int


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

samples_table = Table(
    "workshop_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("active_users", Integer, nullable=False),
    Column("running_servers", Integer, nullable=False),
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
)

opt_outs_table = Table(
    "workshop_opt_outs",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("night", Date, primary_key=True),
    Column("created", UTCDateTime, nullable=False),
)


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
        with self._lock:
            metadata.create_all(self.engine)

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
        """Close the open session of (user, server); False if none is open."""
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

    # --- samples and culls -----------------------------------------------------------

    def record_sample(self, at: datetime, active_users: int, running_servers: int) -> None:
        with self._begin() as conn:
            conn.execute(
                samples_table.insert().values(
                    at=as_utc(at), active_users=int(active_users), running_servers=int(running_servers)
                )
            )

    def samples(self, start: datetime | None = None, end: datetime | None = None) -> list[SampleRow]:
        """Samples taken in [start, end), oldest first."""
        c = samples_table.c
        query = select(c.at, c.active_users, c.running_servers)
        if start is not None:
            query = query.where(c.at >= as_utc(start))
        if end is not None:
            query = query.where(c.at < as_utc(end))
        with self._begin() as conn:
            return [SampleRow._make(row) for row in conn.execute(query.order_by(c.at, c.id))]

    def sample_span(self) -> tuple[datetime, datetime] | None:
        """Times of the first and last sample, or None before the first."""
        c = samples_table.c
        with self._begin() as conn:
            first, last = conn.execute(select(func.min(c.at), func.max(c.at))).one()
        return (first, last) if first is not None else None

    def sample_peaks(self, slices: int) -> list[tuple[datetime, tuple[int, int]]]:
        """``series.bucket_peaks`` of (active users, running servers) over every sample: at
        most ``slices`` points, whatever the length of the record. Reduced by the database
        (GROUP BY slice) on SQLite and PostgreSQL, streamed through Python elsewhere."""
        span = self.sample_span()
        if span is None:
            return []
        first, last = span
        c = samples_table.c
        width = series.slice_seconds(first, last, slices)
        index = self._slice_of(c.at, first, width)
        if index is None:
            points = ((s.at, (s.active_users, s.running_servers)) for s in self.iter_samples())
            return series.bucket_peaks(points, first, last, slices)
        index = index.label("slice")
        query = select(index, func.max(c.active_users), func.max(c.running_servers)).group_by(index)
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
        query = select(c.id, c.at, c.active_users, c.running_servers)
        for rows in self._pages(query, batch, key=c.id):
            yield from (SampleRow(at, active, running) for _, at, active, running in rows)

    def record_cull(self, at: datetime, user: str, server: str, reason: str, dry_run: bool) -> None:
        """A cull decision (``dry_run``: decided but nothing stopped). Reasons as STOP_REASONS."""
        _check_reason(reason)
        with self._begin() as conn:
            conn.execute(
                culls.insert().values(
                    at=as_utc(at), username=user, server_name=server, reason=reason, dry_run=bool(dry_run)
                )
            )

    def culls_by_reason(self) -> dict[str, int]:
        """How many servers were really culled (dry runs excluded), by reason."""
        query = (
            select(culls.c.reason, func.count()).where(culls.c.dry_run.is_(False)).group_by(culls.c.reason)
        )
        with self._begin() as conn:
            return {reason: count for reason, count in conn.execute(query)}

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

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
