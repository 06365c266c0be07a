"""Speed at scale: the dispatcher reads due cards per channel in index order.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_PRESSING = "due_at IS NOT NULL AND rank < 2"
_STEPS = "due_at IS NOT NULL AND rank = 2"


def upgrade() -> None:
    op.create_index("ix_cards_pressing", "cards",
                    ["messenger", "channel", "rank", "deadline", "id"],
                    postgresql_where=sa.text(_PRESSING), sqlite_where=sa.text(_PRESSING))
    op.create_index("ix_cards_steps", "cards", ["messenger", "channel", "due_at"],
                    postgresql_where=sa.text(_STEPS), sqlite_where=sa.text(_STEPS))


def downgrade() -> None:
    op.drop_index("ix_cards_steps", table_name="cards")
    op.drop_index("ix_cards_pressing", table_name="cards")
