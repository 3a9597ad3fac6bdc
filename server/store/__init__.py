"""The outcome store: plans, outcomes and calibration maps in SQLite or PostgreSQL."""

from server.store.db import OutcomeRow, PlanRecord, Store, StoredOutcome, default_url
from server.store.errors import OutcomeExists, PlanNotFound, StoreError, StoreUnavailable

__all__ = [
    "OutcomeExists",
    "OutcomeRow",
    "PlanNotFound",
    "PlanRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredOutcome",
    "default_url",
]
