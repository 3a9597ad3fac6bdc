"""A database from before usage per model (revision 0007) upgrades in place: each key's day keeps its counts,
under no model; a downgrade folds a key's models back into one row a day."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from server.store import Store
from server.store.db import MIGRATIONS


def _migrate(path: Path, revision: str, up: bool = True, rows: tuple[tuple, ...] = ()) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        (command.upgrade if up else command.downgrade)(cfg, revision)
        for row in rows:
            conn.execute(sa.text("INSERT INTO key_usage (key_name, day, requests, prompt_tokens, completion_tokens, "
                                 "plans, outcomes, cost) VALUES (:k, :d, :r, :p, :c, :pl, :o, :co)"),
                         dict(zip(("k", "d", "r", "p", "c", "pl", "o", "co"), row, strict=True)))
    engine.dispose()


async def test_usage_of_the_previous_release_is_kept_under_no_model_and_folds_back_down(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _migrate(db, "0007", rows=(("app", "2026-12-06", 3, 30, 10, 1, 1, 0.5),
                               ("app", "2026-12-07", 1, 5, 5, 0, 0, 0.25)))
    store = Store(f"sqlite+aiosqlite:///{db}")
    await store.open()  # upgrades to the head
    try:
        rows = await store.usage_rows()
        assert [(r.key_name, r.day, r.model, r.requests, r.prompt_tokens, r.cost) for r in rows] == [
            ("app", "2026-12-06", "", 3, 30, 0.5), ("app", "2026-12-07", "", 1, 5, 0.25)]
        await store.add_usage("2026-12-07", {("app", "shop"): {"requests": 2, "prompt_tokens": 7, "cost": 1.0},
                                             ("app", ""): {"requests": 1}})
        by_model = {r.model: r for r in await store.usage_rows(since="2026-12-07")}
        assert (by_model[""].requests, by_model["shop"].requests, by_model["shop"].prompt_tokens) == (2, 2, 7)
        assert [r.model for r in await store.usage_rows(model="shop")] == ["shop"]
    finally:
        await store.close()
    _migrate(db, "0007", up=False)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        folded = conn.execute(sa.text("SELECT day, requests, prompt_tokens, cost FROM key_usage ORDER BY day")).all()
    engine.dispose()
    assert [tuple(r) for r in folded] == [("2026-12-06", 3, 30, 0.5), ("2026-12-07", 4, 12, 1.25)]
