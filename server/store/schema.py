"""Tables of the outcome store (SQLAlchemy Core). Changes go through a new migration."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A moment in UTC, always read back with its zone: SQLite keeps none (so a time read from it was
    naive, and not RFC 3339 in a response), PostgreSQL's timestamptz does. Written as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        # a time without a zone is UTC (asyncpg would read it in the process's local zone)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value

metadata = MetaData()

plans = Table(
    "plans",
    metadata,
    Column("plan_id", String(64), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("model", String(256), nullable=False),
    Column("domain", String(128), nullable=False),
    Column("algorithm", String(32), nullable=False),
    Column("decision", String(32), nullable=False),
    Column("raw_confidence", Float, nullable=True),
    Column("calibrated_confidence", Float, nullable=True),
    Column("rollout", Text, nullable=True),
    Column("owner", String(128), nullable=True),  # the key that asked; None: stored before keys had scopes
    Column("record", JSON, nullable=True),  # the audit detail: what was asked, the candidate tree, the usage
    Column("truncated", Boolean, nullable=False, server_default="0"),  # the record was cut to its bound
    Column("purged_at", UtcDateTime(), nullable=True),  # past retention: the detail is gone
    Index("ix_plans_model_domain", "model", "domain"),
    Index("ix_plans_owner", "owner"),
    Index("ix_plans_created_at", "created_at"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", String(64), ForeignKey("plans.plan_id"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("observation", Text, nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("fidelity", Float, nullable=True),
    UniqueConstraint("plan_id", name="uq_outcomes_plan_id"),
)

calibration_maps = Table(
    "calibration_maps",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("domain", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("params", JSON, nullable=False),
    Column("outcomes", Integer, nullable=False),
    Column("fitted_at", UtcDateTime(), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),  # +1 each save: replicas poll it
)

refit_leases = Table(  # one replica refits a domain at a time; a lease expires if its holder dies
    "refit_leases",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("domain", String(128), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("requests_per_minute", Integer, nullable=True),
    Column("tokens_per_minute", Integer, nullable=True),
    Column("role", String(16), nullable=False, server_default="app"),
    Column("domains", JSON, nullable=False, server_default='["*"]'),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("previous_hash", String(64), nullable=True),  # the secret before a rotation, valid for a grace
    Column("previous_valid_until", UtcDateTime(), nullable=True),
    Column("priority_class", String(16), nullable=False, server_default="interactive"),  # or "batch"
    Column("share_weight", Float, nullable=False, server_default="1.0"),  # its app's share within its class
    Column("sharing_group", String(128), nullable=True),  # the app it counts as (None: its own name)
)

key_events = Table(
    "key_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(128), nullable=True),  # the admin key, or None for the command line
    Column("action", String(32), nullable=False),  # created, rotated, revoked, updated
    Column("key_name", String(128), nullable=False),
    Column("detail", JSON, nullable=True),
)

key_usage = Table(
    "key_usage",
    metadata,
    Column("key_name", String(128), primary_key=True),  # "anonymous" when auth is off
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("model", String(256), primary_key=True, server_default=""),  # the base or an adapter; "": none
    Column("requests", Integer, nullable=False, server_default="0"),
    Column("prompt_tokens", Integer, nullable=False, server_default="0"),
    Column("completion_tokens", Integer, nullable=False, server_default="0"),
    Column("plans", Integer, nullable=False, server_default="0"),
    Column("outcomes", Integer, nullable=False, server_default="0"),
    Column("cost", Float, nullable=False, server_default="0"),  # in the TCO model's currency
)

model_events = Table(
    "model_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(128), nullable=True),  # the admin key, or None for the command line
    Column("action", String(32), nullable=False),  # adapter_loaded, adapter_unloaded
    Column("model", String(256), nullable=False),
    Column("detail", JSON, nullable=True),
)
