"""Schema versions of the usage database: alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from jupyterhub_workshop.service import schema
from jupyterhub_workshop.service.store import UsageStore, metadata, normalize_url

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(normalize_url(url))


def revision_of(url: str) -> str | None:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return schema.current_revision(conn)
    finally:
        engine.dispose()


# The schema the first release wrote (jupyterhub_workshop/service/store.py before schema
# versions), frozen here as that release created it: the upgrade test starts from it.
def first_release_metadata(dialect: str) -> sa.MetaData:
    time = sa.String(27) if dialect == "sqlite" else sa.DateTime(timezone=True)
    m = sa.MetaData()
    sessions = sa.Table(
        "workshop_sessions",
        m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("server_name", sa.String(255), nullable=False),
        sa.Column("profile", sa.String(255), nullable=True),
        sa.Column("started", time, nullable=False),
        sa.Column("stopped", time, nullable=True),
        sa.Column("stop_reason", sa.String(16), nullable=True),
    )
    sa.Index(
        "ix_workshop_sessions_open",
        sessions.c.username,
        sessions.c.server_name,
        unique=True,
        sqlite_where=sessions.c.stopped.is_(None),
        postgresql_where=sessions.c.stopped.is_(None),
    )
    sa.Index("ix_workshop_sessions_started", sessions.c.started)
    sa.Table(
        "workshop_samples",
        m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", time, nullable=False, index=True),
        sa.Column("active_users", sa.Integer, nullable=False),
        sa.Column("running_servers", sa.Integer, nullable=False),
    )
    sa.Table(
        "workshop_culls",
        m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", time, nullable=False, index=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("server_name", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
    )
    sa.Table(
        "workshop_opt_outs",
        m,
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("night", sa.Date, primary_key=True),
        sa.Column("created", time, nullable=False),
    )
    return m


def as_stored(dialect: str, moment: datetime):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if dialect == "sqlite" else moment


def write_first_release_database(url: str) -> None:
    engine = engine_for(url)
    dialect = engine.dialect.name
    old = first_release_metadata(dialect)
    t = lambda moment: as_stored(dialect, moment)  # noqa: E731
    with engine.begin() as conn:
        old.create_all(conn)
        tables = old.tables
        conn.execute(
            tables["workshop_sessions"].insert(),
            [
                dict(
                    username="ws001",
                    server_name="",
                    profile="small",
                    started=t(T0),
                    stopped=t(T0 + timedelta(hours=1)),
                    stop_reason="idle",
                ),
                dict(
                    username="ws002",
                    server_name="",
                    profile=None,
                    started=t(T0),
                    stopped=t(T0 + timedelta(hours=14)),
                    stop_reason="night",
                ),
                dict(
                    username="ws003",
                    server_name="gpu",
                    profile="gpu",
                    started=t(T0),
                    stopped=None,
                    stop_reason=None,
                ),
            ],
        )
        # the first release wrote a cull row per decision, so culls were counted twice here
        conn.execute(
            tables["workshop_culls"].insert(),
            [
                dict(
                    at=t(T0 + timedelta(hours=1)),
                    username="ws001",
                    server_name="",
                    reason="idle",
                    dry_run=False,
                ),
                dict(
                    at=t(T0 + timedelta(hours=13)),
                    username="ws002",
                    server_name="",
                    reason="night",
                    dry_run=False,
                ),
                dict(
                    at=t(T0 + timedelta(hours=14)),
                    username="ws002",
                    server_name="",
                    reason="night",
                    dry_run=False,
                ),
            ],
        )
        conn.execute(tables["workshop_samples"].insert(), [dict(at=t(T0), active_users=2, running_servers=3)])
        conn.execute(
            tables["workshop_opt_outs"].insert(),
            [dict(username="ws003", night=date(2025, 3, 1), created=t(T0))],
        )
    engine.dispose()


def test_head_is_the_newest_migration_script():
    scripts = ScriptDirectory(str(schema.MIGRATIONS))
    assert scripts.get_current_head() == schema.HEAD
    assert [s.revision for s in reversed(list(scripts.walk_revisions()))] == [
        "0001",
        "0002",
        "0003",
        "0004",
        "0005",
    ]


def created_on(dialect: str):
    """alembic's include_object: leave out the index made only where partial indexes are not."""

    def include(obj, name, kind, reflected, compare_to):
        return not (
            kind == "index"
            and name == "ix_workshop_sessions_user_server"
            and dialect in ("sqlite", "postgresql")
        )

    return include


def test_a_new_database_is_what_the_code_reads_and_writes(db_url):
    with UsageStore(db_url):
        pass
    assert revision_of(db_url) == schema.HEAD
    engine = engine_for(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": created_on(conn.dialect.name)}
            )
            differences = [
                d for d in compare_metadata(context, metadata) if "workshop_schema_version" not in str(d)
            ]
    finally:
        engine.dispose()
    assert differences == []


