"""``foresight reference train --base`` and ``foresight reference eval --adapter``: the recipe on a pretrained
base, as a LoRA adapter (:mod:`reference.lora`, :mod:`reference.fc_rl`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# optimizer steps per stage when --steps is not given (the shipped adapters': docs/reference-model.md)
DEFAULT_STEPS = {"wm": 100, "fe": 100, "rl": 20}
ADAPTER_STATES = 2000  # held-out turns whose confidence is judged against outcomes (the issue asks ≥ 2,000)


def base_of(adapter: Path, base: str | None) -> Path:
    """The base an adapter is served on: ``base`` (a name or directory), else the one the adapter names."""
    from catalog.adapters import read_meta

    name = base or read_meta(adapter).get("base")
    if not isinstance(name, str) or not name:
        raise SystemExit(f"foresight: {adapter} does not name its base; pass --model BASE")
    return base_dir(name)


def base_dir(name: str) -> Path:
    """A base given by an added model's name or a directory, checked to be a checkpoint."""
    from catalog.errors import CatalogError
    from foresight.models import checkpoint

    try:
        path = Path(checkpoint(name))
    except CatalogError as exc:
        raise SystemExit(f"foresight: {exc}") from None
    if not (path / "config.json").is_file():
        raise SystemExit(f"foresight: the base {name!r} is not a checkpoint directory (no config.json)")
    return path


async def run_adapter_eval(adapter: Path, base: Path, merged: bool = False, **kwargs: Any) -> Any:
    """The reference evaluation of ``adapter`` served by vLLM on ``base`` (bfloat16, as it was trained);
    ``merged``: on the base with the adapter folded into its weights (no LoRA at run time)."""
    from catalog.adapters import check_adapter
    from catalog.errors import CatalogError
    from engine import open_engine
    from engine.on_adapter import on_adapter
    from reference.evaluate import evaluate

    try:
        info = check_adapter(adapter, base)
    except CatalogError as exc:
        raise SystemExit(f"foresight: {exc}") from None
    name = adapter.resolve().name
    if merged:
        from reference.lora import merge_adapter

        with tempfile.TemporaryDirectory(prefix="foresight-merged-") as tmp:
            folded = merge_adapter(adapter, base, Path(tmp) / name)
            async with open_engine(folded, dtype="bfloat16", log_stats=False, max_model_len=2048) as engine:
                return await evaluate(engine, **kwargs)
    async with open_engine(base, dtype="bfloat16", log_stats=False, adapters=((name, str(adapter)),),
                           max_lora_rank=max(16, info.rank), max_model_len=2048) as engine:
        return await evaluate(on_adapter(engine, name), **kwargs)


def train(args: argparse.Namespace) -> int:
    from foresight.reference import print_table
    from reference import lora

    base = base_dir(args.base)
    stages = args.stages or ("wm", "fe", "rl")
    steps = args.steps or tuple(DEFAULT_STEPS[s] for s in stages)
    if len(steps) != len(stages):
        raise SystemExit(f"foresight: --steps gives {len(steps)} step counts for {len(stages)} stages")
    out = Path(args.out or f"runs/{base.name}-{args.world}-{'-'.join(stages)}")
    if args.force and out.exists():
        shutil.rmtree(out)
    cfg = lora.AdapterConfig(base=str(base), world=args.world, stages=stages, steps=steps, rank=args.rank,
                             seed=args.seed, policy_plans=args.policy_plans)
    try:
        lora.check_config(cfg)  # before anything is loaded or trained
        lora.train_adapter(cfg, out)
    except lora.RecipeError as exc:
        raise SystemExit(f"foresight: {exc}") from None
    print(f"saved adapter {out} (stages {','.join(stages)}, steps {','.join(map(str, steps))})", file=sys.stderr)
    if args.skip_check or args.world != "numberreach":
        return 0
    result = asyncio.run(run_adapter_eval(out, base, episodes=args.check_episodes, states=ADAPTER_STATES, seed=1,
                                          planners=("best_of_8", "branch_commit")))
    print_table(result, sys.stderr)
    (out / "acceptance.json").write_text(json.dumps(result.to_dict(), indent=2))
    return 0
