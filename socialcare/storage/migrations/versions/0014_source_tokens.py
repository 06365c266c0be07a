"""Source tokens: access and refresh tokens renewed by TikTok, Threads and Google sources.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Json, UTCDateTime

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_tokens",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("access_token", sa.Text()),
        sa.Column("refresh_token", sa.Text()),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("renewed_at", UTCDateTime()),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("retired", Json, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("claim", sa.String(32)),
        sa.Column("claimed_until", UTCDateTime()),
        sa.Column("failure", sa.Text()),
        sa.Column("failed_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("source", name="pk_source_tokens"),
    )


def downgrade() -> None:
    op.drop_table("source_tokens")
