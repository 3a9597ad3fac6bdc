"""The outcome store: one async SQLAlchemy engine over SQLite (default) or PostgreSQL.

SQLite runs in WAL mode with a busy timeout, and writes from this process are
serialized by a lock (SQLite has one writer at a time; queuing here avoids
"database is locked"). PostgreSQL needs nothing of the sort. An outcome is
acknowledged only after its transaction committed, so a crash loses nothing
that was acknowledged. The schema is created and upgraded by Alembic
migrations on :meth:`Store.open`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from server.store.audit import AuditQueries
from server.store.errors import KeyExists, OutcomeExists, PlanNotFound, StoreUnavailable
from server.store.maps import MapQueries
from server.store.model_events import ModelEventQueries
from server.store.schema import api_keys, key_events, outcomes, plans
from server.store.usage import UsageQueries

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 7_240_001  # advisory lock: replicas starting together migrate one at a time


def default_url(path: str | Path) -> str:
    """The SQLite URL of a store file."""
    return f"sqlite+aiosqlite:///{Path(path).expanduser().resolve()}"


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite:///`` URLs; use the async drivers."""
    for plain, driver in (("postgresql://", "postgresql+asyncpg://"), ("postgres://", "postgresql+asyncpg://"),
                          ("sqlite:///", "sqlite+aiosqlite:///")):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class PlanRecord:
    """What is remembered of every plan the server returned."""

    plan_id: str
    model: str
    domain: str
    algorithm: str
    decision: str
    raw_confidence: float | None
    calibrated_confidence: float | None
    rollout: str | None
    owner: str | None = None  # the key that asked (None: stored before keys had scopes, or auth off)
    record: dict[str, Any] | None = None  # the audit detail (what was asked, the candidate tree, the usage)
    truncated: bool = False  # the record was cut to max_plan_record_bytes


@dataclass(frozen=True)
class StoredOutcome:
    """An acknowledged outcome, joined to its plan."""

    plan: PlanRecord
    success: bool
    replaced: bool
    fidelity: float | None


@dataclass(frozen=True)
class OutcomeRow:
    """One (confidence, outcome) pair for calibration."""

    raw_confidence: float | None
    calibrated_confidence: float | None
    success: bool
    fidelity: float | None


