"""Keys get a priority class, a share weight and an optional sharing group (the app a key counts as, when
several keys share one), changed in place by ``foresight keys update`` / ``PATCH /v1/keys/{name}``.

Keys made before this revision are ``interactive`` keys of weight 1, each its own app.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs with constant defaults: SQLite alters in place
    op.add_column("api_keys", sa.Column("priority_class", sa.String(16), nullable=False,
                                        server_default="interactive"))
    op.add_column("api_keys", sa.Column("share_weight", sa.Float, nullable=False, server_default="1.0"))
    op.add_column("api_keys", sa.Column("sharing_group", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as t:
        for name in ("sharing_group", "share_weight", "priority_class"):
            t.drop_column(name)
