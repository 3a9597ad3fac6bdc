"""A database from before key classes (revision 0008) upgrades in place: its keys become interactive keys of
weight 1, each its own app, and keep their secret; a downgrade drops the new columns only."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from server.store import Store
from tests.unit.server.store.test_migration_usage import _migrate


async def test_old_keys_become_interactive_apps_of_their_own(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _migrate(db, "0008")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO api_keys (name, prefix, key_hash, created_at, role, domains) VALUES "
                             "('shop', 'fsk-abcd', 'h1', '2026-12-07 10:00:00', 'app', '[\"shop\"]')"))
    engine.dispose()
    store = Store(f"sqlite+aiosqlite:///{db}")
    await store.open()  # upgrades to the head
    try:
        key = await store.get_key("shop")
        assert key is not None
        assert (key.priority_class, key.share_weight, key.sharing_group, key.app) == ("interactive", 1.0, None,
                                                                                      "shop")
        updated = await store.update_key("shop", {"priority_class": "batch", "sharing_group": "reports"}, actor="ops")
        assert updated is not None and updated.app == "reports"
        found = await store.find_key("h1")
        assert found is not None and found[0].priority_class == "batch"  # the same secret
    finally:
        await store.close()
    _migrate(db, "0008", up=False)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("api_keys")}
        names = conn.execute(sa.text("SELECT name, key_hash FROM api_keys")).all()
    engine.dispose()
    assert not {"priority_class", "share_weight", "sharing_group"} & columns
    assert [tuple(r) for r in names] == [("shop", "h1")]
