"""How cheaply can branch_commit (and self_consistency) stop? Stopping rules replayed offline on recorded
samples; where each algorithm's measured default (``planner.defaults.MEASURED``) comes from.

``bench/planners.py`` measures each planner configuration by playing episodes — minutes per
configuration, and its success rates differ by noise of a few points. This benchmark asks the
narrower question behind branch_commit's token target: given the turns the model actually writes
on held-out states, which stopping rule gets best-of-8's decision quality for the fewest tokens?

1. Through the real engine (vLLM on CPU), sample ``--samples`` whole turns for each of ``--states``
   held-out states (visited by a mix of policies), one engine call per state, temperature 1.
   Each turn is split into its world-model span (up to ``</confidence>``) and the rest: a rule
   pays for the spans it draws and for one policy span, the committed one's. (The planner continues
   a committed span greedily; here the turn's own sampled continuation stands in for it — the same
   action for this model, whose action is its plan's first step.)
2. Replay, without the engine, every rule on the same samples: best_of_n (the first n turns) and
   branch_commit (width K, commit threshold, candidate cap: the planner's own loop with an
   identity calibrator and margin 0), and an oracle that stops as soon as its choice is as good as
   best-of-8's. Each decision is scored by its exact loss against the optimum
   (``V*(s) - Q*(s, action)``, the simulator's dynamic programme), and by the generated tokens it
   pays for: every span it drew, plus the committed turn's policy span.
3. Print the frontier: the rules whose loss is no worse than best-of-8's, cheapest first, and the
   cheapest rule at 50% of best-of-8's tokens; plus how often a sampled plan hits, by the length
   of the shortest hitting plan (where the model's proposals run out).
4. Candidate defaults per algorithm (best_of_n's N, branch_commit's and self_consistency's rounds and
   thresholds — self_consistency replayed as the planner votes: actions weighted by confidence, whole
   turns paid for), each paired with best-of-8 decision by decision; the cheapest within one paired
   standard error is marked. ``--world search`` records the search world's held-out states instead (each
   turn scored by the exact value of its search or answer).

    .venv/bin/python bench/commit_rules.py [--world search] [--states 300] [--samples 16] [--seed 11]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from planner.format import ACTION_STOPS, CONFIDENCE_STOP, parse_turn
from planner.search.self_consistency import agreed
from planner.votes import Vote, tally, vote_key
from reference import data
from reference import numberreach as env
from reference.evaluate import TURN_MAX_TOKENS, action_op

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Drawn:
    """One sampled turn: what the planner judges it by and what it costs."""

    confidence: float | None
    has_action: bool
    problems: int
    op: str | None
    span_tokens: int  # world-model span, up to and including </confidence>
    turn_tokens: int  # the whole turn
    plan: str = ""  # the imagined rollout, whitespace-normalized: which proposals are the same plan
    vote: str | None = None  # the action, normalised as self_consistency votes (planner.votes.vote_key)
    value: float | None = None  # the action's exact value, where the world has no op table (search)


@dataclass(frozen=True)
class Row:
    state: Any
    q: dict[str, float]  # exact success probability of each op now, optimal play after (NumberReach)
    drawn: list[Drawn]
    best: float | None = None  # the state's exact value, where there is no op table (search)
    hit_length: int | None = None  # NumberReach: the shortest hitting plan's length (None: none hits)

    def loss(self, d: Drawn) -> float:
        if self.best is not None:
            return self.best - (d.value or 0.0)
        return max(self.q.values()) - (self.q.get(d.op, 0.0) if d.op else 0.0)


Rule = Callable[[list[Drawn]], list[Drawn]]  # the samples a rule draws before it stops
Pick = Callable[[list[Drawn]], Drawn]  # which of them it chooses


def chosen(drawn: list[Drawn]) -> Drawn:
    """The planner's ranking (``planner.search.base.ranked`` with an identity calibrator)."""
    def key(i: int) -> tuple[float, bool, int, int]:
        c = drawn[i].confidence
        return (-(-1.0 if c is None else c), not drawn[i].has_action, drawn[i].problems, i)

    order = sorted(range(len(drawn)), key=key)
    return drawn[order[0]]


@dataclass(frozen=True)
class _Voter:
    id: int
    calibrated_confidence: float | None


def _votes(drawn: list[Drawn], counts: bool = False) -> list[Vote]:
    """The tally of ``drawn`` as the planner makes it (``counts``: every turn weighs 1, as its_hub's and
    optillm's votes do)."""
    return tally([(_Voter(i, 1.0 if counts else d.confidence), d.vote or (f"op:{d.op}" if d.op else None))
                  for i, d in enumerate(drawn)])


