"""API key scopes; webhook signing secret rotation (the previous secret and its overlap)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        # Keys made before scopes existed keep doing everything they did.
        batch_op.add_column(
            sa.Column("scope", sa.String(length=16), server_default="admin", nullable=False)
        )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_secret_previous", sa.String(length=80), nullable=True)
        )
        batch_op.add_column(
            sa.Column("webhook_secret_previous_until", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret_previous_until")
        batch_op.drop_column("webhook_secret_previous")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("scope")
