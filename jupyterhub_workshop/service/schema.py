"""Schema versions of the usage database: alembic migrations shipped in the package.

The usage database outlives service versions, so its schema carries a version (alembic's,
in the service's own table ``workshop_schema_version``: the usage tables may share a database
with the hub's, which has its own ``alembic_version``). Opening a store brings the database to
this package's version:

- an empty database gets every table;
- a database written before versions existed (the first release's four tables, no version
  table) is adopted as revision 0001 and upgraded;
- a database at an older revision is upgraded; at this revision nothing happens (one query);
- a database at a revision this package does not know was written by a newer release:
  :class:`NewerSchemaError`, which says so, and nothing is touched.

Concurrent openers (the service and an export started at the same moment) migrate one at a
time: PostgreSQL under an advisory lock, SQLite with ``BEGIN IMMEDIATE``; both run the DDL
in that one transaction, so a migration interrupted by a crash leaves the previous revision.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

VERSION_TABLE = "workshop_schema_version"
MIGRATIONS = Path(__file__).parent / "migrations"
#: The revision this package's code reads and writes (tests check it is the scripts' head).
HEAD = "0005"
_PG_LOCK = 0x776B7368  # pg_advisory_xact_lock key: "wksh"


class SchemaError(ValueError):
    """The usage database's schema cannot be used by this version of the package (a bad input,
    like a malformed file: the command line says so without a traceback)."""


class NewerSchemaError(SchemaError):
    pass


def current_revision(conn: Connection) -> str | None:
    """The database's schema revision; None when it has no version table (empty, or written
    before schema versions existed)."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}


def _refuse_newer(revision: str | None, where: str) -> None:
    if revision is not None and revision != HEAD and revision not in known_revisions():
        from .. import __version__

        raise NewerSchemaError(
            f"The usage database {where} has schema revision {revision!r}, which this "
            f"jupyterhub-workshop ({__version__}, schema revision {HEAD}) does not know: a newer "
            "release has upgraded it. Install that release (or newer) of jupyterhub-workshop, or "
            "point the service at another database. Nothing was changed."
        )


@contextlib.contextmanager
def _locked(engine: Engine, memory: bool):
    """A connection in a transaction that holds the migration lock."""
    dialect = engine.dialect.name
    if dialect == "sqlite" and not memory:
        # pysqlite neither begins a transaction before DDL nor lets BEGIN IMMEDIATE through on
        # its own: drive the transaction ourselves on a connection of our own
        url = engine.url
        timeout = 30.0
        migrator = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": timeout})

        @sa.event.listens_for(migrator, "connect")
        def _manual(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(migrator, "begin")
        def _immediate(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        try:
            with migrator.begin() as conn:
                yield conn
        finally:
            migrator.dispose()
        return
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        yield conn


def upgrade(engine: Engine, *, where: str, memory: bool = False) -> str | None:
    """Bring the database behind ``engine`` to :data:`HEAD`; returns the revision it had
    (None: empty or unversioned). ``where`` names the database in messages (no password)."""
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision == HEAD:
        return revision
    _refuse_newer(revision, where)
    with _locked(engine, memory) as conn:
        revision = current_revision(conn)  # another opener may have migrated meanwhile
        if revision == HEAD:
            return revision
        _refuse_newer(revision, where)
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return revision