def voted(drawn: list[Drawn], counts: bool = False) -> Drawn:
    """self_consistency's choice: the leading action's most confident turn (``planner.search.self_consistency``);
    ``counts``: the leading action by count, its first turn (a peer's: it knows no confidence)."""
    votes = _votes(drawn, counts)
    if not votes:
        return chosen(drawn)
    if counts:
        return drawn[votes[0].turns[0]]
    return chosen([drawn[i] for i in votes[0].turns])


def counted(drawn: list[Drawn]) -> Drawn:
    return voted(drawn, counts=True)


def self_consistency(width: int, threshold: float, cap: int, growth: int = 1, margin: float = 0.0,
                     counts: bool = False) -> Rule:
    """The planner's self_consistency loop: rounds of whole turns, widening by ``growth``, until the leading
    action (two turns at least) has a confidence-weighted share of ``threshold`` (``counts``: a share of the
    turns, as its_hub's adaptive self-consistency stops)."""
    return _rounds(width, cap, growth, lambda used: agreed(_votes(used, counts), threshold, margin))


def _rounds(width: int, cap: int, growth: int, stop: Callable[[list[Drawn]], bool]) -> Rule:
    """Rounds of ``width`` samples, times ``growth`` each round, up to ``cap``, until ``stop`` says so."""
    def rule(drawn: list[Drawn]) -> list[Drawn]:
        used: list[Drawn] = []
        k = width
        while len(used) < cap:
            used = drawn[: min(len(used) + k, cap)]
            k *= growth
            if stop(used):
                break
        return used
    return rule


def best_of(n: int) -> Rule:
    return lambda drawn: drawn[:n]


def unseen_share(drawn: list[Drawn]) -> float:
    """Good-Turing's estimate of the chance that one more sample is a plan not drawn yet: the share
    of the drawn samples whose plan was drawn exactly once."""
    counts = Counter(d.plan for d in drawn)
    return sum(1 for c in counts.values() if c == 1) / len(drawn)


def branch_commit(width: int, threshold: float, cap: int, novelty: float | None = None, growth: int = 1) -> Rule:
    """The planner's loop (rounds of ``width``, times ``growth`` each round: ``width_growth``); with
    ``novelty``, it also stops widening once the chance of a plan not yet drawn (:func:`unseen_share`)
    is at most ``novelty`` — a stopping signal that needs no knowledge of the world, only whether the
    model keeps proposing the same plans."""
    def stop(used: list[Drawn]) -> bool:
        best = chosen(used).confidence
        if best is not None and best >= threshold:  # no confidence never commits, as in the planner
            return True
        return novelty is not None and unseen_share(used) <= novelty
    return _rounds(width, cap, growth, stop)


def score(rows: list[Row], rule: Rule, whole_turns: bool) -> tuple[float, float]:
    """Mean exact loss per decision and mean generated tokens per decision."""
    losses, tokens = scores(rows, rule, whole_turns)
    return sum(losses) / len(rows), tokens


def scores(rows: list[Row], rule: Rule, whole_turns: bool, pick_by: Pick | None = None) -> tuple[list[float], float]:
    """Each decision's exact loss, and the mean generated tokens per decision."""
    losses, tokens = [], 0.0
    for row in rows:
        used = rule(row.drawn)
        pick = (pick_by or chosen)(used)
        losses.append(row.loss(pick))
        if whole_turns:
            tokens += sum(d.turn_tokens for d in used)
        else:
            tokens += sum(d.span_tokens for d in used) + pick.turn_tokens - pick.span_tokens
    return losses, tokens / len(rows)


def rounds(rows: list[Row], width: int, threshold: float, cap: int, growth: int, voting: bool = False) -> float:
    """Mean engine calls a decision makes: branch_commit's proposal rounds and one continuation, or
    self_consistency's rounds (``voting``: whole turns, nothing to continue)."""
    total = 0
    for row in rows:
        used, k, calls = 0, width, 0
        rule = self_consistency if voting else branch_commit
        drawn = rule(width, threshold, cap, growth=growth)(row.drawn)
        while used < len(drawn):
            used, k, calls = used + k, k * growth, calls + 1
        total += calls + (0 if voting else 1)
    return total / len(rows)