class Store(AuditQueries, UsageQueries, MapQueries, ModelEventQueries):
    """Plans, outcomes and calibration maps. Every method raises :class:`StoreUnavailable` on database errors.

    Its owner opens it (``open``: connect and migrate) and closes it; a store whose open failed
    (the database was down at start-up) connects on its next use, so users never open it themselves.
    """

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._busy_timeout_s = busy_timeout_s
        self._engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._open_lock = asyncio.Lock()  # one migration at a time (Alembic's context is process-global)
        self._closed = False  # closed by its owner: no reconnecting on a late use

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    def describe(self) -> str:
        """The URL without its password, for logs."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    async def open(self) -> None:
        """Connect and bring the schema to the newest migration (idempotent, safe to call concurrently)."""
        async with self._open_lock:
            self._closed = False
            if self._engine is None:
                await self._open()

    async def _open(self) -> None:
        if self.is_sqlite:
            path = self.url.split("///", 1)[1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(self.url, pool_pre_ping=not self.is_sqlite)
        if self.is_sqlite:
            timeout_ms = int(self._busy_timeout_s * 1000)

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA busy_timeout={timeout_ms}")
                cur.close()

        try:
            async with engine.begin() as conn:
                await conn.run_sync(_migrate)
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreUnavailable(f"the outcome store at {self.describe()} cannot be opened: {exc}") from exc
        except BaseException:  # cancelled mid-migration: close what was opened, never leak it
            await asyncio.shield(engine.dispose())
            raise
        self._engine = engine

    async def close(self) -> None:
        self._closed = True  # before the lock: a reconnect waiting on it sees it and gives up
        async with self._open_lock:
            if self._engine is not None:
                await self._engine.dispose()
                self._engine = None

    @contextlib.asynccontextmanager
    async def _tx(self, write: bool) -> AsyncIterator[AsyncConnection]:
        if self._engine is None and not self._closed:
            async with self._open_lock:  # its open failed before (the database was down): try again
                if self._engine is None and not self._closed:
                    await self._open()
        if self._engine is None:
            raise StoreUnavailable("the outcome store is closed")
        lock = self._write_lock if write and self._write_lock is not None else None
        try:
            if lock is not None:
                await lock.acquire()
            try:
                async with self._engine.begin() as conn:
                    yield conn
            finally:
                if lock is not None:
                    lock.release()
        except (IntegrityError, PlanNotFound, OutcomeExists, KeyExists):  # the caller's to handle
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"the outcome store failed: {exc.__class__.__name__}: {exc}") from exc

    async def record_plan(self, plan: PlanRecord) -> None:
        async with self._tx(write=True) as conn:
            await conn.execute(plans.insert().values(created_at=_now(), **plan.__dict__))

    async def get_plan(self, plan_id: str) -> PlanRecord | None:
        async with self._tx(write=False) as conn:
            row = (await conn.execute(select(plans).where(plans.c.plan_id == plan_id))).mappings().first()
        return _plan(row) if row else None

    async def record_outcome(self, plan_id: str, success: bool, *, observation: str | None = None,
                             metadata: Mapping[str, Any] | None = None, fidelity_of: Any = None,
                             replace: bool = False, owner: str | None = None) -> StoredOutcome:
        """Store the outcome of a remembered plan; committed before this returns.

        ``fidelity_of(rollout, observation) -> float | None`` scores the imagined rollout against the
        observation (computed here so that it is stored with the outcome). ``owner``: only a plan of this
        key's is found (another's answers as an unknown one)."""
        try:
            async with self._tx(write=True) as conn:
                row = (await conn.execute(select(plans).where(plans.c.plan_id == plan_id))).mappings().first()
                if row is None or (owner is not None and row["owner"] != owner):
                    raise PlanNotFound(f"no plan with id {plan_id!r} is known to this server")
                plan = _plan(row)
                fidelity = fidelity_of(plan.rollout, observation) if fidelity_of and observation else None
                values = {"success": success, "observation": observation,
                          "metadata": dict(metadata) if metadata is not None else None, "fidelity": fidelity}
                existing = (await conn.execute(select(outcomes.c.id).where(outcomes.c.plan_id == plan_id))).first()
                if existing is not None:
                    if not replace:
                        raise OutcomeExists(f"plan {plan_id!r} already has an outcome; send \"replace\": true "
                                            "to overwrite it")
                    await conn.execute(update(outcomes).where(outcomes.c.plan_id == plan_id)
                                       .values(created_at=_now(), **values))
                else:
                    await conn.execute(outcomes.insert().values(plan_id=plan_id, created_at=_now(), **values))
        except IntegrityError as exc:  # a concurrent writer stored the same plan's outcome first
            raise OutcomeExists(f"plan {plan_id!r} already has an outcome; send \"replace\": true "
                                "to overwrite it") from exc
        return StoredOutcome(plan, success, existing is not None, fidelity)

    async def outcome_rows(self, model: str, domain: str) -> list[OutcomeRow]:
        """Every outcome of ``model`` in ``domain``, oldest first."""
        q = (select(plans.c.raw_confidence, plans.c.calibrated_confidence, outcomes.c.success, outcomes.c.fidelity)
             .select_from(outcomes.join(plans, outcomes.c.plan_id == plans.c.plan_id))
             .where(plans.c.model == model, plans.c.domain == domain)
             .order_by(outcomes.c.id))
        async with self._tx(write=False) as conn:
            rows = (await conn.execute(q)).all()
        return [OutcomeRow(r[0], r[1], bool(r[2]), r[3]) for r in rows]

    async def domains(self, model: str) -> list[str]:
        """Domains of ``model`` that have at least one outcome."""
        q = (select(plans.c.domain).select_from(outcomes.join(plans, outcomes.c.plan_id == plans.c.plan_id))
             .where(plans.c.model == model).distinct().order_by(plans.c.domain))
        async with self._tx(write=False) as conn:
            return [r[0] for r in (await conn.execute(q)).all()]

    async def models(self) -> list[str]:
        """Models that have remembered plans."""
        async with self._tx(write=False) as conn:
            return [r[0] for r in (await conn.execute(select(plans.c.model).distinct().order_by(plans.c.model))).all()]

    async def create_key(self, name: str, prefix: str, key_hash: str, *, requests_per_minute: int | None = None,
                         tokens_per_minute: int | None = None, role: str = "app",
                         domains: Sequence[str] | None = None, expires_at: dt.datetime | None = None,
                         actor: str | None = None, priority_class: str = "interactive", share_weight: float = 1.0,
                         sharing_group: str | None = None) -> KeyRecord:
        """A new key; ``domains`` default to one named after the key. Logged as ``created``."""
        row = {"name": name, "prefix": prefix, "key_hash": key_hash, "created_at": _now(), "revoked_at": None,
               "requests_per_minute": requests_per_minute, "tokens_per_minute": tokens_per_minute, "role": role,
               "domains": list(domains) if domains else [name], "expires_at": expires_at,
               "priority_class": priority_class, "share_weight": share_weight, "sharing_group": sharing_group}
        try:
            async with self._tx(write=True) as conn:
                if (await conn.execute(select(api_keys.c.id).where(api_keys.c.name == name))).first():
                    raise KeyExists(f"a key named {name!r} exists already (revoked keys keep their name)")
                await conn.execute(api_keys.insert().values(**row))
                await _log(conn, actor, "created", name, {"role": role, "domains": row["domains"]})
        except IntegrityError as exc:
            raise KeyExists(f"a key named {name!r} exists already") from exc
        return _key(row)

    async def find_key(self, key_hash: str) -> tuple[KeyRecord, str] | None:
        """The key whose HMAC is ``key_hash`` (revoked ones too; a rotated-out secret within its grace), with
        the stored hash it matched."""
        now = _now()
        q = select(api_keys).where(or_(api_keys.c.key_hash == key_hash,
                                       (api_keys.c.previous_hash == key_hash)
                                       & (api_keys.c.previous_valid_until > now)))
        async with self._tx(write=False) as conn:
            row = (await conn.execute(q)).mappings().first()
        if not row:
            return None
        return _key(row), str(row["key_hash"] if row["key_hash"] == key_hash else row["previous_hash"])

    async def get_key(self, name: str) -> KeyRecord | None:
        async with self._tx(write=False) as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.name == name))).mappings().first()
        return _key(row) if row else None

    async def list_keys(self) -> list[KeyRecord]:
        async with self._tx(write=False) as conn:
            rows = (await conn.execute(select(api_keys).order_by(api_keys.c.id))).mappings().all()
        return [_key(r) for r in rows]

    async def rotate_key(self, name: str, prefix: str, key_hash: str, *, grace_s: float,
                         actor: str | None = None) -> KeyRecord | None:
        """A new secret for an active key, same name and scopes; the old one still works for ``grace_s``.
        None when no active key has that name. Logged as ``rotated``."""
        async with self._tx(write=True) as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.name == name,
                                                             api_keys.c.revoked_at.is_(None)))).mappings().first()
            if row is None:
                return None
            until = _now() + dt.timedelta(seconds=grace_s)
            await conn.execute(update(api_keys).where(api_keys.c.name == name).values(
                prefix=prefix, key_hash=key_hash, previous_hash=row["key_hash"], previous_valid_until=until))
            await _log(conn, actor, "rotated", name, {"old_secret_valid_until": until.isoformat()})
            row = (await conn.execute(select(api_keys).where(api_keys.c.name == name))).mappings().first()
        return _key(row)

    async def update_key(self, name: str, changes: dict[str, Any], actor: str | None = None) -> KeyRecord | None:
        """Change an active key's ``UPDATABLE`` fields in place, its secret untouched; None when no active key
        has that name. Logged as ``updated`` with each changed field's old and new value (nothing changed:
        nothing logged)."""
        unknown = set(changes) - set(UPDATABLE)
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        async with self._tx(write=True) as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.name == name,
                                                             api_keys.c.revoked_at.is_(None)))).mappings().first()
            if row is None:
                return None
            values = {k: list(v) if k == "domains" else v for k, v in changes.items()}
            diff = {k: {"from": _plain(row[k]), "to": _plain(v)} for k, v in values.items() if row[k] != v}
            if diff:
                await conn.execute(update(api_keys).where(api_keys.c.name == name).values(**values))
                await _log(conn, actor, "updated", name, diff)
            row = (await conn.execute(select(api_keys).where(api_keys.c.name == name))).mappings().first()
        return _key(row)

    async def revoke_key(self, name: str, actor: str | None = None) -> bool:
        """Revoke by name; False when no active key has that name. Logged as ``revoked``."""
        async with self._tx(write=True) as conn:
            result = await conn.execute(update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                                        .values(revoked_at=_now(), previous_hash=None))
            if result.rowcount:
                await _log(conn, actor, "revoked", name, None)
        return bool(result.rowcount)

    async def key_events(self, limit: int = 100) -> list[KeyEvent]:
        """The newest admin actions on keys, newest first."""
        async with self._tx(write=False) as conn:
            rows = (await conn.execute(select(key_events).order_by(key_events.c.id.desc()).limit(limit))).mappings()
            return [KeyEvent(r["at"], r["actor"], r["action"], r["key_name"], r["detail"]) for r in rows.all()]

    async def count_outcomes(self) -> int:
        from sqlalchemy import func

        async with self._tx(write=False) as conn:
            return int((await conn.execute(select(func.count()).select_from(outcomes))).scalar_one())


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: never the key itself, only its HMAC."""

    name: str
    prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    role: str = "app"
    domains: tuple[str, ...] = ("*",)
    expires_at: dt.datetime | None = None
    priority_class: str = "interactive"
    share_weight: float = 1.0
    sharing_group: str | None = None

    @property
    def app(self) -> str:
        """The app the key counts as: its sharing group, else its own name."""
        return self.sharing_group or self.name


