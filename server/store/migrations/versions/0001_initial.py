"""Plans, their outcomes, and fitted calibration maps.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("plan_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("domain", sa.String(128), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("raw_confidence", sa.Float, nullable=True),
        sa.Column("calibrated_confidence", sa.Float, nullable=True),
        sa.Column("rollout", sa.Text, nullable=True),
    )
    op.create_index("ix_plans_model_domain", "plans", ["model", "domain"])
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.String(64), sa.ForeignKey("plans.plan_id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("observation", sa.Text, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=True),
        sa.Column("fidelity", sa.Float, nullable=True),
        sa.UniqueConstraint("plan_id", name="uq_outcomes_plan_id"),
    )
    op.create_table(
        "calibration_maps",
        sa.Column("model", sa.String(256), primary_key=True),
        sa.Column("domain", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("outcomes", sa.Integer, nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("calibration_maps")
    op.drop_table("outcomes")
    op.drop_index("ix_plans_model_domain", table_name="plans")
    op.drop_table("plans")
