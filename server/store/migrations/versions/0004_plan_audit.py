"""The plan audit trail: each plan keeps what was asked and its candidate tree (bounded in size, marked when
truncated); a retention purge drops that detail from old plans and marks them purged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs with constant defaults: SQLite alters in place instead of rebuilding plans, which
    # outcomes' foreign key points at
    op.add_column("plans", sa.Column("record", sa.JSON, nullable=True))
    op.add_column("plans", sa.Column("truncated", sa.Boolean, nullable=False, server_default="0"))
    op.add_column("plans", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_plans_created_at", "plans", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_plans_created_at", table_name="plans")
    with op.batch_alter_table("plans") as t:
        for name in ("purged_at", "truncated", "record"):
            t.drop_column(name)
