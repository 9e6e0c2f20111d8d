"""Campaigns count contacts whose call an answering machine took (call status voicemail)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulk_calls", schema=None) as batch_op:
        # server_default: existing campaigns start at 0, as every other counter does.
        batch_op.add_column(
            sa.Column("voicemail", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("bulk_calls", schema=None) as batch_op:
        batch_op.drop_column("voicemail")
