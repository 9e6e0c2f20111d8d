"""Call checkpoints: the process carrying each call, process heartbeats, shared WebRTC
session tokens

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=80), nullable=True))
        batch_op.create_index("ix_calls_owner_status", ["owner", "status"], unique=False)
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("host", sa.String(length=160), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webrtc_session_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(
        "ix_webrtc_session_tokens_org_expires",
        "webrtc_session_tokens",
        ["org_id", "expires_at"],
    )
    op.create_index("ix_webrtc_session_tokens_expires", "webrtc_session_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_webrtc_session_tokens_expires", table_name="webrtc_session_tokens")
    op.drop_index("ix_webrtc_session_tokens_org_expires", table_name="webrtc_session_tokens")
    op.drop_table("webrtc_session_tokens")
    op.drop_table("processes")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_owner_status")
        batch_op.drop_column("owner")
