"""``/v1/plan``: the engine as the planner's sampler, and plan results as responses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from planner import InvalidPlanRequest
from planner.search import (
    Algorithm,
    Budget,
    Calibrator,
    Candidate,
    IdentityCalibrator,
    LookaheadContext,
    PlanConfig,
    PlanResult,
    Sample,
    SampleBatch,
    plan,
)
from server.config import Settings
from server.engine.base import GenerationRequest
from server.errors import ApiError, BadRequest
from server.protocol.openai import now
from server.protocol.plan import (
    ActionModel,
    CandidateModel,
    ConfidenceModel,
    PlanRequest,
    PlanResponse,
    PlanUsage,
    ProblemModel,
    TreeNode,
)
from server.services.generation import GenerationService
from server.store import PlanRecord


class PlanMemory(Protocol):
    """Where plans are remembered so that outcomes can be joined to them."""

    model: str

    async def remember(self, record: PlanRecord) -> bool: ...


PLAN_GRACE_S = 5.0  # past budget.deadline_s, how long a plan's last engine call may run before 504


class PlanTimeout(ApiError):
    """504: the plan ran past its deadline."""

    status_code = 504
    error_type = "timeout"
    code = "deadline_exceeded"


@dataclass
class EngineSampler:
    """The engine behind the planner's ``Sampler`` protocol; stop strings stay in the output."""

    service: GenerationService
    add_special_tokens: bool

    async def sample(self, prompt: str, n: int, *, stop: Sequence[str], max_tokens: int, temperature: float,
                     top_p: float = 1.0, seed: int | None = None) -> SampleBatch:
        engine = self.service.engine
        ids = engine.encode(prompt, add_special_tokens=self.add_special_tokens)
        room = engine.info.max_model_len - len(ids)
        if room < 1:
            return SampleBatch([Sample("", 0, "length") for _ in range(n)], len(ids))
        greq = GenerationRequest(ids, n=n, max_tokens=min(max_tokens, room), temperature=temperature, top_p=top_p,
                                 seed=seed, stop=tuple(stop), include_stop_str_in_output=True)
        result = await self.service.collect(greq, f"plan-{uuid.uuid4().hex}")
        samples = [Sample(s.text, s.num_tokens, s.finish_reason) for s in result.sequences]
        return SampleBatch(samples, result.prompt_tokens)


@asynccontextmanager
async def local_sampler(model: str | Path, dtype: str = "float32") -> AsyncIterator[EngineSampler]:
    """The planner's sampler over an engine loaded here on ``model`` (benchmarks, offline evaluation),
    closed on leaving."""
    from server.engine.vllm_engine import VllmEngine, VllmEngineConfig

    path = Path(model)
    engine = VllmEngine(VllmEngineConfig(model=str(path), served_model_name=path.name, dtype=dtype, log_stats=False))
    await engine.start()
    try:
        yield EngineSampler(GenerationService(engine, Settings(model=str(path))), add_special_tokens=True)
    finally:
        await engine.close()


def check_budget(req: PlanRequest, settings: Settings) -> None:
    """400 naming the field when a plan asks for more than this server allows; defaults the caller
    left out are lowered to the limits instead."""
    if req.temperature == 0 and req.algorithm != "greedy" and req.width > 1:
        raise BadRequest("temperature 0 makes every sampled candidate the same: use temperature > 0 to branch, "
                         "or algorithm 'greedy' (or width 1)", param="temperature", code="greedy_branching")
    b = req.budget
    for owner, name, cap, setting in (
        (b, "max_tokens", settings.max_plan_tokens, "max_plan_tokens"),
        (b, "max_candidates", settings.max_plan_candidates, "max_plan_candidates"),
        (b, "max_depth", settings.max_plan_depth, "max_plan_depth"),
        (b, "deadline_s", settings.max_plan_deadline_s, "max_plan_deadline_s"),
        (req, "width", settings.max_n, "max_n"),
        (req, "max_tokens_per_turn", settings.max_tokens_limit, "max_tokens_limit"),
    ):
        value = getattr(owner, name)
        if cap is None or value <= cap:
            continue
        field = f"budget.{name}" if owner is b else name
        if name in owner.model_fields_set:
            raise BadRequest(f"{field} is {value}, above this server's limit of {cap} ({setting})", param=field,
                             code="budget_too_large")
        setattr(owner, name, cap)


