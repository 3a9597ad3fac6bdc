"""Keys get a role, the domains they may use, an expiry and a rotation grace; plans get their owner; admin
actions on keys are logged.

Keys made before this revision become ``app`` keys with domains ``*``: they keep what they could do and
gain nothing (the server warns about each at start-up). Plans stored before it have no owner: only
admins see them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs with constant defaults: SQLite then alters in place (a rebuild of plans would drop
    # a table that outcomes' foreign key points at)
    op.add_column("api_keys", sa.Column("role", sa.String(16), nullable=False, server_default="app"))
    op.add_column("api_keys", sa.Column("domains", sa.JSON, nullable=False, server_default='["*"]'))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("previous_hash", sa.String(64), nullable=True))
    op.add_column("api_keys", sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("plans", sa.Column("owner", sa.String(128), nullable=True))
    op.create_index("ix_plans_owner", "plans", ["owner"])
    op.create_table(
        "key_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("key_name", sa.String(128), nullable=False),
        sa.Column("detail", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("key_events")
    op.drop_index("ix_plans_owner", table_name="plans")
    with op.batch_alter_table("plans") as t:
        t.drop_column("owner")
    with op.batch_alter_table("api_keys") as t:
        for name in ("previous_valid_until", "previous_hash", "expires_at", "domains", "role"):
            t.drop_column(name)
