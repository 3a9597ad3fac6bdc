"""``/v1/plan``: plans on the engine through the planner's sampler, and plan results as responses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from engine.base import GenerationRequest
from engine.errors import EngineRequestError
from engine.sampler import EngineSampler, Run, TokenPrompt
from planner.params import Param, from_mapping, params
from planner.search import (
    Algorithm,
    Budget,
    Calibrator,
    Candidate,
    IdentityCalibrator,
    PlanConfig,
    PlanResult,
    Sample,
    SampleBatch,
    largest_round,
    plan,
)
from protocol.openai import now
from protocol.plan import (
    ActionModel,
    CandidateModel,
    ConfidenceModel,
    PlanInput,
    PlanResponse,
    PlanUsage,
    ProblemModel,
    PromptTokensDetails,
    TreeNode,
)
from server.auth import ANONYMOUS, Principal
from server.config import Settings
from server.services.audit import audit_record
from server.services.errors import DeadlineExceeded, InvalidRequest, NotAllowed
from server.services.generation import GenerationService
from server.services.tools import Tools, check_messages, tool_message
from server.services.usage import TokenUsage
from server.store import PlanRecord


class PlanMemory(Protocol):
    """Where plans are remembered so that outcomes can be joined to them."""

    model: str

    async def remember(self, record: PlanRecord) -> bool: ...


PLAN_GRACE_S = 5.0  # past budget.deadline_s, how long a plan's last engine call may run before 504


def _lower(data: dict[str, Any], given: set[str], knobs: list[Param], settings: Settings, prefix: str) -> None:
    for p in knobs:
        cap = getattr(settings, p.knob.limit) if p.knob.limit else None
        value = data.get(p.name)
        if cap is None or value is None or value <= cap:
            continue
        if p.name in given:
            raise InvalidRequest(f"{prefix}{p.name} is {value}, above this server's limit of {cap} ({p.knob.limit})",
                             param=prefix + p.name, code="budget_too_large")
        data[p.name] = cap


def bounded_config(req: PlanInput, settings: Settings) -> PlanConfig:
    """The request's plan config within this server's limits (each knob's ``limit`` setting): a value
    asked for above its limit is a 400 naming the field; a default the caller left out is lowered."""
    asked = from_mapping(PlanConfig, req.model_dump())  # as asked, before any limit
    if asked.temperature == 0 and asked.algorithm is not Algorithm.GREEDY and asked.width > 1:
        raise InvalidRequest("temperature 0 makes every sampled candidate the same: use temperature > 0 to branch, "
                         "or algorithm 'greedy' (or width 1)", param="temperature", code="greedy_branching")
    data = req.model_dump()
    _lower(data, req.model_fields_set, params(PlanConfig), settings, "")
    budget = getattr(req, "budget", None)
    if isinstance(data.get("budget"), Mapping) and budget is not None:
        _lower(data["budget"], budget.model_fields_set, params(Budget), settings, "budget.")
    config = from_mapping(PlanConfig, data)
    if config.algorithm is Algorithm.BRANCH_COMMIT and (n := largest_round(config)) > settings.max_n:
        raise InvalidRequest(f"width_growth {config.width_growth} would draw {n} spans in one round, above this "
                         f"server's max_n of {settings.max_n}: lower width_growth, width or budget.max_candidates",
                         param="width_growth", code="round_too_wide")
    return config


def scoped(req: PlanInput, principal: Principal) -> PlanInput:
    """The request in the caller's domain: a plan without ``domain`` goes to the key's one domain; a domain
    the key may not use is a 403 (``domain_not_allowed``)."""
    if "domain" not in req.model_fields_set and principal.only_domain is not None:
        req = req.model_copy(update={"domain": principal.only_domain})
    domain = str(getattr(req, "domain", ""))
    if not principal.may_use(domain):
        raise NotAllowed(f"key {principal.name!r} may not plan in domain {domain!r}; its domains: "
                        f"{', '.join(principal.domains)}", param="domain", code="domain_not_allowed")
    return req


def metered(generation: GenerationService, usage: TokenUsage | None = None) -> Run:
    """The sampler's ``run`` through the generation service: metered (into ``usage``), timed out, aborted
    when cancelled."""

    async def run(request: GenerationRequest, request_id: str) -> SampleBatch:
        result = await generation.collect(request, request_id, usage=usage)
        return SampleBatch([Sample(s.text, s.num_tokens, s.finish_reason,
                                   tuple(s.token_ids) if len(s.token_ids) == s.num_tokens else ())
                            for s in result.sequences],
                           result.prompt_tokens, result.cached_tokens)

    return run


def _action(c: Candidate | None) -> ActionModel | None:
    if c is None or c.turn.action is None:
        return None
    a = c.turn.action
    return ActionModel(kind=a.kind, content=a.content, name=a.name, arguments=a.arguments)


def _candidate(c: Candidate) -> CandidateModel:
    return CandidateModel(
        id=c.id, parent=c.parent, depth=c.depth, text=c.text, complete=c.complete, continued=c.continued,
        raw_confidence=c.raw_confidence, calibrated_confidence=c.calibrated_confidence, value=c.value,
        tokens=c.tokens, action=_action(c),
        problems=[ProblemModel(kind=p.kind, detail=p.detail) for p in c.turn.problems],
    )


def _tree(result: PlanResult) -> list[TreeNode]:
    by_id = {c.id: c for c in result.candidates}

    def node(c: Candidate) -> TreeNode:
        return TreeNode(id=c.id, raw_confidence=c.raw_confidence, calibrated_confidence=c.calibrated_confidence,
                        value=c.value, action=_action(c), continued=c.continued,
                        children=[node(by_id[i]) for i in c.children])

    return [node(c) for c in result.candidates if c.parent is None]


class PlanningService:
    """Runs plans on the engine with the current calibrator."""

    def __init__(self, generation: GenerationService, calibrator: Calibrator | None = None,
                 memory: PlanMemory | None = None) -> None:
        self.generation = generation
        self.metrics = generation.metrics
        self.calibrator = calibrator or IdentityCalibrator()
        self.memory = memory

    async def run(self, req: PlanInput, usage: TokenUsage | None = None,
                  principal: Principal = ANONYMOUS) -> PlanResponse:
        """Plan for ``principal`` (in its domain: :func:`scoped`); the tokens spent are added to ``usage`` as
        they are spent, whether the plan ends or fails, and the response's ``usage`` is rendered from it."""
        usage = usage if usage is not None else TokenUsage()
        gen = self.generation
        gen.check_model(req.model)
        req = scoped(req, principal)
        config = bounded_config(req, gen.settings)
        tools = Tools.of(req)
        sampler = EngineSampler(gen.engine, add_special_tokens=req.messages is None, run=metered(gen, usage))
        prompt = self.render(req, tools, sampler)
        gen.check_prompt_length(len(prompt.ids), "messages" if req.messages is not None else "prompt")
        # not wait_for: on Python 3.11 it can swallow a cancel
        timeout = asyncio.timeout(config.budget.deadline_s + PLAN_GRACE_S)
        try:
            async with timeout:
                result = await plan(sampler, prompt, config, self.calibrator)
        except TimeoutError as exc:
            if not timeout.expired():
                raise
            raise DeadlineExceeded(f"the plan ran past its deadline of {config.budget.deadline_s}s",
                                 code="deadline_exceeded") from exc
        response = self.respond(req, config, result, usage, tools)
        if self.metrics is not None:
            m = self.metrics
            m.count_decision(result.decision.value)
            m.plan_candidates.observe(result.usage.candidates)
            m.plan_depth.observe(result.usage.depth)
            m.plan_latency.observe(result.latency_s)
            m.count_prefix_cache(result.usage)
            for c in result.candidates:
                for problem in c.turn.problems:
                    m.parse_problems.labels(problem.kind).inc()
        if self.memory is not None:
            record, truncated = audit_record(req, response, result.chosen.id if result.chosen else None,
                                             gen.settings.max_plan_record_bytes,
                                             {c.id: c.turn.imaginary for c in result.candidates})
            await self.memory.remember(PlanRecord(
                plan_id=response.plan_id, model=self.memory.model, domain=response.domain,
                algorithm=response.algorithm, decision=response.decision,
                raw_confidence=response.confidence.raw, calibrated_confidence=response.confidence.calibrated,
                rollout=response.rollout, owner=principal.name, record=record, truncated=truncated,
            ))
        return response

    def render(self, req: PlanInput, tools: Tools | None, sampler: EngineSampler) -> TokenPrompt:
        """The plan's prompt as token ids, rendered once: chat messages through the chat template (with the
        declared tools), a text prompt encoded with the tokenizer's own special tokens."""
        if req.messages is None:
            return sampler.start(req.prompt or "")
        check_messages(req.messages)
        try:
            ids = self.generation.engine.render_chat([m.as_template_dict() for m in req.messages],
                                                     tools.template_tools(req) if tools else None)
        except EngineRequestError as exc:
            raise InvalidRequest(str(exc), param="messages") from exc
        return sampler.prompt(ids)

    def respond(self, req: PlanInput, config: PlanConfig, result: PlanResult, tokens: TokenUsage,
                tools: Tools | None = None) -> PlanResponse:
        chosen = result.chosen
        u = result.usage
        message = finish = foresight = None
        if tools is not None and chosen is not None:
            message, finish, foresight = tool_message(chosen.text, "stop" if chosen.complete else "length", tools)
        return PlanResponse(
            plan_id=f"plan-{uuid.uuid4().hex}", created=now(), model=self.generation.engine.info.name,
            algorithm=config.algorithm, domain=config.domain, decision=result.decision.value,
            action=_action(chosen), text=chosen.text if chosen else None,
            rollout=chosen.turn.imaginary if chosen else None,
            confidence=ConfidenceModel(raw=chosen.raw_confidence if chosen else None,
                                       calibrated=chosen.calibrated_confidence if chosen else None),
            candidates=[_candidate(c) for c in result.candidates],
            usage=PlanUsage(prompt_tokens=tokens.prompt_tokens, completion_tokens=tokens.completion_tokens,
                            total_tokens=tokens.total, candidates=u.candidates, depth=u.depth,
                            engine_calls=u.engine_calls,
                            prompt_tokens_details=PromptTokensDetails(
                                cached_tokens=tokens.cached_tokens,
                                continuation_prompt_tokens=u.continuation_prompt_tokens,
                                continuation_cached_tokens=u.continuation_cached_tokens)),
            latency_s=round(result.latency_s, 6),
            tree=_tree(result) if req.return_tree else None,
            message=message, finish_reason=finish, foresight=foresight,
        )
