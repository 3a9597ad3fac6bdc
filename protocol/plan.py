"""``POST /v1/plan`` request and response models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from planner.params import Param, params
from planner.search.base import Algorithm, Budget, PlanConfig
from protocol.openai import AssistantMessage, ChatMessage, ForesightInfo, ToolFields


def _field(p: Param) -> tuple[Any, Any]:
    k = p.knob
    return p.type, Field(default=p.default, description=k.description, ge=k.ge, gt=k.gt, le=k.le,
                         min_length=k.min_length, max_length=k.max_length)


def _knobs(cls: type) -> dict[str, Any]:
    return {p.name: _field(p) for p in params(cls)}


class PlanInput(ToolFields):
    """What to plan on: a prompt or messages (the plan's parameters are added from ``PlanConfig``), and the
    tools the chosen action may call (as on ``/v1/chat/completions``)."""

    model_config = ConfigDict(extra="allow")
    model: str | None = Field(default=None, description=(
        "The base's served name or a loaded adapter's (default: the server's default_model; another is a 404)."))
    messages: list[ChatMessage] | None = Field(default=None, min_length=1, description=(
        "Chat messages to plan from, rendered by the model's chat template (give this or `prompt`)."))
    prompt: str | None = Field(default=None, min_length=1, description=(
        "Raw prompt text to plan from (give this or `messages`)."))
    return_tree: bool = Field(default=False, description="Also return the candidate tree.")

    @model_validator(mode="after")
    def _one_input(self) -> PlanInput:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of 'messages' or 'prompt'")
        return self


_BudgetBase = create_model("BudgetModel", __config__=ConfigDict(extra="forbid"), __doc__="Limits of one plan.",
                           **_knobs(Budget))
_RequestBase = create_model(
    "PlanRequest", __base__=PlanInput, __doc__="What to plan: a prompt or messages, an algorithm and its budget.",
    budget=(_BudgetBase, Field(default_factory=_BudgetBase)), **_knobs(PlanConfig),
)

if TYPE_CHECKING:  # the fields come from PlanConfig at run time; code reads them through config()
    BudgetModel = BaseModel
    PlanRequest = PlanInput
else:
    BudgetModel = _BudgetBase
    PlanRequest = _RequestBase


class ActionModel(BaseModel):
    kind: str
    content: str
    name: str | None = None
    arguments: Any = None


class ProblemModel(BaseModel):
    kind: str
    detail: str


class ProblemSummary(BaseModel):
    kind: str
    detail: str = Field(description="The first candidate's detail of this kind.")
    candidates: int = Field(description="How many candidates had a problem of this kind.")


class CandidateModel(BaseModel):
    id: int
    parent: int | None
    depth: int
    text: str
    complete: bool
    continued: bool = Field(default=True, description=(
        "False for a world-model span the algorithm judged and did not take on to its action (it was not "
        "chosen): no action is missing from it."))
    raw_confidence: float | None
    calibrated_confidence: float | None
    value: float | None
    tokens: int
    action: ActionModel | None
    problems: list[ProblemModel]
    vote: str | None = Field(default=None, description=(
        "self_consistency: the action this turn votes for, normalised (`kind:…`); turns with the same vote "
        "chose the same action."))


class VoteModel(BaseModel):
    """One action of a self_consistency tally."""

    key: str = Field(description="The action, normalised (`tool_call:NAME:ARGS`, `search:QUERY`, `answer:TEXT`).")
    candidates: list[int] = Field(description="The ids of the turns that chose it.")
    weight: float = Field(description=(
        "Their calibrated confidences summed (where no turn claims any chance: their count)."))
    share: float = Field(description="Its weight over all votes' weight.")


class ConfidenceModel(BaseModel):
    raw: float | None
    calibrated: float | None


class PromptTokensDetails(BaseModel):
    cached_tokens: int = Field(default=0, description="Prompt tokens the engine's prefix cache served.")
    continuation_prompt_tokens: int = Field(default=0, description=(
        "Prompt tokens of the calls that continue a generated span (a committed world model, an imagined "
        "observation): they re-send that span."))
    continuation_cached_tokens: int = Field(default=0, description="Of those, served by the prefix cache.")


class PlanUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    candidates: int
    depth: int
    engine_calls: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)


class TreeNode(BaseModel):
    id: int
    raw_confidence: float | None
    calibrated_confidence: float | None
    value: float | None
    action: ActionModel | None
    continued: bool = True
    children: list[TreeNode] = []


class PlanResponse(BaseModel):
    plan_id: str
    object: Literal["plan"] = "plan"
    created: int
    model: str
    algorithm: Algorithm
    domain: str
    decision: Literal["commit", "budget_exhausted", "no_confidence"] = Field(description=(
        "commit: the chosen plan met the algorithm's rule; budget_exhausted: the budget ended first and the "
        "best found is returned; no_confidence: a round in which no candidate stated a confidence ended the "
        "plan (the model does not write the foresight format; `problems` says what it wrote instead)."))
    problems: list[ProblemSummary] = Field(default_factory=list, description=(
        "The format problems of the candidates judged, one per kind, with how many candidates had it."))
    action: ActionModel | None
    text: str | None
    rollout: str | None
    confidence: ConfidenceModel
    candidates: list[CandidateModel]
    usage: PlanUsage
    latency_s: float
    tree: list[TreeNode] | None = None
    votes: list[VoteModel] | None = Field(default=None, description=(
        "self_consistency: the tally over the turns' actions, the leading action first (null for the other "
        "algorithms)."))
    message: AssistantMessage | None = Field(default=None, description=(
        "With `tools`: the chosen action as an OpenAI assistant message (`tool_calls`, or `content`), "
        "ready to append to the chat history."))
    finish_reason: str | None = Field(default=None, description="With `tools`: as a chat choice's.")
    foresight: ForesightInfo | None = Field(default=None, description=(
        "With `tools`: the chosen turn's foresight, and why a call was not passed on."))
