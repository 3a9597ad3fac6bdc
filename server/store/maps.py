"""Calibration maps shared by replicas: each save bumps the domain's version, which the other replicas
poll (``map_versions``) to load the new map; a lease lets one replica refit a domain at a time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.schema import calibration_maps, refit_leases


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MapQueries:
    _tx: Callable[..., AbstractAsyncContextManager[AsyncConnection]]

    async def save_map(self, model: str, domain: str, params: Mapping[str, Any], n_outcomes: int) -> int:
        """Store ``domain``'s map; returns its new version (one more than the last, 1 for the first)."""
        values = {"kind": str(params.get("kind", "identity")), "params": dict(params), "outcomes": n_outcomes,
                  "fitted_at": _now()}
        async with self._tx(write=True) as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            stmt = insert(calibration_maps).values(model=model, domain=domain, version=1, **values)
            stmt = stmt.on_conflict_do_update(index_elements=["model", "domain"],
                                              set_={**values, "version": calibration_maps.c.version + 1})
            await conn.execute(stmt)
            key = (calibration_maps.c.model == model) & (calibration_maps.c.domain == domain)
            return int((await conn.execute(select(calibration_maps.c.version).where(key))).scalar_one())

    async def load_maps(self, model: str, domains: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Persisted maps of ``model`` by domain (all, or ``domains``), with ``outcomes`` (how many they were
        fitted on) and ``version``."""
        q = select(calibration_maps).where(calibration_maps.c.model == model)
        if domains is not None:
            q = q.where(calibration_maps.c.domain.in_(domains))
        async with self._tx(write=False) as conn:
            rows = (await conn.execute(q)).mappings().all()
        return {r["domain"]: {**r["params"], "outcomes": r["outcomes"], "version": r["version"]} for r in rows}

    async def map_versions(self, model: str) -> dict[str, int]:
        """Each domain's map version: what a replica polls to see another's refit (one small query)."""
        q = select(calibration_maps.c.domain, calibration_maps.c.version).where(calibration_maps.c.model == model)
        async with self._tx(write=False) as conn:
            return {d: int(v) for d, v in (await conn.execute(q)).all()}

    async def acquire_refit_lease(self, model: str, domain: str, holder: str, ttl_s: float) -> bool:
        """Take (or renew) the lease to refit ``domain``: True unless another holder's lease is still live.
        One statement — an upsert that only overwrites an expired or own lease — so two replicas asking
        at once cannot both get it."""
        now = _now()
        values = {"holder": holder, "expires_at": now + dt.timedelta(seconds=ttl_s)}
        async with self._tx(write=True) as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            stmt = insert(refit_leases).values(model=model, domain=domain, **values)
            stmt = stmt.on_conflict_do_update(
                index_elements=["model", "domain"], set_=values,
                where=(refit_leases.c.expires_at < now) | (refit_leases.c.holder == holder))
            await conn.execute(stmt)
            key = (refit_leases.c.model == model) & (refit_leases.c.domain == domain)
            current = (await conn.execute(select(refit_leases.c.holder).where(key))).scalar_one()
        return bool(current == holder)

    async def release_refit_lease(self, model: str, domain: str, holder: str) -> None:
        key = ((refit_leases.c.model == model) & (refit_leases.c.domain == domain)
               & (refit_leases.c.holder == holder))
        async with self._tx(write=True) as conn:
            await conn.execute(delete(refit_leases).where(key))
