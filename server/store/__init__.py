"""The outcome store: plans, outcomes and calibration maps in SQLite or PostgreSQL."""

from server.store.audit import AuditEntry, BadCursor, OutcomeInfo
from server.store.db import KeyEvent, KeyRecord, OutcomeRow, PlanRecord, Store, StoredOutcome, default_url
from server.store.errors import KeyExists, OutcomeExists, PlanNotFound, StoreError, StoreUnavailable
from server.store.usage import UsageRow

__all__ = [
    "AuditEntry",
    "BadCursor",
    "KeyEvent",
    "KeyExists",
    "KeyRecord",
    "OutcomeExists",
    "OutcomeInfo",
    "OutcomeRow",
    "PlanNotFound",
    "PlanRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredOutcome",
    "UsageRow",
    "default_url",
]
