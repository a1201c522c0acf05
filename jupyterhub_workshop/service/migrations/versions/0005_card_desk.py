"""The card desk's audit: who did what to which card, and when.

- ``workshop_desk_audit``: one row per desk action (reissue, revoke, restore, add), with the
  staff member's hub name, the cards it touched (space-separated usernames) and a short
  detail (never a password).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def utc_datetime():
    if op.get_bind().dialect.name == "sqlite":
        return sa.String(27)
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workshop_desk_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", utc_datetime(), nullable=False),
        sa.Column("staff", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("cards", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_workshop_desk_audit_at", "workshop_desk_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_workshop_desk_audit_at", "workshop_desk_audit")
    op.drop_table("workshop_desk_audit")