def paired_se(a: list[float], b: list[float]) -> float:
    """Standard error of the mean of a − b, decision by decision (the same states, the same samples)."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = sum(d) / len(d)
    return (sum((x - mean) ** 2 for x in d) / max(len(d) - 1, 1) / len(d)) ** 0.5


def adaptive(rows: list[Row]) -> None:
    """Rules that start narrow and widen fast (``width_growth``) against the reference configuration
    and best_of_8: loss difference to best_of_8 ± its paired SE, tokens, engine calls a decision."""
    b8, b8_tokens = scores(rows, best_of(8), whole_turns=True)
    print("adaptive width (width_growth), loss − best_of_8's ± paired SE; engine calls per decision:")
    print(f"{'rule':<34}{'loss':>8}{'Δ vs b8':>10}{'± SE':>8}{'tokens':>9}{'x b8':>7}{'calls':>7}")
    for width, growth, threshold, cap in ((2, 1, 0.5, 16), (1, 2, 0.5, 15), (1, 2, 0.5, 16), (2, 2, 0.5, 14),
                                          (1, 3, 0.5, 13), (1, 2, 0.35, 15), (1, 2, 0.7, 15), (1, 4, 0.5, 16)):
        if cap > len(rows[0].drawn):
            continue
        losses, tok = scores(rows, branch_commit(width, threshold, cap, growth=growth), whole_turns=False)
        diff = sum(losses) / len(rows) - sum(b8) / len(rows)
        name = f"K{width} x{growth} >={threshold} <={cap}"
        print(f"  {name:<32}{sum(losses) / len(rows):>8.4f}{diff:>+10.4f}{paired_se(losses, b8):>8.4f}"
              f"{tok:>9.1f}{tok / b8_tokens:>7.2f}{rounds(rows, width, threshold, cap, growth):>7.2f}")


CANDIDATES: dict[str, list[tuple[str, Rule, bool, Pick | None, tuple[int, float, int, int] | None]]] = {
    "best_of_n": [(f"N={n}", best_of(n), True, None, None) for n in (1, 2, 4, 8)],
    "branch_commit": [(f"K{w} x{g} >={t} <={c}", branch_commit(w, t, c, growth=g), False, None, (w, t, c, g))
                      for w, g, t, c in ((2, 1, 0.5, 16), (2, 2, 0.5, 14), (2, 2, 0.5, 8), (1, 2, 0.5, 15),
                                         (2, 2, 0.35, 14), (2, 2, 0.7, 14), (4, 1, 0.8, 16))],
    "self_consistency": [(f"K{w} x{g} share>={t} <={c}", self_consistency(w, t, c, growth=g), True, voted,
                          (w, t, c, g))
                         for w, g, t, c in ((2, 2, 0.5, 14), (2, 2, 0.6, 14), (2, 2, 0.7, 14), (2, 2, 0.8, 14),
                                            (2, 2, 0.6, 8), (3, 2, 0.6, 15), (4, 2, 0.6, 12), (2, 1, 0.6, 8),
                                            (8, 1, 0.0, 8))],
    # the peers' rules, for comparison (never a default of ours): a count vote over 8 (its_hub's
    # self-consistency, optillm's majority vote), and its_hub's adaptive one (2, doubling, share 0.75)
    "count vote (peers)": [("over 8", best_of(8), True, counted, None),
                           ("adaptive 2 x2 share>=0.75 <=8", self_consistency(2, 0.75, 8, growth=2, counts=True),
                            True, counted, None)],
}


def defaults(rows: list[Row]) -> None:
    """Each algorithm's candidate defaults, paired with best_of_8 decision by decision: loss difference ±
    paired SE, tokens against best-of-8's, engine calls; the cheapest within one paired SE is marked."""
    b8, b8_tokens = scores(rows, best_of(8), whole_turns=True)
    print("candidate defaults, paired with best_of_8 (loss diff <= its SE: as good):")
    print(f"{'algorithm / rule':<44}{'loss':>8}{'Δ vs b8':>10}{'± SE':>8}{'tokens':>9}{'x b8':>7}{'calls':>7}")
    n = len(rows)
    for algorithm, configs in CANDIDATES.items():
        found = []
        for name, rule, whole, pick_by, shape in configs:
            if shape is not None and shape[2] > len(rows[0].drawn):
                continue
            losses, tok = scores(rows, rule, whole_turns=whole, pick_by=pick_by)
            diff, se = sum(losses) / n - sum(b8) / n, paired_se(losses, b8)
            calls = (rounds(rows, shape[0], shape[1], shape[2], shape[3], voting=algorithm == "self_consistency")
                     if shape else 1.0)
            found.append((tok, name, diff <= se + 1e-12))
            print(f"  {algorithm + ' ' + name:<42}{sum(losses) / n:>8.4f}{diff:>+10.4f}{se:>8.4f}{tok:>9.1f}"
                  f"{tok / b8_tokens:>7.2f}{calls:>7.2f}")
        good = sorted((t, name) for t, name, ok in found if ok)
        print(f"  -> {algorithm}: cheapest as good as best_of_8: {good[0][1] if good else '(none)'}")


