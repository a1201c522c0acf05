"""When each open session was last known to run, so one whose stop nobody saw ends there.

- ``workshop_sessions.seen``: the last moment the session's server was known to run (a pass
  listed it, the service stopped while it ran); NULL: its start. Before this revision a
  session whose server went while the service was down (a hub stopped for the night) was
  closed when the service came back, billing the night.
- Sessions open at the upgrade were last known to run at the last pass: the last sample's time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def utc_datetime():
    if op.get_bind().dialect.name == "sqlite":
        return sa.String(27)
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("workshop_sessions", sa.Column("seen", utc_datetime(), nullable=True))
    # same type on both sides (text on SQLite, timestamptz elsewhere): a plain copy
    op.execute(
        "UPDATE workshop_sessions SET seen = (SELECT max(at) FROM workshop_samples) WHERE stopped IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("workshop_sessions") as batch:
        batch.drop_column("seen")
