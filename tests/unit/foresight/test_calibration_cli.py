"""``foresight calibration report`` reading a store directly, and its errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from foresight.cli import main
from server.store import PlanRecord, Store, default_url


async def _fill(path: Path) -> None:
    store = Store(default_url(path))
    await store.open()
    for i in range(40):
        await store.record_plan(PlanRecord(f"p{i}", "ref", "shop", "greedy", "commit", 0.9, 0.9, None))
        await store.record_outcome(f"p{i}", i % 4 == 0)
    await store.save_map("ref", "shop", {"kind": "platt", "a": 1.0, "b": -3.3}, 40)
    await store.close()


def test_report_from_the_store_prints_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, png = tmp_path / "s.db", tmp_path / "r.png"
    asyncio.run(_fill(db))
    assert main(["calibration", "report", "--store", str(db), "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "domain shop: 40 outcomes, 10 successes; map platt (fitted on 40)" in out
    raw_line = next(line for line in out.splitlines() if line.strip().startswith("raw"))
    assert "0.6500" in raw_line  # ECE of 0.9 said vs 0.25 seen
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_report_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibration", "report", "--store", str(tmp_path / "none.db"), "--out", ""]) == 1
    assert "no store file" in capsys.readouterr().err
    assert main(["calibration", "report", "--url", "http://127.0.0.1:1", "--out", ""]) == 1
    err = capsys.readouterr().err
    assert "cannot reach http://127.0.0.1:1" in err and "Traceback" not in err