def oracle_spans(rows: list[Row], n: int = 8) -> float:
    """Mean spans drawn by a rule that knew when its choice was already as good as best-of-n's."""
    total = 0
    for row in rows:
        target = row.loss(chosen(row.drawn[:n]))
        total += next(m for m in range(1, n + 1) if row.loss(chosen(row.drawn[:m])) <= target + 1e-9)
    return total / len(rows)


async def record(model: Path, states: int, samples: int, seed: int, world: str = "numberreach") -> list[Row]:
    from engine.sampler import local_sampler

    async with local_sampler(model) as sampler:
        engine = sampler.engine
        search = _search_world() if world == "search" else None
        rng = random.Random(seed)
        visited = data.visited_states(rng, heldout=True) if search is None else search.visited(rng)
        todo = [next(visited) for _ in range(states)]
        sem = asyncio.Semaphore(16)

        async def one(k: int, s: Any) -> Row:
            prompt = data.prompt_for(s) if search is None else search.prompt(s)
            async with sem:
                batch = await sampler.sample(sampler.start(prompt), samples, stop=ACTION_STOPS,
                                             max_tokens=TURN_MAX_TOKENS, temperature=1.0, seed=seed * 100_003 + k)
            drawn = []
            for smp in batch.samples:
                turn = parse_turn(smp.text)
                cut = smp.text.find(CONFIDENCE_STOP)
                span = smp.text[: cut + len(CONFIDENCE_STOP)] if cut >= 0 else smp.text
                span_tokens = min(len(engine.encode(span, add_special_tokens=False)), smp.tokens)
                value = search.value_of(s, turn) if search is not None else None
                drawn.append(Drawn(turn.confidence, turn.action is not None, len(turn.problems), action_op(turn),
                                   span_tokens, smp.tokens, " ".join((turn.imaginary or "").split()),
                                   vote_key(turn.action), value))
            if search is not None:
                return Row(repr(s), {}, drawn, best=search.world.value(s))
            plans = env.shortest_plans(s.x, s.t, s.n)
            return Row(s, {op: env.q_value(s.x, s.t, s.n, op) for op in env.OPS}, drawn,
                       hit_length=len(plans[0]) if plans else None)

        rows = await asyncio.gather(*(one(k, s) for k, s in enumerate(todo)))
    return list(rows)


@dataclass(frozen=True)
class _SearchWorld:
    """The search world as the replay needs it: held-out states, prompts, and each turn's exact value."""

    world: Any

    def visited(self, rng: random.Random) -> Any:
        from reference.search import env as search_env

        return search_env.visited_states(self.world, rng, heldout=True)

    def prompt(self, state: Any) -> str:
        from reference.search import data as search_data

        return search_data.prompt_for(state)

    def value_of(self, state: Any, turn: Any) -> float:
        from reference.search.evaluate import turn_action

        action = turn_action(turn)
        return 0.0 if action is None else float(self.world.q_value(state, action))


def _search_world() -> _SearchWorld:
    from reference.search import env as search_env

    return _SearchWorld(search_env.World())


def coverage(rows: list[Row]) -> dict[int | None, tuple[int, float]]:
    """By the length of the shortest hitting plan: states, and the share of samples that plan a hit."""
    by: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        cell = by[row.hit_length]
        cell[0] += 1
        cell[1] += sum((d.confidence or 0.0) > 0 for d in row.drawn)
        cell[2] += len(row.drawn)
    return {k: (v[0], v[1] / max(v[2], 1)) for k, v in by.items()}


