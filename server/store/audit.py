"""The plan audit trail's queries: one plan with its outcome, plans paged by a cursor, and the retention
purge. Mixed into :class:`server.store.db.Store`, whose transactions they use."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.schema import outcomes, plans

OutcomeFilter = Literal["success", "failure", "none"]


@dataclass(frozen=True)
class OutcomeInfo:
    success: bool
    at: dt.datetime
    fidelity: float | None
    observation: str | None


@dataclass(frozen=True)
class AuditEntry:
    """One plan as the audit trail keeps it (``record`` is None for plans from before the trail)."""

    plan_id: str
    created_at: dt.datetime
    model: str
    domain: str
    algorithm: str
    decision: str
    owner: str | None
    raw_confidence: float | None
    calibrated_confidence: float | None
    rollout: str | None
    record: dict[str, Any] | None
    truncated: bool
    outcome: OutcomeInfo | None


class BadCursor(ValueError):
    """A ``cursor`` that this server did not hand out."""


def encode_cursor(created_at: dt.datetime, plan_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{plan_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        at, _, plan_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return dt.datetime.fromisoformat(at), plan_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor(f"cursor {cursor[:40]!r} was not handed out by this server") from exc


def _query() -> Select[Any]:
    return (select(plans, outcomes.c.success, outcomes.c.created_at.label("outcome_at"), outcomes.c.fidelity,
                   outcomes.c.observation)
            .select_from(plans.outerjoin(outcomes, outcomes.c.plan_id == plans.c.plan_id))
            .where(plans.c.purged_at.is_(None)))


def _entry(r: Any) -> AuditEntry:
    outcome = None if r["success"] is None else OutcomeInfo(bool(r["success"]), r["outcome_at"], r["fidelity"],
                                                            r["observation"])
    return AuditEntry(r["plan_id"], r["created_at"], r["model"], r["domain"], r["algorithm"], r["decision"],
                      r["owner"], r["raw_confidence"], r["calibrated_confidence"], r["rollout"], r["record"],
                      bool(r["truncated"]), outcome)


class AuditQueries:
    """Reads of the audit trail. ``owner``: only that key's plans (None: every plan, for admins)."""

    _tx: Callable[..., AbstractAsyncContextManager[AsyncConnection]]

    async def audit_entry(self, plan_id: str, owner: str | None = None) -> AuditEntry | None:
        q = _query().where(plans.c.plan_id == plan_id)
        if owner is not None:
            q = q.where(plans.c.owner == owner)
        async with self._tx(write=False) as conn:
            row = (await conn.execute(q)).mappings().first()
        return _entry(row) if row else None

    async def audit_page(self, *, owner: str | None = None, domain: str | None = None,
                         since: dt.datetime | None = None, until: dt.datetime | None = None,
                         outcome: OutcomeFilter | None = None, limit: int = 50,
                         cursor: str | None = None) -> tuple[list[AuditEntry], str | None]:
        """Newest first; the next page's cursor, or None at the end."""
        q = _query()
        for column, value in ((plans.c.owner, owner), (plans.c.domain, domain)):
            if value is not None:
                q = q.where(column == value)
        if since is not None:
            q = q.where(plans.c.created_at >= since)
        if until is not None:
            q = q.where(plans.c.created_at < until)
        if outcome is not None:
            wanted = outcomes.c.success == (outcome == "success")
            q = q.where(outcomes.c.success.is_(None) if outcome == "none" else wanted)
        if cursor is not None:
            at, plan_id = decode_cursor(cursor)
            q = q.where(or_(plans.c.created_at < at, and_(plans.c.created_at == at, plans.c.plan_id < plan_id)))
        q = q.order_by(plans.c.created_at.desc(), plans.c.plan_id.desc()).limit(limit + 1)
        async with self._tx(write=False) as conn:
            rows = [_entry(r) for r in (await conn.execute(q)).mappings().all()]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1].created_at, rows[-1].plan_id) if more and rows else None)

    async def purge_plans(self, before: dt.datetime) -> int:
        """Drop the audit detail of plans made before ``before`` and mark them purged (their outcomes and the
        calibration they fed stay). Never touches a younger plan."""
        async with self._tx(write=True) as conn:
            result = await conn.execute(update(plans).where(plans.c.created_at < before, plans.c.purged_at.is_(None))
                                        .values(record=None, purged_at=dt.datetime.now(dt.UTC)))
        return int(result.rowcount or 0)
