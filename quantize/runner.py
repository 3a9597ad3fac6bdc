"""Runs a quantization: the worker in the quantization environment, then the evaluation through vLLM.

The checkpoint is written to a hidden directory beside ``--out`` and moved into place only when the
worker succeeded, so a failed or interrupted run never leaves a half-written checkpoint at ``--out``
(and ``--force`` removes the old one only then).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quantize.errors import BadCheckpoint, EvaluationFailed, OutputExists, QuantizeEnvMissing, WorkerFailed
from quantize.fit import read_config_json
from quantize.plan import QuantPlan
from quantize.report import Quality, QuantReport
from quantize.sizes import checkpoint_size
from quantize.traces import Trace, write_traces

ENV_DIR = ".venv-quantize"
ENV_VAR = "FORESIGHT_QUANTIZE_PYTHON"
PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent  # a checkout's root when installed editable (where .venv-quantize lives)
MAKE_HINT = "run `make quantize-env` (scripts/quantize-env.sh creates .venv-quantize) or pass --python"


def find_python(explicit: str | None = None) -> str:
    """The interpreter that has llm-compressor: --python, $FORESIGHT_QUANTIZE_PYTHON, this one, .venv-quantize."""
    for label, cand in (("--python", explicit), (ENV_VAR, os.environ.get(ENV_VAR))):
        if cand:
            if not Path(cand).is_file():
                raise QuantizeEnvMissing(f"{label} {cand!r} does not exist; {MAKE_HINT}")
            return cand
    if importlib.util.find_spec("llmcompressor") is not None:
        return sys.executable
    for root in (SOURCE_ROOT, Path.cwd()):
        cand_path = root / ENV_DIR / "bin" / "python"
        if cand_path.is_file():
            return str(cand_path)
    raise QuantizeEnvMissing(f"no Python environment with llm-compressor found (it cannot share vLLM's: "
                             f"DESIGN §7); {MAKE_HINT}")


def check_output(out: Path, force: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise OutputExists(f"{out} exists and is not empty: choose another --out or pass --force to replace it")


def run_worker(plan: QuantPlan, calibration: list[Trace], heldout: list[Trace] | dict[str, list[Trace]],
               python: str, force: bool) -> dict[str, Any]:
    """Quantize into a staging directory, then move it to ``plan.out``; the worker's result. ``heldout``: one
    set, or several by name (each measured on its own, then together)."""
    sets = heldout if isinstance(heldout, dict) else {"heldout": heldout}
    out = Path(plan.out).resolve()
    check_output(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="foresight-quantize-") as tmp:
            cal, result = Path(tmp) / "calibration.jsonl", Path(tmp) / "result.json"
            write_traces(calibration, cal)
            held = []
            for i, (name, traces) in enumerate(sets.items()):
                write_traces(traces, Path(tmp) / f"heldout-{i}.jsonl")
                held.append({"name": name, "path": str(Path(tmp) / f"heldout-{i}.jsonl")})
            job = {"plan": {**asdict(plan), "out": str(staging), "recipe": plan.recipe()},
                   "calibration": str(cal), "heldout": held, "result": str(result)}
            (Path(tmp) / "job.json").write_text(json.dumps(job))
            # the worker sees this package alone: not the serving environment's site-packages, whose
            # transformers and compressed-tensors would shadow the quantization environment's own
            src = Path(tmp) / "src"
            src.mkdir()
            (src / "quantize").symlink_to(PACKAGE_DIR, target_is_directory=True)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p)}
            proc = subprocess.run([python, "-m", "quantize.gptq", str(Path(tmp) / "job.json")], env=env,
                                  stdout=sys.stderr, check=False)
            if proc.returncode != 0:
                raise WorkerFailed(f"the quantization worker ({python}) exited with status {proc.returncode}; "
                                   "its output above names the problem")
            worker: dict[str, Any] = json.loads(result.read_text())
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
        return worker
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


async def _evaluate(model: str, dtype: str, episodes: int, states: int, best_of: int, seed: int) -> dict[str, Any]:
    from engine import open_engine
    from reference.evaluate import evaluate

    async with open_engine(model, dtype=dtype, log_stats=False) as engine:
        result = await evaluate(engine, episodes=episodes, states=states, seed=seed, best_of_n=best_of,
                                policies=("model_greedy", "model_best_of_n"))
        return {**result.to_dict(), "dtype": engine.info.dtype}


def evaluate_quality(model: str, dtype: str, episodes: int, states: int, best_of: int, seed: int) -> Quality:
    """Foresight quality of one checkpoint on the reference evaluation, through the real engine."""
    print(f"evaluating {model} ({dtype}) on the reference environment", file=sys.stderr, flush=True)
    try:
        result = asyncio.run(_evaluate(model, dtype, episodes, states, best_of, seed))
    except Exception as exc:  # the engine's start-up errors are many and vLLM's own
        raise EvaluationFailed(f"evaluating {model} through vLLM failed ({type(exc).__name__}: {exc}); the "
                               "checkpoint and its size/KL report are written: rerun with --eval-episodes 0 "
                               "to skip the evaluation") from exc
    return Quality.from_eval(result["dtype"], result)


def original_eval_dtype(model: str) -> str:
    """The dtype the original is served in: its own (the reference model is float32)."""
    cfg = read_config_json(Path(model) / "config.json", BadCheckpoint)
    dt = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    return dt if dt in ("float32", "float16", "bfloat16") else "float32"


def record_lineage(plan: QuantPlan) -> Path:
    """Write :data:`catalog.adapters.QUANTIZED_FROM` into the output: the original's identity, so its adapters
    are served on the quantized checkpoint too."""
    from catalog.adapters import QUANTIZED_FROM, base_sha256

    path = Path(plan.out) / QUANTIZED_FROM
    path.write_text(json.dumps({"model": str(Path(plan.model).resolve()), "sha256": base_sha256(plan.model),
                                "scheme": plan.scheme}, indent=2) + "\n")
    return path


def build_report(plan: QuantPlan, worker: dict[str, Any]) -> QuantReport:
    return QuantReport(model=plan.model, out=plan.out, scheme=plan.scheme, group_size=plan.group_size,
                       dtype=plan.dtype, left_16bit=list(plan.left_16bit),
                       original=checkpoint_size(plan.model), quantized=checkpoint_size(plan.out, plan.bits),
                       worker=worker)
