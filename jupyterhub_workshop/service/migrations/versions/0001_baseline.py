"""The usage records as the first release wrote them (no schema version yet).

A database written before schema versions existed already has these tables: each is created
only when missing, so such a database is adopted as revision 0001 and upgraded from there.

Revision ID: 0001
Revises:
Create Date: 2026-03-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def utc_datetime():
    """UTC times: fixed-width ISO 8601 text on SQLite, TIMESTAMP WITH TIME ZONE elsewhere."""
    if op.get_bind().dialect.name == "sqlite":
        return sa.String(27)
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    existing = set(sa.inspect(bind).get_table_names())

    if "workshop_sessions" not in existing:
        op.create_table(
            "workshop_sessions",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("username", sa.String(255), nullable=False),
            sa.Column("server_name", sa.String(255), nullable=False),
            sa.Column("profile", sa.String(255), nullable=True),
            sa.Column("started", utc_datetime(), nullable=False),
            sa.Column("stopped", utc_datetime(), nullable=True),
            sa.Column("stop_reason", sa.String(16), nullable=True),
        )
        if dialect in ("sqlite", "postgresql"):
            # at most one open session per server; the lookup index too
            op.create_index(
                "ix_workshop_sessions_open",
                "workshop_sessions",
                ["username", "server_name"],
                unique=True,
                sqlite_where=sa.text("stopped IS NULL"),
                postgresql_where=sa.text("stopped IS NULL"),
            )
        else:
            op.create_index(
                "ix_workshop_sessions_user_server", "workshop_sessions", ["username", "server_name"]
            )
        op.create_index("ix_workshop_sessions_started", "workshop_sessions", ["started"])

    if "workshop_samples" not in existing:
        op.create_table(
            "workshop_samples",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", utc_datetime(), nullable=False),
            sa.Column("active_users", sa.Integer, nullable=False),
            sa.Column("running_servers", sa.Integer, nullable=False),
        )
        op.create_index("ix_workshop_samples_at", "workshop_samples", ["at"])

    if "workshop_culls" not in existing:
        op.create_table(
            "workshop_culls",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", utc_datetime(), nullable=False),
            sa.Column("username", sa.String(255), nullable=False),
            sa.Column("server_name", sa.String(255), nullable=False),
            sa.Column("reason", sa.String(16), nullable=False),
            sa.Column("dry_run", sa.Boolean, nullable=False),
        )
        op.create_index("ix_workshop_culls_at", "workshop_culls", ["at"])

    if "workshop_opt_outs" not in existing:
        op.create_table(
            "workshop_opt_outs",
            sa.Column("username", sa.String(255), primary_key=True),
            sa.Column("night", sa.Date, primary_key=True),
            sa.Column("created", utc_datetime(), nullable=False),
        )


def downgrade() -> None:
    for table in ("workshop_opt_outs", "workshop_culls", "workshop_samples", "workshop_sessions"):
        op.drop_table(table)