def test_a_database_of_the_first_release_is_upgraded_with_its_records(db_url):
    write_first_release_database(db_url)
    assert revision_of(db_url) is None  # no version table: written before versions existed
    with UsageStore(db_url) as store:
        assert revision_of(db_url) == schema.HEAD
        rows = [
            (r.user, r.server, r.profile, r.started, r.stopped, r.stop_reason) for r in store.iter_sessions()
        ]
        assert rows == [
            ("ws001", "", "small", T0, T0 + timedelta(hours=1), "idle"),
            ("ws002", "", None, T0, T0 + timedelta(hours=14), "night"),
            ("ws003", "gpu", "gpu", T0, None, None),
        ]
        # counted from the sessions a cull closed: ws002's two decisions are one cull
        assert store.culls_by_reason() == {"idle": 1, "night": 1}
        assert store.opted_out(date(2025, 3, 1)) == {"ws003"}
        [sample] = store.samples()
        assert (sample.at, sample.running_servers, sample.peak_running_servers) == (T0, 3, None)
        # the new parts work on the upgraded database
        store.record_sample(T0 + timedelta(minutes=1), 1, 1, 2, 4)
        assert max(running for _, (_, running) in store.sample_peaks(10)) == 4
        # ws003's server was last known to run at the last pass before the upgrade (the last
        # sample): gone when the service comes back two hours later, it ends there
        store.record_cull(T0, "ws003", "gpu", "max-age", False, sent=T0)
        [closed] = store.reconcile([], set(), T0 + timedelta(hours=2), "unknown")
        assert (closed.reason, closed.stopped) == ("max-age", T0)
        assert store.culls_by_reason() == {"idle": 1, "night": 1, "max-age": 1}
    with UsageStore(db_url) as again:  # at the head: nothing to do
        assert len(list(again.iter_sessions())) == 3


def test_a_database_of_a_newer_release_is_refused_untouched(db_url):
    with UsageStore(db_url):
        pass
    engine = engine_for(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '0099_future'"))
    with pytest.raises(schema.NewerSchemaError) as refused:
        UsageStore(db_url)
    message = str(refused.value)
    assert (
        "'0099_future'" in message and "a newer release" in message and f"revision {schema.HEAD}" in message
    )
    assert "Nothing was changed" in message
    assert revision_of(db_url) == "0099_future"
    engine.dispose()


def test_migrations_go_down_and_up_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    with UsageStore(url) as store:
        store.open_session("a", "", None, T0)
    engine = engine_for(url)
    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert revision_of(url) == "0001"
    with UsageStore(url) as store:  # upgraded again, the records kept
        assert [s.user for s in store.open_sessions()] == ["a"]
    engine.dispose()


OPENER = """
import sys
from jupyterhub_workshop.service.store import UsageStore
UsageStore(sys.argv[1]).close()
"""


def test_openers_at_the_same_moment_migrate_once(db_url):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    openers = [
        subprocess.Popen([sys.executable, "-c", OPENER, db_url], stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(4)
    ]
    errors = []
    for opener in openers:
        try:
            _, stderr = opener.communicate(timeout=120)
        finally:
            if opener.poll() is None:
                opener.kill()
                opener.wait()
        errors.append((opener.returncode, stderr[-2000:]))
    assert [code for code, _ in errors] == [0] * 4, errors
    assert revision_of(db_url) == schema.HEAD


def test_the_service_says_why_it_does_not_start_on_a_newer_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    with UsageStore(url):
        pass
    engine = engine_for(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '0099_future'"))
    engine.dispose()
    env = {
        **os.environ,
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:9",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
    }
    done = subprocess.run(
        [sys.executable, "-m", "jupyterhub_workshop.service", f"--db-url={url}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 1
    assert "'0099_future'" in done.stderr and "a newer release" in done.stderr
    assert "Traceback" not in done.stderr
    exported = subprocess.run(
        [sys.executable, "-m", "jupyterhub_workshop.cli", "usage", "export", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert exported.returncode == 1 and exported.stdout == ""
    assert "a newer release" in exported.stderr and "Traceback" not in exported.stderr


def test_the_package_ships_its_migrations(tmp_path):
    """What is built from this tree carries the alembic scripts (package data)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "jupyterhub_workshop",
        source / "jupyterhub_workshop",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    # setuptools' build_py copies what a wheel or sdist gets: packages and their package data
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "import setuptools; setuptools.setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(tmp_path / "lib"),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    names = {
        path.relative_to(tmp_path / "lib").as_posix()
        for path in (tmp_path / "lib").rglob("*")
        if path.is_file()
    }
    migrations = "jupyterhub_workshop/service/migrations/"
    shipped = {name[len(migrations) :] for name in names if name.startswith(migrations)}
    expected = {
        path.relative_to(schema.MIGRATIONS).as_posix()
        for path in schema.MIGRATIONS.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert {
        "env.py",
        "script.py.mako",
        "versions/0001_baseline.py",
        "versions/0002_events_and_culls.py",
        "versions/0003_downloads.py",
        "versions/0004_sessions_seen.py",
    } <= expected
    assert expected <= shipped
