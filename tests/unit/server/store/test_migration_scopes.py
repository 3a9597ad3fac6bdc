"""A database made by the release before key scopes (revision 0002) upgrades in place: its keys become
``app`` keys with domains ``*`` (what they could do, nothing more), its plans have no owner."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from server.store import Store
from server.store.db import MIGRATIONS


def _old_database(path: Path) -> str:
    engine = sa.create_engine(f"sqlite:///{path}")
    sa.event.listen(engine, "connect", lambda c, _: c.execute("PRAGMA foreign_keys=ON"))  # as the store runs
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        now = dt.datetime.now(dt.UTC)
        conn.execute(sa.text("INSERT INTO api_keys (name, prefix, key_hash, created_at) "
                             "VALUES ('old-app', 'fsk-abcd', :h, :t)"), {"h": "a" * 64, "t": now})
        conn.execute(sa.text("INSERT INTO plans (plan_id, created_at, model, domain, algorithm, decision) "
                             "VALUES ('plan-old', :t, 'm', 'billing', 'greedy', 'commit')"), {"t": now})
        conn.execute(sa.text("INSERT INTO outcomes (plan_id, created_at, success) VALUES ('plan-old', :t, 1)"),
                     {"t": now})  # an outcome points at the plan: the upgrade must not rebuild plans
    engine.dispose()
    return f"sqlite+aiosqlite:///{path}"


async def test_keys_and_plans_of_the_previous_release_upgrade(tmp_path: Path) -> None:
    store = Store(_old_database(tmp_path / "old.db"))
    await store.open()
    try:
        [key] = await store.list_keys()
        assert (key.name, key.role, key.domains, key.expires_at) == ("old-app", "app", ("*",), None)
        plan = await store.get_plan("plan-old")
        assert plan is not None and plan.owner is None and plan.domain == "billing" and plan.record is None
        [row] = await store.outcome_rows("m", "billing")
        assert row.success is True  # the outcome survived the upgrade
        new = await store.create_key("new-app", "fsk-efgh", "b" * 64)
        assert new.domains == ("new-app",) and new.role == "app"  # a new key gets its own domain only
        assert [(e.action, e.key_name) for e in await store.key_events()] == [("created", "new-app")]
    finally:
        await store.close()