def report(rows: list[Row]) -> None:
    b8_loss, b8_tokens = score(rows, best_of(8), whole_turns=True)
    print(f"{len(rows)} held-out states, {len(rows[0].drawn)} turns each; loss = V*(s) - Q*(s, action)")
    print(f"{'rule':<28}{'loss':>8}{'tokens':>9}{'x best_of_8':>13}")
    for n in (1, 2, 4, 8, 16):
        if n <= len(rows[0].drawn):
            loss, tok = score(rows, best_of(n), whole_turns=True)
            print(f"{f'best_of_{n}':<28}{loss:>8.4f}{tok:>9.1f}{tok / b8_tokens:>13.2f}")
    results = []
    for width in (1, 2, 4):
        for threshold in (0.35, 0.5, 0.7, 0.8, 0.9):
            for cap in (4, 6, 8, 10, 12, 16):
                if cap <= len(rows[0].drawn) and width <= cap:
                    loss, tok = score(rows, branch_commit(width, threshold, cap), whole_turns=False)
                    results.append((loss, tok / b8_tokens, f"branch_commit K{width} >={threshold} <={cap}"))
    as_good = sorted((r for r in results if r[0] <= b8_loss + 1e-9), key=lambda r: r[1])
    print("branch_commit rules at least as good as best_of_8, cheapest first:")
    for loss, ratio, name in as_good[:5] or [(float("nan"), float("nan"), "(none)")]:
        print(f"  {name:<34}{loss:>8.4f}{ratio:>9.2f}")
    half = sorted((r for r in results if r[1] <= 0.5), key=lambda r: r[0])
    print("best branch_commit rules within 50% of best_of_8's tokens:")
    for loss, ratio, name in half[:5] or [(float("nan"), float("nan"), "(none)")]:
        print(f"  {name:<34}{loss:>8.4f}{ratio:>9.2f}")
    novel = []
    for width in (1, 2, 4):
        for threshold in (0.35, 0.5, 0.9):
            for cap in (8, 10, 12, 16):
                for novelty in (0.0, 0.1, 0.25):
                    if cap <= len(rows[0].drawn):
                        loss, tok = score(rows, branch_commit(width, threshold, cap, novelty), whole_turns=False)
                        novel.append((loss, tok / b8_tokens, f"K{width} >={threshold} <={cap} unseen<={novelty}"))
    as_good = sorted((r for r in novel if r[0] <= b8_loss + 1e-9), key=lambda r: r[1])
    print("with the novelty stop (needs turns recorded with their plans), as good as best_of_8, cheapest first:")
    for loss, ratio, name in as_good[:3] or [(float("nan"), float("nan"), "(none)")]:
        print(f"  {name:<34}{loss:>8.4f}{ratio:>9.2f}")
    adaptive(rows)
    defaults(rows)
    blind = sum(row.loss(chosen(row.drawn[:8])) for row in rows if not chosen(row.drawn[:8]).confidence) / len(rows)
    print(f"best_of_8's loss from decisions where none of its 8 plans claims any chance: {blind:.4f} of {b8_loss:.4f}")
    print(f"oracle stopping (knows when its choice equals best_of_8's): {oracle_spans(rows):.2f} spans a decision")
    if all(r.best is not None for r in rows):  # the search world: no op table, no plan lengths
        return
    print("share of sampled plans that hit, by the shortest hitting plan's length (None: no plan hits):")
    for length, (count, share) in sorted(coverage(rows).items(), key=lambda kv: (kv[0] is not None, kv[0] or 0)):
        print(f"  length {length}: {count} states, {share:.3f}")


def _saved(row: Row) -> dict[str, Any]:
    state = [row.state.x, row.state.t, row.state.n] if isinstance(row.state, env.State) else row.state
    return {"state": state, "q": row.q, "best": row.best, "hit_length": row.hit_length,
            "drawn": [asdict(d) for d in row.drawn]}


def _loaded(r: dict[str, Any]) -> Row:
    state = env.State(*r["state"]) if isinstance(r["state"], list) else r["state"]
    return Row(state, r["q"], [Drawn(**d) for d in r["drawn"]], r.get("best"), r.get("hit_length"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", choices=("numberreach", "search"), default="numberreach")
    ap.add_argument("--model", help="default: the world's reference model (models/foresight-WORLD)")
    ap.add_argument("--states", type=int, default=300)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--save", help="write the recorded samples here (JSON)")
    ap.add_argument("--load", help="replay samples recorded earlier with --save (no engine)")
    args = ap.parse_args()
    if args.states < 1 or args.samples < 8:
        ap.error("--states must be >= 1 and --samples >= 8 (best_of_8 is the yardstick)")
    if args.load:
        try:
            rows = [_loaded(r) for r in json.loads(Path(args.load).read_text())]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            ap.error(f"--load {args.load}: not samples written by --save ({exc})")
    else:
        model = Path(args.model or REPO / "models" / f"foresight-{args.world}")
        rows = asyncio.run(record(model, args.states, args.samples, args.seed, args.world))
    if args.save:
        Path(args.save).write_text(json.dumps([_saved(r) for r in rows]))
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