# what ``update_key`` may change (the secret, name and role only by rotation, never, and a new key)
UPDATABLE = ("priority_class", "share_weight", "sharing_group", "domains", "requests_per_minute",
             "tokens_per_minute", "expires_at")


@dataclass(frozen=True)
class KeyEvent:
    """An admin action on a key: who (the admin key's name; None for the command line), what, when."""

    at: dt.datetime
    actor: str | None
    action: str
    key_name: str
    detail: dict[str, Any] | None


async def _log(conn: AsyncConnection, actor: str | None, action: str, name: str, detail: dict[str, Any] | None
               ) -> None:
    await conn.execute(key_events.insert().values(at=_now(), actor=actor, action=action, key_name=name,
                                                  detail=detail))


def _plain(value: Any) -> Any:
    """A value as a JSON event detail keeps it (times as ISO 8601)."""
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _key(row: Any) -> KeyRecord:
    return KeyRecord(row["name"], row["prefix"], row["created_at"], row["revoked_at"], row["requests_per_minute"],
                     row["tokens_per_minute"], row["role"], tuple(row["domains"] or ()), row["expires_at"],
                     row.get("priority_class") or "interactive", float(row.get("share_weight") or 1.0),
                     row.get("sharing_group"))


def _plan(row: Any) -> PlanRecord:
    return PlanRecord(row["plan_id"], row["model"], row["domain"], row["algorithm"], row["decision"],
                      row["raw_confidence"], row["calibrated_confidence"], row["rollout"], row["owner"],
                      row["record"], bool(row["truncated"]))


def _migrate(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")
