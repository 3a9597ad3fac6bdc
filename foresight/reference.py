"""``foresight reference train`` and ``foresight reference eval``."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from planner.params import number
from reference.worlds import WORLDS
from server.config import DEFAULT_MODEL

# the search model's stages: a longer world-model stage (it learns a knowledge base and a search engine)
SEARCH_STAGE_STEPS = (1000, 6900, 600)

# acceptance of a trained checkpoint (DESIGN §8); `train` fails loudly below these
MIN_FORMAT_VALIDITY = 0.99
MAX_BRIER_GAP = 0.01
# best-of-N by confidence must close this share of greedy decoding's distance to the exact optimum
# (less NOISE_ALLOWANCE, about three episodes in 150): a confidence that says nothing makes best-of-N
# no better than one sample. (DESIGN's example, "0.25 above greedy", presumes a weak greedy policy.)
MIN_GAP_CLOSED = 0.5
NOISE_ALLOWANCE = 0.02
# held-out states whose turns the check scores: a search turn's Brier gap over 300 states varies by ±0.0044
# from draw to draw (seven seeds, docs/search-world.md) — a margin of 0.01 needs more of them
ACCEPTANCE_STATES = {"numberreach": 300, "search": 900}


def add_reference(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ref = sub.add_parser("reference", help="train or evaluate the reference foresight model",
                         description="The NumberReach reference environment and its small foresight model.")
    rsub = ref.add_subparsers(dest="reference_command", metavar="ACTION")

    t = rsub.add_parser("train", help="train the reference model from a seed (~15 min on 2 CPU cores)",
                        description="Three stages (world-model mid-training, format SFT, calibration), then "
                                    "an acceptance evaluation on the real engine that fails loudly.")
    t.add_argument("--world", choices=WORLDS, default="numberreach",
                   help="the world to train on: numberreach (the default model's) or search (docs/search-world.md)")
    t.add_argument("--out", default=None, help="output directory (default runs/reference, runs/search)")
    t.add_argument("--seed", type=int, default=0, help="training seed (the shipped model used 0)")
    t.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    t.add_argument("--skip-check", action="store_true", help="skip the acceptance evaluation")
    t.add_argument("--check-episodes", type=int, default=150, help="episodes in the acceptance check")
    t.add_argument("--steps", type=_stage_steps, default=None, metavar="S1,S2,S3",
                   help="optimizer steps of the three stages (default 400,4000,600, as the shipped checkpoint; "
                        "docs/reference-model.md has 2,000 and 6,000 in stage 2)")
    t.add_argument("--policy-plans", choices=("all", "shortest"), default="shortest",
                   help="whose operations the policy imitates in turns: only the shortest hitting plans "
                        "(default, as the shipped checkpoint) or all plans of the prior (the recipe shipped "
                        "before; docs/reference-model.md); every plan still trains the rollouts and the confidence")
    t.add_argument("--device", default="cpu",
                   help="torch device to train on (default cpu, as the shipped checkpoint was; e.g. cuda)")
    t.add_argument("--base", default=None, metavar="MODEL",
                   help="train a LoRA adapter on this pretrained base instead of a model from scratch: an added "
                        "model's name (foresight models add) or a checkpoint directory (docs/reference-model.md)")
    t.add_argument("--stages", type=_stages, default=None, metavar="S[,S…]",
                   help="with --base: the stages to run, in order, from wm (world-model mid-training), fe "
                        "(format-eliciting SFT), rl (FC-RL from outcomes); default wm,fe,rl")
    t.add_argument("--rank", type=int, default=16, help="with --base: the LoRA rank (default 16)")
    t.set_defaults(func=_train)

    e = rsub.add_parser("eval", help="evaluate a checkpoint against the simulator through vLLM",
                        description="Held-out turns (format, rollout accuracy, Brier, ECE) and held-out "
                                    "episodes for every policy (--split train: on training pairs instead). "
                                    "Progress goes to stderr.")
    e.add_argument("--world", choices=WORLDS, default="numberreach",
                   help="the world to evaluate in: numberreach (default) or search (docs/search-world.md)")
    e.add_argument("--model", default=None,
                   help="checkpoint directory (default: the world's shipped model, models/foresight-<world>)")
    e.add_argument("--adapter", default=None, metavar="PATH",
                   help="evaluate this LoRA adapter on its base (the base it names, or --model)")
    e.add_argument("--merged", action="store_true",
                   help="with --adapter: fold it into the base's weights first (the same function, bfloat16; "
                        "3-5x faster on CPU than vLLM's LoRA: bench/lora_cost.py)")
    e.add_argument("--drifted", action="store_true",
                   help="search only: evaluate in the knowledge base after it changed (facts updated, entities "
                        "renamed, passages removed: reference.search.kb.drift), not the one trained on")
    e.add_argument("--episodes", type=int, default=200, help="episodes per policy (default 200)")
    e.add_argument("--states", type=int, default=300, help="states for turn metrics (default 300)")
    e.add_argument("--best-of", type=int, default=8, help="N for the model's best-of-N policy (default 8)")
    e.add_argument("--temperature", type=_temperature, default=1.0,
                   help="sampling temperature of the best-of-N policy, in (0, 2] (default 1.0)")
    e.add_argument("--split", choices=("heldout", "train"), default="heldout",
                   help="evaluate on held-out (x, t) pairs (default) or on training pairs")
    e.add_argument("--planners", nargs="+", default=[], metavar="NAME", type=_planner,
                   help="also play these planner configurations on the same episodes, through the planner "
                        f"itself ({', '.join(_planner_names())}; lookahead takes ~5 min for 150 episodes "
                        "here with the shipped model)")
    e.add_argument("--policies", nargs="+", default=None, metavar="POLICY", choices=_policy_names(),
                   help=f"the episode policies to play (default all: {', '.join(_policy_names())})")
    e.add_argument("--seed", type=int, default=0, help="evaluation seed")
    e.add_argument("--dtype", default="float32", help="engine dtype (default float32)")
    e.add_argument("--json", action="store_true", help="print the results as one JSON object on stdout")
    e.set_defaults(func=_eval)

    def _help(_args: argparse.Namespace) -> int:
        ref.print_help()
        return 2

    ref.set_defaults(func=_help)


def _stage_steps(text: str) -> tuple[int, ...]:
    parts = text.split(",")
    if not 1 <= len(parts) <= 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"want a positive step count per stage like 400,4000,600, not {text!r}")
    return tuple(int(p) for p in parts)


def _stages(text: str) -> tuple[str, ...]:
    from reference.lora import STAGES

    parts = tuple(p.strip() for p in text.split(","))
    if not parts or any(p not in STAGES for p in parts):
        raise argparse.ArgumentTypeError(f"stages are some of {','.join(STAGES)}, not {text!r}")
    return parts


def _temperature(text: str) -> float:
    value = number(text)
    if not 0.0 < value <= 2.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 2]: {value} (best-of-N needs distinct samples)")
    return value


def _policy_names() -> list[str]:
    from reference.evaluate import POLICIES

    return list(POLICIES)


def _planner_names() -> list[str]:
    from reference.planning import PLANNERS

    return list(PLANNERS)


def _planner(text: str) -> str:
    if text not in _planner_names():
        raise argparse.ArgumentTypeError(f"unknown planner {text!r} (choose from {', '.join(_planner_names())})")
    return text


def _check_model_dir(path: str) -> Path:
    p = Path(path)
    if not (p / "config.json").is_file():
        raise SystemExit(f"foresight: {path!r} is not a checkpoint directory (no config.json)")
    return p


def default_model(world: str) -> Path:
    """The shipped checkpoint of a world."""
    return DEFAULT_MODEL if world == "numberreach" else Path(DEFAULT_MODEL).parent / f"foresight-{world}"


async def _run_eval(model: Path, dtype: str, world: str = "numberreach", drifted: bool = False,
                    **kwargs: Any) -> Any:
    from engine import open_engine

    async with open_engine(model, dtype=dtype, log_stats=False) as engine:
        if world == "search":
            from reference.search import evaluate as search_eval
            from reference.search.env import World, drifted_starts
            from reference.search.kb import drift, generate

            kwargs.pop("planners", None)
            if not drifted:
                return await search_eval.evaluate(engine, **kwargs)
            # the same questions (the split's side asked for), in the world after the change
            trained, (moved, change) = World(), drift(generate())
            pool = drifted_starts(trained, change, heldout=kwargs.get("heldout", True))
            return await search_eval.evaluate(engine, world=World(moved), world_name="search (drifted)",
                                              pool=pool, **kwargs)
        from reference.evaluate import evaluate

        return await evaluate(engine, **kwargs)


def _turn_rows(t: Any) -> list[tuple[str, str]]:
    if hasattr(t, "chain_accuracy"):
        return [("format validity", f"{t.format_validity:.3f}"), ("chain accuracy", f"{t.chain_accuracy:.3f}"),
                ("search-result accuracy", f"{t.result_accuracy:.3f}")]
    return [("format validity", f"{t.format_validity:.3f}"), ("next-state accuracy", f"{t.next_state_accuracy:.3f}"),
            ("rollout accuracy", f"{t.rollout_accuracy:.3f}")]


def print_table(result: Any, out: Any = None) -> None:
    out = out or sys.stdout
    t = result.turns
    rows = [
        *_turn_rows(t),
        ("confidence Brier", f"{t.confidence_brier:.4f}"),
        ("exact-probability Brier", f"{t.exact_brier:.4f}"),
        ("Brier gap", f"{t.brier_gap:+.4f}"),
        ("confidence ECE", f"{t.confidence_ece:.4f}"),
    ]
    if hasattr(t, "outcome_brier"):
        rows += [("Brier against outcomes", f"{t.outcome_brier:.4f}"),
                 ("ECE against exact chances", f"{t.exact_ece:.4f}")]
    where = "held-out" if result.split == "heldout" else "training-pair"
    world = getattr(result, "world", "numberreach")
    print(f"model {result.model}  world {world}  seed {result.seed}  {where} states {t.states}", file=out)
    for k, v in rows:
        print(f"  {k:<26}{v:>10}", file=out)
    print(f"episode success over {result.episodes} {where} episodes:", file=out)
    for policy, rate in result.success.items():
        label = policy
        if policy == "model_best_of_n":
            temp = f" (T={result.temperature:g})" if result.temperature != 1 else ""
            label = f"model best-of-{result.best_of_n}{temp}"
        tokens = result.planner_tokens.get(policy.removeprefix("planner_")) if policy.startswith("planner_") else None
        if tokens is not None:
            label = f"planner {policy.removeprefix('planner_')}"
        extra = f"   {tokens:.0f} tokens/decision" if tokens is not None else ""
        paired = getattr(result, "paired", {}).get(policy)
        if paired is not None:
            extra += f"   paired {paired[0]:.3f} ± {paired[1]:.3f}"
        print(f"  {label:<26}{rate:>10.3f}{extra}", file=out)


def _eval(args: argparse.Namespace) -> int:
    from foresight.stdout_guard import json_stdout

    if args.drifted and args.world != "search":
        raise SystemExit("foresight: --drifted applies to --world search only")
    if args.merged and args.adapter is None:
        raise SystemExit("foresight: --merged folds an --adapter into its base: pass --adapter PATH")
    if args.planners and args.world != "numberreach":
        raise SystemExit("foresight: --planners plays NumberReach's planner configurations; "
                         "for the search world use bench/planners.py --world search")
    options: dict[str, Any] = dict(episodes=args.episodes, states=args.states, seed=args.seed, best_of_n=args.best_of,
                                   temperature=args.temperature, heldout=args.split == "heldout",
                                   planners=tuple(args.planners))
    if args.policies is not None:
        options["policies"] = tuple(args.policies)
    with json_stdout(args.json) as out:
        if args.adapter is not None:
            from foresight.reference_adapter import base_of, run_adapter_eval

            if args.world != "numberreach":
                raise SystemExit("foresight: --adapter evaluates NumberReach adapters only so far")
            adapter = Path(args.adapter)
            result = asyncio.run(run_adapter_eval(adapter, base_of(adapter, args.model), merged=args.merged,
                                                  **options))
        else:
            model = _check_model_dir(args.model or str(default_model(args.world)))
            result = asyncio.run(_run_eval(model, args.dtype, args.world, args.drifted, **options))
        if args.json:
            print(json.dumps(result.to_dict()), file=out)
    if not args.json:
        print_table(result)
    return 0


def acceptance_failures(result: Any) -> list[str]:
    t, s = result.turns, result.success
    failures = []
    if t.format_validity < MIN_FORMAT_VALIDITY:
        failures.append(f"format validity {t.format_validity:.3f} < {MIN_FORMAT_VALIDITY}")
    if t.brier_gap > MAX_BRIER_GAP:
        failures.append(f"confidence Brier {t.confidence_brier:.4f} is {t.brier_gap:.4f} above the exact "
                        f"probabilities' {t.exact_brier:.4f} (allowed {MAX_BRIER_GAP})")
    greedy, best = s.get("model_greedy", 0.0), s.get("model_best_of_n", 0.0)
    paired = getattr(result, "paired", {})
    if {"model_greedy", "model_best_of_n", "optimal"} <= set(paired):  # the search world's low-noise estimates
        s = {k: v[0] for k, v in paired.items()}
        greedy, best = s["model_greedy"], s["model_best_of_n"]
    needed = MIN_GAP_CLOSED * max(s.get("optimal", 1.0) - greedy, 0.0) - NOISE_ALLOWANCE
    if best - greedy < needed:
        failures.append(f"best-of-N gains {best - greedy:+.3f} over greedy ({greedy:.3f}), less than half of "
                        f"greedy's distance to the optimum (needs {needed:+.3f}): confidence is not "
                        "informative yet (train longer)")
    return failures


def _train(args: argparse.Namespace) -> int:
    from reference.train import TrainConfig, train

    if args.base is not None:
        from foresight import reference_adapter

        return reference_adapter.train(args)
    if args.stages is not None:
        raise SystemExit("foresight: --stages applies to --base (a LoRA adapter on a pretrained base)")
    if args.steps is not None and len(args.steps) != 3:
        raise SystemExit("foresight: a model from scratch takes three step counts, S1,S2,S3")
    out = Path(args.out or ("runs/reference" if args.world == "numberreach" else f"runs/{args.world}"))
    if out.exists() and any(out.iterdir()):
        if not args.force:
            print(f"foresight: {out} exists; pass --force to overwrite it", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    cfg = TrainConfig(seed=args.seed, policy_plans=args.policy_plans, world=args.world)
    if args.world == "search" and args.steps is None:
        cfg = replace(cfg, stage_steps=SEARCH_STAGE_STEPS)
    if args.steps is not None:
        cfg = replace(cfg, stage_steps=args.steps)
    train(cfg, out, device=args.device)
    print(f"saved {out}", file=sys.stderr)
    if args.skip_check:
        return 0
    result = asyncio.run(_run_eval(out, "float32", args.world, episodes=args.check_episodes,
                                   states=ACCEPTANCE_STATES[args.world], seed=1))
    print_table(result, sys.stderr)
    (out / "acceptance.json").write_text(json.dumps(result.to_dict(), indent=2))
    failures = acceptance_failures(result)
    if failures:
        print("ACCEPTANCE FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("acceptance passed", file=sys.stderr)
    return 0
