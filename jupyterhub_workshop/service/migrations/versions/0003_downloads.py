"""Home downloads asked for through the closing banner's link.

- ``workshop_downloads``: who followed the banner's "Download your work" link, and when (the
  service counts them on the admin page; the archive itself streams from the user's server).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def utc_datetime():
    if op.get_bind().dialect.name == "sqlite":
        return sa.String(27)
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workshop_downloads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("at", utc_datetime(), nullable=False),
    )
    op.create_index("ix_workshop_downloads_username", "workshop_downloads", ["username"])


def downgrade() -> None:
    op.drop_index("ix_workshop_downloads_username", "workshop_downloads")
    op.drop_table("workshop_downloads")
