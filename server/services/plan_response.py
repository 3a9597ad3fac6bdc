"""A plan's result as its response body (pure: no engine, no HTTP)."""

from __future__ import annotations

import uuid

from planner.search import Algorithm, Candidate, PlanConfig, PlanResult
from protocol.openai import now
from protocol.plan import (
    ActionModel,
    CandidateModel,
    ConfidenceModel,
    PlanInput,
    PlanResponse,
    PlanUsage,
    ProblemModel,
    ProblemSummary,
    PromptTokensDetails,
    TreeNode,
    VoteModel,
)
from server.services.tools import Tools, tool_message
from server.services.usage import TokenUsage


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
        problems=[ProblemModel(kind=p.kind, detail=p.detail) for p in c.turn.problems], vote=c.vote,
    )


def _tree(result: PlanResult) -> list[TreeNode]:
    by_id = {c.id: c for c in result.candidates}

    def node(c: Candidate) -> TreeNode:
        return TreeNode(id=c.id, raw_confidence=c.raw_confidence, calibrated_confidence=c.calibrated_confidence,
                        value=c.value, action=_action(c), continued=c.continued,
                        children=[node(by_id[i]) for i in c.children])

    return [node(c) for c in result.candidates if c.parent is None]


def problem_summary(result: PlanResult) -> list[ProblemSummary]:
    """One entry per problem kind over the candidates judged: its first detail and how many had it."""
    first: dict[str, str] = {}
    count: dict[str, int] = {}
    for c in result.candidates:
        for kind in dict.fromkeys(p.kind for p in c.turn.problems):
            count[kind] = count.get(kind, 0) + 1
            first.setdefault(kind, next(p.detail for p in c.turn.problems if p.kind == kind))
    return [ProblemSummary(kind=k, detail=first[k], candidates=n) for k, n in count.items()]


def plan_response(req: PlanInput, config: PlanConfig, result: PlanResult, tokens: TokenUsage, model: str,
                  tools: Tools | None = None) -> PlanResponse:
    """The response: the decision, the chosen action (with ``tools``, also as an OpenAI tool call), its
    rollout and confidence, the candidates (and their tree on request), and the usage — the request's tokens
    (``tokens``, the one count that was charged) beside the plan's own counts."""
    chosen = result.chosen
    u = result.usage
    message = finish = foresight = None
    if tools is not None and chosen is not None:
        message, finish, foresight = tool_message(chosen.text, "stop" if chosen.complete else "length", tools)
    return PlanResponse(
        plan_id=f"plan-{uuid.uuid4().hex}", created=now(), model=model,
        algorithm=config.algorithm, domain=config.domain, decision=result.decision.value,
        problems=problem_summary(result),
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
        votes=[VoteModel(key=v.key, candidates=v.turns, weight=round(v.weight, 6), share=round(v.share, 6))
               for v in result.votes] if config.algorithm is Algorithm.SELF_CONSISTENCY else None,
        message=message, finish_reason=finish, foresight=foresight,
    )
