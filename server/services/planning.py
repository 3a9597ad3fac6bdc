"""``/v1/plan``: plans on the engine through the planner's sampler, and plan results as responses."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from engine.base import GenerationRequest, Tenancy
from engine.errors import EngineRequestError
from engine.sampler import Constraint, EngineSampler, Run, TokenPrompt
from planner.defaults import PlannerDefaults
from planner.params import Param, from_mapping, params
from planner.search import (
    Algorithm,
    Budget,
    Calibrator,
    IdentityCalibrator,
    PlanConfig,
    PlanResult,
    Sample,
    SampleBatch,
    largest_round,
    plan,
)
from protocol.plan import (
    PlanInput,
)
from server.auth import ANONYMOUS, Principal
from server.config import Settings
from server.services.calibrations import Calibrations
from server.services.errors import DeadlineExceeded, InvalidRequest, NotAllowed
from server.services.generation import SHARED, GenerationService
from server.services.plan_response import plan_response
from server.services.recorder import Planned
from server.services.tools import Tools, check_messages
from server.services.usage import TokenUsage

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


def bounded_config(req: PlanInput, settings: Settings, defaults: PlannerDefaults | None = None) -> PlanConfig:
    """The request's plan config: what it left out from ``defaults`` (the model's, else the measured ones:
    :mod:`planner.defaults`), within this server's limits (each knob's ``limit`` setting): a value asked
    for above its limit is a 400 naming the field; a default the caller left out is lowered."""
    budget = getattr(req, "budget", None)
    budget_given = budget.model_fields_set if budget is not None else set()
    data = (defaults or PlannerDefaults()).fill(req.model_dump(), req.model_fields_set, budget_given)
    asked = from_mapping(PlanConfig, data)  # as asked, before any limit
    widening = (Algorithm.BRANCH_COMMIT, Algorithm.SELF_CONSISTENCY)
    redraws = asked.width > 1 or (asked.algorithm in widening and asked.budget.max_candidates > asked.width)
    if asked.temperature == 0 and asked.algorithm is not Algorithm.GREEDY and redraws:
        raise InvalidRequest("temperature 0 makes every sampled candidate the same: use temperature > 0 to branch, "
                             "or algorithm 'greedy' (or one candidate: width 1 and, for branch_commit and "
                             "self_consistency, budget.max_candidates 1)", param="temperature",
                             code="greedy_branching")
    _lower(data, req.model_fields_set, params(PlanConfig), settings, "")
    if isinstance(data.get("budget"), Mapping):
        _lower(data["budget"], budget_given, params(Budget), settings, "budget.")
    config = from_mapping(PlanConfig, data)
    if config.algorithm not in widening or largest_round(config) <= settings.max_n:
        return config
    if "width_growth" not in req.model_fields_set and "max_candidates" not in budget_given:
        return _fitted(config, settings.max_n)  # defaults only: fewer candidates, not a 400 nobody asked for
    raise InvalidRequest(f"width_growth {config.width_growth} would draw {largest_round(config)} spans in one "
                         f"round, above this server's max_n of {settings.max_n}: lower width_growth, width or "
                         "budget.max_candidates", param="width_growth", code="round_too_wide")


def _fitted(config: PlanConfig, max_n: int) -> PlanConfig:
    """``config`` with its default candidate cap lowered until its largest round fits ``max_n``."""
    while config.budget.max_candidates > 1 and largest_round(config) > max_n:
        budget = dataclasses.replace(config.budget, max_candidates=config.budget.max_candidates - 1)
        config = dataclasses.replace(config, budget=budget)
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


class PlanningService:
    """Plans on the engine with the current calibrator: checks the request, renders its prompt to token ids
    once, searches within the deadline, and answers. What a finished plan leaves behind (metrics, audit
    record, ledger entry) is :class:`server.services.recorder.PlanRecorder`'s."""

    def __init__(self, generation: GenerationService, calibrator: Calibrator | None = None,
                 calibrations: Calibrations | None = None) -> None:
        self.generation = generation
        self.calibrator = calibrator or IdentityCalibrator()
        self.calibrations = calibrations  # per served model (base, adapters); else ``calibrator`` for all

    def calibrator_of(self, served: str) -> Calibrator:
        return self.calibrations.of(served) if self.calibrations is not None else self.calibrator

    async def run(self, req: PlanInput, usage: TokenUsage | None = None,
                  principal: Principal = ANONYMOUS, tenancy: Tenancy = SHARED) -> Planned:
        """Plan for ``principal`` (in its domain: :func:`scoped`); the tokens spent are added to ``usage`` as
        they are spent, whether the plan ends or fails, and the response's ``usage`` is rendered from it."""
        usage = usage if usage is not None else TokenUsage()
        req, config, tools = self.check(req, principal)
        gen = self.generation
        served = usage.model = gen.models.resolve(req.model)
        sampler = EngineSampler(gen.engine, add_special_tokens=req.messages is None, run=metered(gen, usage),
                                constrain_action=self.action_constraint(tools), adapter=gen.models.adapter(served),
                                tenancy=tenancy)
        prompt = self.render(req, tools, sampler)
        gen.check_prompt_length(len(prompt.ids), "messages" if req.messages is not None else "prompt")
        result = await self.search(sampler, prompt, config, self.calibrator_of(served))
        response = plan_response(req, config, result, usage, served, tools)
        return Planned(req, response, result)

    def check(self, req: PlanInput, principal: Principal) -> tuple[PlanInput, PlanConfig, Tools | None]:
        """The request in the caller's domain, its config within this server's limits, its tools."""
        self.generation.check_model(req.model)
        req = scoped(req, principal)
        models = self.generation.models
        defaults = models.planner_defaults(models.resolve(req.model))
        return req, bounded_config(req, self.generation.settings, defaults), Tools.of(req)

    def action_constraint(self, tools: Tools | None) -> Constraint | None:
        """With ``tool_choice`` ``required`` or a named function: every engine call that ends a turn in its
        action is constrained to a call of one of the tools, as chat's are (the foresight before it stays
        free text); the request is refused at once if the engine cannot compile that constraint."""
        probe = tools.required_call(64) if tools is not None else None
        if tools is None or probe is None:
            return None
        try:
            self.generation.engine.check_request(GenerationRequest([0], structured=probe))
        except EngineRequestError as exc:
            raise InvalidRequest(str(exc), param="tools") from exc
        return tools.required_call

    async def search(self, sampler: EngineSampler, prompt: TokenPrompt, config: PlanConfig,
                     calibrator: Calibrator | None = None) -> PlanResult:
        """The planner's search, within the plan's deadline (and a grace for its last engine call)."""
        timeout = asyncio.timeout(config.budget.deadline_s + PLAN_GRACE_S)  # not wait_for: it can swallow a cancel
        try:
            async with timeout:
                return await plan(sampler, prompt, config, calibrator or self.calibrator)
        except TimeoutError as exc:
            if not timeout.expired():
                raise
            raise DeadlineExceeded(f"the plan ran past its deadline of {config.budget.deadline_s}s",
                                   code="deadline_exceeded") from exc

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
