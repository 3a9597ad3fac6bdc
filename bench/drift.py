"""The trust loop, end to end: the search world changes under its trained model, and the server shows it.

One real server (vLLM on CPU) with the search model; every decision goes through ``/v1/plan`` and every
outcome through ``/v1/outcomes`` (with the observation, so the server scores world-model fidelity), with
the typed client. Phases:

1. **trained world** (domain ``search``): decisions on held-out states, outcomes reported;
2. **the world changes** (``reference.search.kb.drift``: facts updated, entities renamed, passages
   removed) and the app has not noticed: the same domain, ``--eval`` held-out decisions measured with the
   model's raw confidence, ``branch_commit`` on stale states (a fact of their chain changed, or their
   answer's passage is gone) — its commit rate and success — and ``--fit`` of the outcomes reported
   there as before (the server's fidelity and raw ECE for ``search`` move; alerts);
3. the app plans in a domain of the changed world's own (``search-changed``): ``--fit`` outcomes
   reported, the server fits its map on them alone;
4. ``--eval`` *other* held-out decisions measured in calibrated units; ``branch_commit`` on the same
   stale states again.

A decision's outcome is its plan carried out in the world (search its query until the last fact's
passage comes back, then answer), so its exact chance is known: Brier scores are also computed in
expectation against it, beside the oracle's own (the floor), and the floor any map of raw confidence can
reach (``E[Var(p | raw)]``: plans with the same raw confidence whose chances the change made differ).
The server's own figures (``/v1/calibration``, ``/metrics``) are printed at the end of each phase.
``--prometheus`` also runs Debian's Prometheus on the repo's alert rules (``for`` shortened, windows
scaled down to the run) and prints which alerts fire.

    .venv/bin/python bench/drift.py [--fit 400] [--eval 2000] [--stale 300] [--prometheus] [--plot PNG]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.drift_prometheus import Prometheus  # noqa: E402
from foresight_client.aio import AsyncForesight  # noqa: E402
from planner.calibration_math import expected_calibration_error, reliability_bins  # noqa: E402
from planner.format import parse_turn  # noqa: E402
from planner.params import positive  # noqa: E402
from reference.planning import mean_se  # noqa: E402
from reference.search import data, env, kb  # noqa: E402
from reference.search.env import State, World  # noqa: E402
from reference.search.evaluate import imagined_results, plan_of  # noqa: E402
from tests.integration.server_process import launch_server, wait_ready  # noqa: E402

MODEL = REPO / "models" / "foresight-search"
GREEDY = {"algorithm": "greedy", "max_tokens_per_turn": 128}
REPORT_GAP_S = 2.5  # between a phase's chunks of outcomes, with Prometheus (it scrapes every 2 s)
# reference.search.planning.PLANNERS["branch_commit"], as a request
BRANCH_COMMIT = {"algorithm": "branch_commit", "width": 2, "width_growth": 2, "commit_threshold": 0.5,
                 "budget": {"max_candidates": 8}, "max_tokens_per_turn": 128}


@dataclass
class Decision:
    plan_id: str
    raw: float
    calibrated: float
    p: float  # the exact chance of the plan it chose, in the world it acts in
    success: bool
    observation: str | None  # what its first search returned (reported with the outcome)
    fidelity: float | None  # 1 if that was a passage the model imagined, 0 if another; None: nothing returned
    committed: bool
    tokens: int
    stated: bool  # the chosen turn stated a confidence (only those outcomes fit a map)


def carry_out(world: World, state: State, query: str | None, answer: str,
              rng: random.Random) -> tuple[bool, str | None]:
    """A plan carried out: search ``query`` until the last fact's passage comes back (at most the steps left),
    then answer. Its outcome has exactly ``world.plan_success``'s chance; also the first search's result."""
    hit, first = world.supported(state), None
    last = world.last_fact(state.question)
    if query and not hit:
        for i in range(max(state.steps, 0)):
            found = world.retriever.search(query, rng)
            first = (found[0] if found else "nothing found") if i == 0 else first
            if last is not None and world.kb.doc(last) in found:
                hit = True
                break
    return hit and answer == world.answer(state.question), first


async def decide(client: AsyncForesight, world: World, state: State, params: dict, domain: str,
                 seed: int) -> Decision:
    plan = await client.plan(data.prompt_for(state), domain=domain, seed=seed, **params)
    turn = parse_turn(plan.text or "")
    chosen = plan_of(turn)
    query, answer = chosen if chosen else (None, "")
    ok, first = carry_out(world, state, query, answer, random.Random(seed))
    imagined = imagined_results(turn.imaginary)
    fidelity = float(first in imagined[1]) if first and first != "nothing found" and imagined else None
    # what the search returned (the document), not the episode's step counter: no rollout imagines that
    observation = f"<information>{first}</information>" if first else None
    raw = plan.confidence.raw if plan.confidence.raw is not None else 0.0
    calibrated = plan.confidence.calibrated if plan.confidence.calibrated is not None else raw
    p = world.plan_success(state, query, answer) if chosen else 0.0
    return Decision(plan.plan_id, raw, calibrated, p, ok and chosen is not None, observation, fidelity,
                    plan.decision == "commit", plan.usage.completion_tokens, plan.confidence.raw is not None)


async def decisions(client: AsyncForesight, world: World, states: list[State], params: dict, domain: str,
                    seed: int, concurrency: int = 16) -> list[Decision]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, s: State) -> Decision:
        async with sem:
            return await decide(client, world, s, params, domain, seed * 100_003 + i)

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(states))))


async def report(client: AsyncForesight, ds: list[Decision], concurrency: int = 16, chunks: int = 5,
                 gap_s: float = 0.0) -> None:
    """Each decision's outcome to ``/v1/outcomes``, with what its search returned — in ``chunks`` parts
    ``gap_s`` apart (with Prometheus: a series a phase creates must also *grow* inside the alert's windows
    for ``rate()`` to see it, as a deployment's steady trickle of outcomes does)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(d: Decision) -> None:
        async with sem:
            await client.report_outcome(d.plan_id, d.success, observation=d.observation)

    size = max(1, -(-len(ds) // chunks))
    for i in range(0, len(ds), size):
        if i and gap_s:
            await asyncio.sleep(gap_s)
        await asyncio.gather(*(one(d) for d in ds[i : i + size]))


def states_of(world: World, starts: list[State], count: int, seed: int) -> list[State]:
    pool = env.visited_states(world, random.Random(seed), True, starts=starts)
    return [next(pool) for _ in range(count)]


# --------------------------------------------------------------------------- figures


def brier_exact(conf: list[float], p: list[float]) -> float:
    """Brier score in expectation over each decision's exact chance."""
    return sum(q * (1 - c) ** 2 + (1 - q) * c**2 for c, q in zip(conf, p, strict=True)) / len(conf)


def map_floor(ds: list[Decision]) -> float:
    """The least Brier gap any map of raw confidence can reach: E[Var(p | raw)]."""
    groups: dict[float, list[float]] = defaultdict(list)
    for d in ds:
        groups[round(d.raw, 2)].append(d.p)
    return sum(sum((x - sum(g) / len(g)) ** 2 for x in g) for g in groups.values()) / len(ds)


def row(name: str, ds: list[Decision], calibrated: bool) -> dict[str, float | str]:
    conf = [d.calibrated if calibrated else d.raw for d in ds]
    p = [d.p for d in ds]
    fid = [d.fidelity for d in ds if d.fidelity is not None]
    return {
        "phase": name, "decisions": len(ds), "fidelity": sum(fid) / len(fid) if fid else float("nan"),
        "ece": expected_calibration_error(conf, [d.success for d in ds]),
        "ece_exact": expected_calibration_error(conf, p),  # against the exact chances: no outcome noise
        "brier": brier_exact(conf, p), "oracle_brier": brier_exact(p, p), "floor": map_floor(ds),
        "success": sum(p) / len(p), "tokens": sum(d.tokens for d in ds) / len(ds),
    }


def plot(curves: list[tuple[str, list[float], list[float]]], path: Path, bins: int = 10) -> None:
    """Reliability: mean confidence against the mean exact chance, per confidence bin, one line a phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="calibrated")
    for name, conf, p in curves:
        filled = [b for b in reliability_bins(conf, p, bins) if b.count]
        ax.plot([b.mean_confidence for b in filled], [b.accuracy for b in filled], marker="o", label=name)
    ax.set_xlabel("stated confidence (bin mean)")
    ax.set_ylabel("exact chance of the chosen plan (bin mean)")
    ax.set_title("Search world: the world changed, then outcomes recalibrated it")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def print_table(rows: list[dict[str, float | str]]) -> None:
    head = ("phase", "decisions", "fidelity", "ece", "ece_exact", "brier", "oracle_brier", "floor", "success", "tokens")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [str(r[h]) if isinstance(r[h], str | int) else f"{r[h]:.3f}" for h in head]
        print("| " + " | ".join(cells) + " |")
    print("fidelity: share of searches that returned a passage the model imagined; ece: 15 bins against "
          "outcomes; ece_exact, brier: against each plan's exact chance; oracle_brier: the exact chances' own; "
          "floor: the least Brier gap a map of raw confidence can reach; success: mean exact chance of the plans")


def commit_line(name: str, ds: list[Decision]) -> str:
    committed = [d for d in ds if d.committed]
    rate = len(committed) / len(ds)
    ok, se = mean_se([d.p for d in ds])
    when = sum(d.p for d in committed) / len(committed) if committed else float("nan")
    return (f"{name}: commits {rate:.3f} of {len(ds)} stale states (chance of success when committed {when:.3f}); "
            f"success {ok:.3f} ± {se:.3f}; {sum(d.tokens for d in ds) / len(ds):.0f} tokens/decision")


async def server_figures(url: str, domain: str) -> str:
    async with AsyncForesight(url) as client:
        cal = await client.calibration(domain)
    d = cal.domains[0] if cal.domains else None
    if d is None:
        return f"  /v1/calibration {domain}: no outcomes"
    return (f"  /v1/calibration {domain}: {d.outcomes} outcomes, map {d.map.get('kind')}, raw ECE {d.raw.ece}, "
            f"calibrated ECE {d.calibrated.ece}, raw Brier {d.raw.brier}, fidelity {d.fidelity_mean}")


def metric_lines(url: str, domain: str) -> list[str]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    keep = ("foresight_confidence_ece{", "foresight_confidence_brier{", "foresight_world_model_fidelity_sum{",
            "foresight_world_model_fidelity_count{")
    return [f"  {line}" for line in text.splitlines() if line.startswith(keep) and f'domain="{domain}"' in line]


async def wait_for_map(url: str, domain: str, outcomes: int, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    async with AsyncForesight(url) as client:
        while time.monotonic() < deadline:
            cal = await client.calibration(domain)
            kind = cal.domains[0].map.get("kind") if cal.domains else None
            fitted_on = cal.domains[0].map.get("outcomes") if cal.domains else None
            if fitted_on == outcomes:  # refitted on all of them (identity if they say nothing to fit)
                return str(kind)
            await asyncio.sleep(1)
    raise RuntimeError(f"the server did not fit {domain}'s map on {outcomes} outcomes within {timeout_s}s")


async def dwell(prom: Prometheus | None, seconds: float, phase: str) -> None:
    """With Prometheus: let it scrape and evaluate the phase, then print the alerts active now (windowed
    alerts such as the fidelity one resolve once a later phase's outcomes go elsewhere)."""
    if prom is None:
        return
    await asyncio.sleep(seconds)
    print(f"alerts after '{phase}' (the repo's rules, `for` and windows shortened to the run):")
    for line in prom.alerts() or ["none"]:
        print(f"  {line}")
    fired = prom.query(f'max_over_time(ALERTS{{alertstate="firing"}}[{int(seconds) + 15}s])')
    names = sorted(f"{r['metric']['alertname']} domain={r['metric'].get('domain', '-')}" for r in fired)
    print(f"  fired during the phase: {', '.join(names) or 'none'}")


async def run(args: argparse.Namespace, url: str, prom: Prometheus | None) -> None:
    old = World()
    moved, change = kb.drift(old.kb, args.drift_seed)
    new = World(moved)
    rows: list[dict[str, float | str]] = []
    async with AsyncForesight(url, timeout=600) as client:
        trained = env.start_states(old, True)
        before = await decisions(client, old, states_of(old, trained, args.fit, 1), GREEDY, "search", 1)
        await report(client, before, gap_s=REPORT_GAP_S if prom else 0.0)
        rows.append(row("trained world", before, calibrated=False))
        print(f"[{time.strftime('%X')}] trained world done", file=sys.stderr)
        await dwell(prom, args.dwell, "trained world")
        print(await server_figures(url, "search"), *metric_lines(url, "search"), sep="\n")

        # the world changes; the app has not noticed: same domain, its outcomes flow in as before
        starts = env.drifted_starts(old, change)
        stale = [s for s in states_of(new, starts, args.stale * 4, 7) if env.stale(old, new, change, s)][: args.stale]
        raw = await decisions(client, new, states_of(new, starts, args.eval, 2), GREEDY, "search", 2)
        rows.append(row("changed world, raw", raw, calibrated=False))
        commits_before = await decisions(client, new, stale, BRANCH_COMMIT, "search", 3)
        await report(client, raw[: args.fit], gap_s=REPORT_GAP_S if prom else 0.0)
        print(f"[{time.strftime('%X')}] changed world, domain search: {args.fit} more outcomes", file=sys.stderr)
        await dwell(prom, args.dwell, "changed world, domain search")
        print(await server_figures(url, "search"), *metric_lines(url, "search"), sep="\n")

        # the app plans in a domain of the changed world's own: its map learns only that world
        fit = await decisions(client, new, states_of(new, starts, args.fit, 4), GREEDY, "search-changed", 4)
        await report(client, fit, gap_s=REPORT_GAP_S if prom else 0.0)
        kind = await wait_for_map(url, "search-changed", sum(d.stated for d in fit))
        print(f"[{time.strftime('%X')}] changed world: {kind} map fitted on {args.fit} outcomes", file=sys.stderr)
        rows.append(row(f"changed world, fitting ({args.fit}, raw)", fit, calibrated=False))
        after = await decisions(client, new, states_of(new, starts, args.eval, 5), GREEDY, "search-changed", 5)
        rows.append(row(f"changed world, calibrated ({kind})", after, calibrated=True))
        commits_after = await decisions(client, new, stale, BRANCH_COMMIT, "search-changed", 3)
        await report(client, after)  # measured already: now the server's own figures see calibrated decisions
        await dwell(prom, args.dwell, "changed world, recalibrated")
        print(await server_figures(url, "search-changed"), *metric_lines(url, "search-changed"), sep="\n")
    print_table(rows)
    if args.plot:
        plot([("trained world, raw", [d.raw for d in before], [d.p for d in before]),
              ("changed world, raw", [d.raw for d in raw], [d.p for d in raw]),
              ("changed world, calibrated", [d.calibrated for d in after], [d.p for d in after])], args.plot)
        print(f"plot: {args.plot}")
    print(commit_line("branch_commit before recalibration", commits_before))
    print(commit_line("branch_commit after recalibration ", commits_after))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--fit", type=positive, default=400, help="outcomes reported in each world (the map's fit)")
    p.add_argument("--eval", type=positive, default=2000, help="other held-out decisions measured in the changed world")
    p.add_argument("--stale", type=positive, default=300, help="stale states branch_commit plans on, before and after")
    p.add_argument("--drift-seed", type=int, default=1)
    p.add_argument("--plot", type=Path, help="write the reliability plot (e.g. docs/images/drift.png)")
    p.add_argument("--prometheus", action="store_true", help="also run Debian's Prometheus on the alert rules")
    p.add_argument("--dwell", type=float, default=45.0, help="with --prometheus: seconds to wait after a phase")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drift-"))
    server = wait_ready(launch_server(args.model, work, env={"FORESIGHT_MAX_QUEUE": "256"}))
    prom = Prometheus.start(work, server.port) if args.prometheus else None
    try:
        asyncio.run(run(args, server.url, prom))
    finally:
        if prom:
            prom.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