def to_config(req: PlanRequest) -> PlanConfig:
    try:
        b = req.budget
        return PlanConfig(
            algorithm=Algorithm(req.algorithm),
            budget=Budget(b.max_tokens, b.max_candidates, b.max_depth, b.deadline_s),
            commit_threshold=req.commit_threshold, margin=req.margin, width=req.width, branch=req.branch,
            temperature=req.temperature, top_p=req.top_p, seed=req.seed, domain=req.domain,
            turn_max_tokens=req.max_tokens_per_turn, lookahead_context=LookaheadContext(req.lookahead_context),
            discount=req.discount, root_rounds=req.root_rounds,
        )
    except InvalidPlanRequest as exc:
        raise BadRequest(str(exc), param=exc.field) from exc


def _action(c: Candidate | None) -> ActionModel | None:
    if c is None or c.turn.action is None:
        return None
    a = c.turn.action
    return ActionModel(kind=a.kind, content=a.content, name=a.name, arguments=a.arguments)


def _candidate(c: Candidate) -> CandidateModel:
    return CandidateModel(
        id=c.id, parent=c.parent, depth=c.depth, text=c.text, complete=c.complete,
        raw_confidence=c.raw_confidence, calibrated_confidence=c.calibrated_confidence, value=c.value,
        tokens=c.tokens, action=_action(c),
        problems=[ProblemModel(kind=p.kind, detail=p.detail) for p in c.turn.problems],
    )


def _tree(result: PlanResult) -> list[TreeNode]:
    by_id = {c.id: c for c in result.candidates}

    def node(c: Candidate) -> TreeNode:
        return TreeNode(id=c.id, raw_confidence=c.raw_confidence, calibrated_confidence=c.calibrated_confidence,
                        value=c.value, action=_action(c), children=[node(by_id[i]) for i in c.children])

    return [node(c) for c in result.candidates if c.parent is None]


class PlanningService:
    """Runs plans on the engine with the current calibrator."""

    def __init__(self, generation: GenerationService, calibrator: Calibrator | None = None,
                 memory: PlanMemory | None = None) -> None:
        self.generation = generation
        self.metrics = generation.metrics
        self.calibrator = calibrator or IdentityCalibrator()
        self.memory = memory

    async def run(self, req: PlanRequest) -> PlanResponse:
        gen = self.generation
        gen.check_model(req.model)
        check_budget(req, gen.settings)
        config = to_config(req)
        if req.messages is not None:
            prompt = gen.engine.chat_prompt([m.as_template_dict() for m in req.messages])
            sampler = EngineSampler(gen, add_special_tokens=False)
        else:
            prompt = req.prompt or ""
            sampler = EngineSampler(gen, add_special_tokens=True)
        gen.check_prompt_length(len(gen.engine.encode(prompt, add_special_tokens=sampler.add_special_tokens)),
                                "messages" if req.messages is not None else "prompt")
        # not wait_for: on Python 3.11 it can swallow a cancel
        timeout = asyncio.timeout(config.budget.deadline_s + PLAN_GRACE_S)
        try:
            async with timeout:
                result = await plan(sampler, prompt, config, self.calibrator)
        except TimeoutError as exc:
            if not timeout.expired():
                raise
            raise PlanTimeout(f"the plan ran past its deadline of {config.budget.deadline_s}s") from exc
        response = self.respond(req, result)
        if self.metrics is not None:
            m = self.metrics
            m.plan_decisions.labels(result.decision.value).inc()
            m.plan_candidates.observe(result.usage.candidates)
            m.plan_depth.observe(result.usage.depth)
            m.plan_latency.observe(result.latency_s)
            for c in result.candidates:
                for problem in c.turn.problems:
                    m.parse_problems.labels(problem.kind).inc()
        if self.memory is not None:
            await self.memory.remember(PlanRecord(
                plan_id=response.plan_id, model=self.memory.model, domain=response.domain,
                algorithm=response.algorithm, decision=response.decision,
                raw_confidence=response.confidence.raw, calibrated_confidence=response.confidence.calibrated,
                rollout=response.rollout,
            ))
        return response

    def respond(self, req: PlanRequest, result: PlanResult) -> PlanResponse:
        chosen = result.chosen
        u = result.usage
        return PlanResponse(
            plan_id=f"plan-{uuid.uuid4().hex}", created=now(), model=self.generation.engine.info.name,
            algorithm=req.algorithm, domain=req.domain, decision=result.decision.value,
            action=_action(chosen), text=chosen.text if chosen else None,
            rollout=chosen.turn.imaginary if chosen else None,
            confidence=ConfidenceModel(raw=chosen.raw_confidence if chosen else None,
                                       calibrated=chosen.calibrated_confidence if chosen else None),
            candidates=[_candidate(c) for c in result.candidates],
            usage=PlanUsage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                            total_tokens=u.prompt_tokens + u.completion_tokens, candidates=u.candidates,
                            depth=u.depth, engine_calls=u.engine_calls),
            latency_s=round(result.latency_s, 6),
            tree=_tree(result) if req.return_tree else None,
        )
