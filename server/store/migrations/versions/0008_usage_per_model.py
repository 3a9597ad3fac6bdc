"""Usage per key, day and model (the base or an adapter): ``key_usage`` gains ``model`` in its key.

Rows from before are kept under the model ``""`` (not recorded). A primary key cannot be altered in place on
SQLite, so the table is rebuilt: created anew, filled from the old one, then renamed over it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COUNTS = ("requests", "prompt_tokens", "completion_tokens", "plans", "outcomes", "cost")


def _table(name: str, with_model: bool) -> None:
    key = [sa.Column("key_name", sa.String(128), primary_key=True), sa.Column("day", sa.String(10), primary_key=True)]
    if with_model:
        key.append(sa.Column("model", sa.String(256), primary_key=True, server_default=""))
    op.create_table(
        name, *key,
        *(sa.Column(c, sa.Integer, nullable=False, server_default="0") for c in COUNTS[:-1]),
        sa.Column("cost", sa.Float, nullable=False, server_default="0"),
    )


def _move(source: str, target: str, select_model: bool) -> None:
    counts = ", ".join(COUNTS)
    if select_model:  # down: a key's day sums its models
        sums = ", ".join(f"SUM({c})" for c in COUNTS)
        op.execute(f"INSERT INTO {target} (key_name, day, {counts}) "  # the names are ours
                   f"SELECT key_name, day, {sums} FROM {source} GROUP BY key_name, day")
    else:
        op.execute(f"INSERT INTO {target} (key_name, day, model, {counts}) "
                   f"SELECT key_name, day, '', {counts} FROM {source}")
    op.drop_table(source)
    op.rename_table(target, source)


def upgrade() -> None:
    _table("key_usage_by_model", with_model=True)
    _move("key_usage", "key_usage_by_model", select_model=False)


def downgrade() -> None:
    _table("key_usage_by_day", with_model=False)
    _move("key_usage", "key_usage_by_day", select_model=True)
