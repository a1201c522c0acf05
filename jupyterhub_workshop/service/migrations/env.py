"""Alembic environment of the workshop service's usage database.

Run by :func:`jupyterhub_workshop.service.schema.upgrade`, which hands over a connection that
already holds the migration lock and its transaction: the version table is the service's own
(``workshop_schema_version``), so the usage tables may share a database with the hub's.
"""

from alembic import context

from jupyterhub_workshop.service.schema import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the workshop usage database is migrated by the service itself (UsageStore opens it): "
        "run jupyterhub-workshop-service or `jupyterhub-workshop usage export` against it"
    )
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
