"""The usage store's two backends for the service tests: SQLite always, PostgreSQL when
WORKSHOP_TEST_POSTGRES_URL names a server that answers (``.ci/run`` sets it)."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from jupyterhub_workshop.service.store import normalize_url

POSTGRES_ENV = "WORKSHOP_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url():
    """The PostgreSQL server URL, or skip when it is not configured or does not answer."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL not configured: set {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    try:
        engine = sa.create_engine(normalize_url(url), connect_args={"connect_timeout": 3})
    except ImportError as e:  # no driver installed
        pytest.skip(f"PostgreSQL not reachable at {url}: no driver ({e}); pip install 'psycopg[binary]'")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as e:
        pytest.skip(f"PostgreSQL not reachable at {url}: set {POSTGRES_ENV} ({type(e).__name__})")
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database per test: a SQLite file, or a new PostgreSQL schema.

    The PostgreSQL session runs in a non-UTC time zone so the tests see that times still come
    back as UTC.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'usage.sqlite'}"
        return
    server = request.getfixturevalue("postgres_url")
    schema = f"ws_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalize_url(server))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = normalize_url(server).update_query_dict(
        {"options": f"-csearch_path={schema} -ctimezone=America/Denver"}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
