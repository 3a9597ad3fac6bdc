"""The contracts of planning: sampler, calibrator, budget, candidates, results.

The planner needs one thing from an engine — :class:`Sampler` — and declares it
here, so planner/ never imports server/ or vllm. All search state lives in one
:class:`SearchState` per call: concurrent plans cannot interfere.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from planner.format import ACTION_STOPS, CONFIDENCE_STOP, Turn, parse_turn
from planner.params import SEED_MAX, SEED_MIN, check, knob
from planner.votes import Vote


@dataclass(frozen=True)
class Sample:
    """One generated text and what it cost."""

    text: str
    tokens: int
    finish_reason: str | None = None
    token_ids: tuple[int, ...] = ()  # what the engine generated (empty: not said)


@dataclass(frozen=True)
class SampleBatch:
    """The n samples of one engine call."""

    samples: list[Sample]
    prompt_tokens: int
    cached_tokens: int = 0  # of the prompt, served by the engine's prefix cache


Context = Any
"""A prompt as a sampler keeps it, opaque to the planner: the engine's sampler keeps token ids (a prompt is
rendered to ids once, and a continuation extends them with the ids the engine wrote); a sampler that speaks
text (:class:`TextSampler`) keeps the text. The planner only hands contexts back to the sampler that made them,
and compares them by value (they are hashable: a tuple of ids, a string)."""


class Sampler(Protocol):
    """What the planner needs from an engine: n samples of one prompt in one call, and prompts made from
    earlier ones."""

    def start(self, text: str) -> Context:
        """A new prompt from ``text`` (a lookahead that sees only the imagined observation)."""
        ...

    def extend(self, context: Context, sample: Sample | None = None, text: str = "") -> Context:
        """``context`` followed by ``sample`` as the engine wrote it, then by ``text``."""
        ...

    def carry(self, context: Context, sample: Sample) -> tuple[Context, str]:
        """``context`` followed by every token the engine wrote for ``sample`` — a stop string may end inside
        the last one (a BPE token ``><`` that closes ``</confidence>`` and opens the next tag) — and the text
        those tokens show past ``sample.text``: what a continuation from there starts with. Continuing from
        the model's own tokens, not a re-encoding of its text, is what it would have written unstopped."""
        ...

    async def sample(
        self,
        context: Context,
        n: int,
        *,
        stop: Sequence[str],
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> SampleBatch: ...


class TextSampler:
    """Contexts as plain texts: for samplers that speak text (scripted tests, replays of recorded texts)."""

    def start(self, text: str) -> str:
        return text

    def extend(self, context: str, sample: Sample | None = None, text: str = "") -> str:
        return context + (sample.text if sample is not None else "") + text

    def carry(self, context: str, sample: Sample) -> tuple[str, str]:
        return context + sample.text, ""


class Calibrator(Protocol):
    """Maps a raw verbalized confidence to a calibrated probability for a domain."""

    def calibrate(self, raw: float | None, domain: str) -> float | None: ...


class IdentityCalibrator:
    """Calibration before any outcome is known: the raw confidence as it is."""

    def calibrate(self, raw: float | None, domain: str) -> float | None:
        return raw


class Algorithm(enum.StrEnum):
    """The planning algorithms."""

    GREEDY = "greedy"
    BEST_OF_N = "best_of_n"
    BRANCH_COMMIT = "branch_commit"
    LOOKAHEAD = "lookahead"
    SELF_CONSISTENCY = "self_consistency"


class Decision(enum.StrEnum):
    """How a plan ended."""

    COMMIT = "commit"
    BUDGET_EXHAUSTED = "budget_exhausted"
    # a round in which no candidate stated a confidence: the model does not write the foresight format
    # (a pretrained LLM that is not a foresight model), so widening would only spend the budget
    NO_CONFIDENCE = "no_confidence"


class LookaheadContext(enum.StrEnum):
    """What the next level of a lookahead is prompted with."""

    HISTORY = "history"  # the prompt, the turn and the imagined observation
    OBSERVATION = "observation"  # the imagined observation alone (Markov models)
    # the prompt and the imagined observation, not the turn (models whose history is their observations,
    # as the search reference model's: its chat template renders user and tool messages only)
    OBSERVATIONS = "observations"


@dataclass(frozen=True)
class Budget:
    """Limits of one plan: generated tokens, candidates, depth, wall time."""

    max_tokens: int = knob(4096, "Generated tokens, all candidates together.", ge=1, limit="max_plan_tokens")
    max_candidates: int = knob(16, "Sampled candidates, all levels together.", ge=1, limit="max_plan_candidates")
    max_depth: int = knob(2, "Levels of lookahead (1 = no lookahead).", ge=1, limit="max_plan_depth")
    deadline_s: float = knob(60.0, "Wall-clock budget in seconds.", gt=0, limit="max_plan_deadline_s")

    def __post_init__(self) -> None:
        check(self, "budget.")


@dataclass(frozen=True)
class PlanConfig:
    """Everything one plan call is asked to do: the one definition of a plan's parameters
    (:mod:`planner.params`), from which the HTTP model, the CLI flags and the server's limits derive."""

    algorithm: Algorithm = knob(Algorithm.BRANCH_COMMIT, "Planning algorithm.")
    budget: Budget = field(default_factory=Budget)
    commit_threshold: float = knob(0.8, (
        "Commit once the best calibrated confidence reaches this (self_consistency: once the leading action's "
        "confidence-weighted share of the votes reaches this, with two turns at least)."), ge=0, le=1)
    margin: float = knob(0.0, "Commit only if the best also beats the runner-up by at least this.", ge=0, le=1)
    width: int = knob(4, "K: samples per proposal round; N of best_of_n.", ge=1, limit="max_n")
    width_growth: int = knob(1, (
        "branch_commit, self_consistency: each proposal round draws this many times the previous round's spans "
        "(1: `width` every round; 2: width, 2·width, 4·width, … — start narrow, widen fast while none is "
        "confident)."), ge=1, le=8)
    branch: int = knob(2, "b: candidates lookahead deepens per level.", ge=1)
    temperature: float = knob(1.0, "Sampling temperature of every candidate.", ge=0, le=2)
    top_p: float = knob(1.0, "Nucleus sampling: the probability mass sampled from.", gt=0, le=1)
    seed: int | None = knob(None, "Makes the plan reproducible: its samples take the seeds seed, seed+1, … in "
                                  "order, none twice.", ge=SEED_MIN, le=SEED_MAX)
    domain: str = knob("default", "Whose calibration map judges the confidence (and whose outcomes it learns).",
                       min_length=1, max_length=128)
    max_tokens_per_turn: int = knob(256, "Tokens one sampled turn may take.", ge=1, limit="max_tokens_limit")
    lookahead_context: LookaheadContext = knob(LookaheadContext.HISTORY, (
        "lookahead: the next level sees the whole history, only the imagined observation (Markov agents), or "
        "the prompt and the imagined observation without the turn (`observations`: agents whose history is "
        "what they observed)."))
    discount: float = knob(1.0, (
        "lookahead: an imagined future's value is multiplied by this before it competes with its parent's "
        "own confidence (1: no discount; e.g. the chance that an action takes effect as imagined)."), ge=0, le=1)
    root_rounds: int = knob(1, (
        "lookahead: rounds of `width` first-level turns drawn while the best of them is below "
        "commit_threshold (1: one round); within budget.max_candidates."), ge=1)

    def __post_init__(self) -> None:
        check(self)


@dataclass
class Candidate:
    """One sampled turn (or world-model span) and how it was judged."""

    id: int
    text: str
    turn: Turn
    raw_confidence: float | None
    calibrated_confidence: float | None
    tokens: int
    depth: int = 1
    parent: int | None = None
    complete: bool = False  # has its action (not only the world-model span)
    prompt: Context = field(default=None, repr=False)  # what it was sampled from
    written: list[Sample] = field(default_factory=list, repr=False)  # what the engine wrote: span, continuation
    value: float | None = None  # backed-up value (lookahead); else the calibrated confidence
    children: list[int] = field(default_factory=list)
    vote: str | None = None  # self_consistency: the action it votes for, normalised (planner.votes)

    @property
    def continued(self) -> bool:
        """Whether it was taken on to its action. False for a world-model span judged and left there: not
        chosen (it has no action to miss: no ``missing_action`` problem), or chosen when the budget had no
        room left to continue it (then its ``missing_action`` says so)."""
        return self.complete

    @property
    def score(self) -> float:
        v = self.value if self.value is not None else self.calibrated_confidence
        return -1.0 if v is None else v


@dataclass
class Usage:
    """What a plan cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    candidates: int = 0
    depth: int = 0
    engine_calls: int = 0
    cached_tokens: int = 0  # prompt tokens the prefix cache served, all calls
    continuation_prompt_tokens: int = 0  # of which: the calls that continue a committed span
    continuation_cached_tokens: int = 0


@dataclass
class PlanResult:
    """The outcome of one plan call."""

    decision: Decision
    chosen: Candidate | None
    candidates: list[Candidate]
    usage: Usage
    algorithm: Algorithm
    latency_s: float = 0.0
    votes: list[Vote] = field(default_factory=list)  # self_consistency's tally, leading action first


class SearchState:
    """All mutable state of one plan call: budget left, candidates, usage."""

    def __init__(self, sampler: Sampler, calibrator: Calibrator, config: PlanConfig) -> None:
        self.sampler = sampler
        self.calibrator = calibrator
        self.config = config
        self.candidates: list[Candidate] = []
        self.usage = Usage()
        self.seeds_used = 0  # seeds handed to the engine so far (see ``sample``)
        self.started = time.monotonic()
        # what engine calls in flight may still spend: concurrent calls (lookahead's branches) must
        # not each see the whole budget left
        self.reserved_tokens = 0
        self.reserved_candidates = 0

    # ------------------------------------------------------------------ budget

    @property
    def tokens_left(self) -> int:
        """Tokens neither generated nor reserved by an engine call in flight."""
        return self.config.budget.max_tokens - self.usage.completion_tokens - self.reserved_tokens

    @property
    def candidates_left(self) -> int:
        """Candidates neither judged nor reserved by an engine call in flight."""
        return self.config.budget.max_candidates - self.usage.candidates - self.reserved_candidates

    def time_left(self) -> float:
        return self.config.budget.deadline_s - (time.monotonic() - self.started)

    def affordable(self, n: int, per_sample: int, min_per_sample: int = 8,
                   tokens: int | None = None) -> tuple[int, int]:
        """How many samples (≤ n) and tokens each the budget allows now — out of at most ``tokens``
        when given (a share of what is left); (0, 0) if none."""
        n = min(n, self.candidates_left)
        if n <= 0 or self.time_left() <= 0:
            return 0, 0
        pool = self.tokens_left if tokens is None else min(tokens, self.tokens_left)
        per = min(per_sample, pool // n)
        while n > 1 and per < min_per_sample:
            n -= 1
            per = min(per_sample, pool // n)
        if per < 1:
            return 0, 0
        return n, per

    # ------------------------------------------------------------------ sampling

    async def sample(self, prompt: Context, n: int, stop: Sequence[str], max_tokens: int,
                     temperature: float | None = None, count_candidates: bool = True) -> list[Sample]:
        cfg = self.config
        # Engines seed the i-th of n samples with seed + i (vLLM does): each call takes the next
        # unused block of seeds, else a widening round would redraw the samples already judged.
        seed = None if cfg.seed is None else cfg.seed + self.seeds_used
        self.seeds_used += n
        tokens, cands = n * max_tokens, (n if count_candidates else 0)
        self.reserved_tokens += tokens
        self.reserved_candidates += cands
        try:
            batch = await self.sampler.sample(
                prompt, n, stop=stop, max_tokens=max_tokens,
                temperature=cfg.temperature if temperature is None else temperature, top_p=cfg.top_p, seed=seed,
            )
        finally:
            self.reserved_tokens -= tokens
            self.reserved_candidates -= cands
        self.usage.engine_calls += 1
        self.usage.prompt_tokens += batch.prompt_tokens
        self.usage.cached_tokens += batch.cached_tokens
        if not count_candidates:  # a continuation: its prompt re-sends the span just generated
            self.usage.continuation_prompt_tokens += batch.prompt_tokens
            self.usage.continuation_cached_tokens += batch.cached_tokens
        self.usage.completion_tokens += sum(s.tokens for s in batch.samples)
        if count_candidates:
            self.usage.candidates += len(batch.samples)
        return batch.samples

    def judge(self, prompt: Context, sample: Sample, *, depth: int = 1, parent: int | None = None,
              complete: bool = True) -> Candidate:
        turn = parse_turn(sample.text)
        if not complete:  # a world-model span: its action is yet to come, none is missing
            turn = dataclasses.replace(turn, problems=tuple(p for p in turn.problems if p.kind != "missing_action"))
        calibrated = self.calibrator.calibrate(turn.confidence, self.config.domain)
        cand = Candidate(
            id=len(self.candidates), text=sample.text, turn=turn, raw_confidence=turn.confidence,
            calibrated_confidence=calibrated, tokens=sample.tokens, depth=depth, parent=parent, complete=complete,
            prompt=prompt, written=[sample],
        )
        self.candidates.append(cand)
        if parent is not None:
            self.candidates[parent].children.append(cand.id)
        self.usage.depth = max(self.usage.depth, depth)
        return cand

    async def propose_turns(self, prompt: Context, n: int, *, depth: int = 1, parent: int | None = None,
                            temperature: float | None = None, tokens: int | None = None) -> list[Candidate]:
        """n whole turns (world model, think, action) in one engine call, spending at most ``tokens``
        (default: what the budget has left)."""
        n, per = self.affordable(n, self.config.max_tokens_per_turn, tokens=tokens)
        if n == 0:
            return []
        samples = await self.sample(prompt, n, ACTION_STOPS, per, temperature)
        return [self.judge(prompt, s, depth=depth, parent=parent) for s in samples]

    async def propose_spans(self, prompt: Context, n: int, *, depth: int = 1,
                            parent: int | None = None) -> list[Candidate]:
        """n world-model spans (up to ``</confidence>``) in one engine call."""
        n, per = self.affordable(n, self.config.max_tokens_per_turn)
        if n == 0:
            return []
        samples = await self.sample(prompt, n, (CONFIDENCE_STOP,), per)
        return [self.judge(prompt, s, depth=depth, parent=parent, complete=False) for s in samples]

    async def complete(self, cand: Candidate) -> Candidate:
        """Continue a world-model span through think and action (greedy, one sample), from the tokens the
        engine wrote for it."""
        if cand.complete:
            return cand
        per = min(self.config.max_tokens_per_turn, max(self.tokens_left, 0))
        if per < 1:
            return cand
        context, carried = self._carried(cand)
        (s,) = await self.sample(context, 1, ACTION_STOPS, per, temperature=0.0, count_candidates=False)
        text = cand.text + carried + s.text
        turn = parse_turn(text)
        cand.text, cand.turn, cand.tokens, cand.complete = text, turn, cand.tokens + s.tokens, True
        cand.written.append(s)
        return cand

    def after(self, cand: Candidate) -> Context:
        """``cand``'s prompt followed by what the engine wrote for it (made when needed: a plan keeps one
        prompt and each candidate's own tokens, not a copy of the prompt per candidate)."""
        if not cand.written:
            return cand.prompt
        context, _ = self._carried(cand, upto=len(cand.written) - 1)
        return self.sampler.extend(context, cand.written[-1])

    def _carried(self, cand: Candidate, upto: int | None = None) -> tuple[Context, str]:
        """The context after ``cand.written[:upto]`` (all by default), each written piece carried on whole
        (:meth:`Sampler.carry`), and what the last one's tokens show past its text (the candidate's text
        holds it: :meth:`complete` put it there)."""
        context, carried = cand.prompt, ""
        for s in cand.written[:upto]:
            context, carried = self.sampler.carry(context, s)
        return context, carried

    def result(self, decision: Decision, chosen: Candidate | None, votes: list[Vote] | None = None) -> PlanResult:
        if chosen is not None and not chosen.complete:  # chosen, but never continued: its action is missing
            chosen.turn = parse_turn(chosen.text)
        return PlanResult(decision, chosen, self.candidates, self.usage, self.config.algorithm,
                          latency_s=time.monotonic() - self.started, votes=votes or [])


def unconfident(cands: Sequence[Candidate]) -> bool:
    """True for candidates none of which stated a confidence or began a world-model span: a model that does
    not write the format (no candidates is not that). A span the budget cut inside its ``<imaginary>`` began
    one: a foresight model on a tight budget is not taken for a model without foresight."""
    return bool(cands) and all(c.raw_confidence is None and c.turn.imaginary is None for c in cands)


def ranked(cands: Sequence[Candidate]) -> list[Candidate]:
    """Best first: by score, then raw confidence, then usable action, then fewer problems, then id.

    Raw confidence breaks ties of the calibrated one: a calibration map is monotone but may be flat
    (isotonic regression pools neighbouring values), and two plans it maps to the same probability
    are still ordered by what the model said."""
    return sorted(cands, key=lambda c: (-c.score, -(-1.0 if c.raw_confidence is None else c.raw_confidence),
                                        c.turn.action is None, len(c.turn.problems), c.id))
