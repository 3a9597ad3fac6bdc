"""The plan audit trail: what is kept of each plan (bounded in size), the retention purge, and reading it.

A plan's record holds what was asked (the request: prompt or messages, algorithm, budget, thresholds,
tools), every candidate (text, rollout, raw and calibrated confidence, value, action, problems, tokens,
its parent), which one was chosen, and the usage. Past ``max_plan_record_bytes`` it is cut in steps —
candidate texts, then the prompt, then the candidates themselves — and says what was cut.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from planner.format import parse_turn
from protocol.audit import AuditOutcome, PlanAudit, PlanPage, PlanSummary
from protocol.plan import ConfidenceModel, PlanInput, PlanResponse
from server.auth import Principal
from server.services.errors import InvalidRequest, UnknownResource
from server.store import AuditEntry, BadCursor, Store, StoreUnavailable
from server.store.audit import OutcomeFilter

log = logging.getLogger("foresight.audit")
TEXT_CUT = 400  # characters of a candidate's text and rollout kept once a record is over its bound


def _size(record: dict[str, Any]) -> int:
    return len(json.dumps(record, separators=(",", ":"), default=str).encode())


def audit_record(req: PlanInput, response: PlanResponse, chosen: int | None, limit: int,
                 rollouts: Mapping[int, str | None] | None = None) -> tuple[dict[str, Any], bool]:
    """The plan's audit record and whether it was truncated to ``limit`` bytes. ``rollouts``: each candidate's
    imagined span, as the planner parsed it (parsed here from the text where not given)."""
    known = rollouts or {}
    candidates = [{**c.model_dump(mode="json"),
                   "rollout": known[c.id] if c.id in known else parse_turn(c.text).imaginary}
                  for c in response.candidates]
    record: dict[str, Any] = {"request": req.model_dump(mode="json", exclude_none=True), "candidates": candidates,
                              "chosen": chosen, "usage": response.usage.model_dump(mode="json"),
                              "latency_s": response.latency_s}
    if _size(record) <= limit:
        return record, False
    cuts = []
    long = [(c, key) for c in candidates for key in ("text", "rollout")
            if isinstance(c.get(key), str) and len(c[key]) > TEXT_CUT]
    for c, key in long:
        c[key] = c[key][:TEXT_CUT] + "…"
    if long:
        cuts.append(f"candidate texts cut to {TEXT_CUT} characters")
    if _size(record) > limit:
        for key in ("prompt", "messages", "tools"):
            if record["request"].pop(key, None) is not None:
                cuts.append(f"request {key} dropped")
    while _size(record) > limit and len(candidates) > 1:
        keep = [c for c in candidates if c["id"] == chosen] or candidates[:1]
        rest = [c for c in candidates if c not in keep]
        candidates[:] = keep + rest[: len(rest) // 2]
    if len(candidates) < len(response.candidates):
        cuts.append(f"{len(response.candidates) - len(candidates)} of {len(response.candidates)} candidates dropped")
    if _size(record) > limit:  # still over: keep the numbers of the chosen candidate only
        numbers = ("id", "parent", "depth", "raw_confidence", "calibrated_confidence", "value", "tokens", "complete",
                   "continued")
        record = {"request": {"algorithm": record["request"].get("algorithm")}, "chosen": chosen,
                  "candidates": [{k: c.get(k) for k in numbers} for c in candidates[:1]], "usage": record["usage"],
                  "latency_s": record["latency_s"]}
        cuts.append("reduced to the chosen candidate's numbers")
    record["truncated"] = cuts
    return record, True


def utc(t: dt.datetime | None, param: str) -> dt.datetime | None:
    """``t`` in UTC (a time without a zone is UTC): SQLite keeps no zone, so times are stored in UTC."""
    if t is None:
        return None
    try:
        return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise InvalidRequest(f"{param} is out of range", param=param) from None


class Retention:
    """Purges plans past ``days`` (``clock``: now, injectable for tests); never a younger plan."""

    def __init__(self, store: Store, days: float,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.store = store
        self.days = days
        self.clock = clock

    async def purge_once(self) -> int:
        return await self.store.purge_plans(self.clock() - dt.timedelta(days=self.days))

    async def run(self, interval_s: float) -> None:
        """Purge now and every ``interval_s``, until cancelled; a store that is down is tried next time."""
        while True:
            try:
                purged = await self.purge_once()
                if purged:
                    log.info("purged the audit detail of %d plans older than %g days", purged, self.days)
            except StoreUnavailable:
                pass
            except Exception:  # never let one failure stop the retention
                log.exception("the retention purge failed; it runs again in %g s", interval_s)
            await asyncio.sleep(interval_s)


def _summary_fields(e: AuditEntry) -> dict[str, Any]:
    outcome = None if e.outcome is None else AuditOutcome(success=e.outcome.success, at=e.outcome.at,
                                                          fidelity=e.outcome.fidelity,
                                                          observation=e.outcome.observation)
    return {"plan_id": e.plan_id, "created_at": e.created_at, "model": e.model, "domain": e.domain,
            "algorithm": e.algorithm, "decision": e.decision, "owner": e.owner,
            "confidence": ConfidenceModel(raw=e.raw_confidence, calibrated=e.calibrated_confidence),
            "outcome": outcome, "truncated": e.truncated}


class AuditService:
    """Reads the trail for a caller: an app key sees its own plans; another's answers as an unknown one."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, plan_id: str, principal: Principal) -> PlanAudit:
        e = await self.store.audit_entry(plan_id, owner=principal.owner)
        if e is None:  # unknown, or not the caller's (the owner filter also hides ownerless plans)
            raise UnknownResource(f"no plan with id {plan_id!r} is known to this server", param="plan_id",
                           code="plan_not_found")
        r = e.record or {}
        return PlanAudit(**_summary_fields(e), rollout=e.rollout, request=r.get("request"),
                         candidates=r.get("candidates"), chosen=r.get("chosen"), usage=r.get("usage"),
                         truncated_by=list(r.get("truncated") or []))

    async def page(self, principal: Principal, *, domain: str | None, since: dt.datetime | None,
                   until: dt.datetime | None, outcome: OutcomeFilter | None, limit: int,
                   cursor: str | None) -> PlanPage:
        since, until = utc(since, "since"), utc(until, "until")
        try:
            entries, nxt = await self.store.audit_page(owner=principal.owner, domain=domain, since=since,
                                                       until=until, outcome=outcome, limit=limit, cursor=cursor)
        except BadCursor as exc:
            raise InvalidRequest(str(exc), param="cursor") from None
        return PlanPage(data=[PlanSummary(**_summary_fields(e)) for e in entries], next_cursor=nxt)
