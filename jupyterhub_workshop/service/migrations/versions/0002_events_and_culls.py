"""Sessions from the hub's events, culls tied to the session they close, peaks between samples.

- ``workshop_event_spool``: how far the service has read the hub's event spool file (saved in
  the transaction that applies the events).
- ``workshop_culls.session_id`` and ``stop_sent``: a cull is recorded once per session, with
  when its stop was sent, so a stop sent before a crash still closes the session with the
  cull's reason; the counts come from the sessions a cull closed.
- ``workshop_samples.peak_active_users`` and ``peak_running_servers``: the highest counts since
  the previous sample (NULL in older rows: the sampled values are the peaks there).
- An index on ``workshop_sessions.stop_reason`` for the counts by reason.

Revision ID: 0002
Revises: 0001
Create Date: 2026-03-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def utc_datetime():
    if op.get_bind().dialect.name == "sqlite":
        return sa.String(27)
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workshop_event_spool",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
    )
    op.add_column("workshop_culls", sa.Column("session_id", sa.Integer, nullable=True))
    op.add_column("workshop_culls", sa.Column("stop_sent", utc_datetime(), nullable=True))
    # one cull (and one dry-run cull) per session; older rows have no session and stay as they are
    op.create_index("ix_workshop_culls_session", "workshop_culls", ["session_id", "dry_run"], unique=True)
    op.add_column("workshop_samples", sa.Column("peak_active_users", sa.Integer, nullable=True))
    op.add_column("workshop_samples", sa.Column("peak_running_servers", sa.Integer, nullable=True))
    op.create_index("ix_workshop_sessions_stop_reason", "workshop_sessions", ["stop_reason"])


def downgrade() -> None:
    op.drop_index("ix_workshop_sessions_stop_reason", "workshop_sessions")
    with op.batch_alter_table("workshop_samples") as batch:
        batch.drop_column("peak_running_servers")
        batch.drop_column("peak_active_users")
    op.drop_index("ix_workshop_culls_session", "workshop_culls")
    with op.batch_alter_table("workshop_culls") as batch:
        batch.drop_column("stop_sent")
        batch.drop_column("session_id")
    op.drop_table("workshop_event_spool")
