"""``POST /v1/plan`` request and response models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.protocol.openai import SEED_MAX, SEED_MIN, ChatMessage

AlgorithmName = Literal["greedy", "best_of_n", "branch_commit", "lookahead"]


class BudgetModel(BaseModel):
    """Limits of one plan."""

    model_config = ConfigDict(extra="forbid")
    max_tokens: int = Field(default=4096, ge=1, description="Generated tokens, all candidates together.")
    max_candidates: int = Field(default=16, ge=1, description="Sampled candidates, all levels together.")
    max_depth: int = Field(default=2, ge=1, description="Levels of lookahead (1 = no lookahead).")
    deadline_s: float = Field(default=60.0, gt=0, description="Wall-clock budget in seconds.")


class PlanRequest(BaseModel):
    """What to plan: a prompt or messages, an algorithm and its budget."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] | None = Field(default=None, min_length=1)
    prompt: str | None = Field(default=None, min_length=1)
    algorithm: AlgorithmName = "branch_commit"
    budget: BudgetModel = Field(default_factory=BudgetModel)
    commit_threshold: float = Field(default=0.8, ge=0, le=1)
    margin: float = Field(default=0.0, ge=0, le=1)
    width: int = Field(default=4, ge=1, description="K: samples per proposal round; N of best_of_n.")
    branch: int = Field(default=2, ge=1, description="b: candidates lookahead deepens per level.")
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX, description=(
        "Makes the plan reproducible: its samples take the seeds seed, seed+1, … in order, none twice."))
    max_tokens_per_turn: int = Field(default=256, ge=1)
    domain: str = Field(default="default", min_length=1, max_length=128)
    return_tree: bool = False
    lookahead_context: Literal["history", "observation"] = "history"
    discount: float = Field(default=1.0, ge=0, le=1, description=(
        "lookahead: an imagined future's value is multiplied by this before it competes with its parent's "
        "own confidence (1: no discount; e.g. the chance that an action takes effect as imagined)."))
    root_rounds: int = Field(default=1, ge=1, description=(
        "lookahead: rounds of `width` first-level turns drawn while the best of them is below "
        "commit_threshold (1: one round); within budget.max_candidates."))

    @model_validator(mode="after")
    def _one_input(self) -> PlanRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of 'messages' or 'prompt'")
        return self


class ActionModel(BaseModel):
    kind: str
    content: str
    name: str | None = None
    arguments: Any = None


class ProblemModel(BaseModel):
    kind: str
    detail: str


class CandidateModel(BaseModel):
    id: int
    parent: int | None
    depth: int
    text: str
    complete: bool
    raw_confidence: float | None
    calibrated_confidence: float | None
    value: float | None
    tokens: int
    action: ActionModel | None
    problems: list[ProblemModel]


class ConfidenceModel(BaseModel):
    raw: float | None
    calibrated: float | None


class PlanUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    candidates: int
    depth: int
    engine_calls: int


class TreeNode(BaseModel):
    id: int
    raw_confidence: float | None
    calibrated_confidence: float | None
    value: float | None
    action: ActionModel | None
    children: list[TreeNode] = []


class PlanResponse(BaseModel):
    plan_id: str
    object: Literal["plan"] = "plan"
    created: int
    model: str
    algorithm: AlgorithmName
    domain: str
    decision: Literal["commit", "budget_exhausted"]
    action: ActionModel | None
    text: str | None
    rollout: str | None
    confidence: ConfidenceModel
    candidates: list[CandidateModel]
    usage: PlanUsage
    latency_s: float
    tree: list[TreeNode] | None = None
