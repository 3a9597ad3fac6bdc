"""``Episode``: plan → act (the app's callable) → report what happened, one decision at a time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from foresight_client.aio import AsyncForesight
from foresight_client.sync import Foresight
from protocol.outcomes import OutcomeResponse
from protocol.plan import PlanResponse


@dataclass(frozen=True)
class Outcome:
    """What the app saw after acting on a plan: success, and the real observation (scored against the
    plan's imagined rollout)."""

    success: bool
    observation: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Step:
    """One decision of an episode: the plan, what acting on it gave, and the server's receipt."""

    plan: PlanResponse
    outcome: Outcome
    receipt: OutcomeResponse


@dataclass
class Episode:
    """Plans with ``params`` (algorithm, domain, budget, …), lets ``act`` carry out each chosen action,
    and reports every outcome, so the server's calibration learns from this app's world."""

    client: Foresight
    act: Callable[[PlanResponse], Outcome]
    params: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    def step(self, prompt: str | None = None, *, messages: list[dict[str, Any]] | None = None) -> Step:
        plan = self.client.plan(prompt, messages=messages, **self.params)
        outcome = self.act(plan)
        receipt = self.client.report_outcome(plan.plan_id, outcome.success, observation=outcome.observation,
                                             metadata=outcome.metadata)
        self.steps.append(Step(plan, outcome, receipt))
        return self.steps[-1]


@dataclass
class AsyncEpisode:
    """:class:`Episode` for :class:`AsyncForesight`; ``act`` may be a coroutine function."""

    client: AsyncForesight
    act: Callable[[PlanResponse], Outcome | Awaitable[Outcome]]
    params: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    async def step(self, prompt: str | None = None, *, messages: list[dict[str, Any]] | None = None) -> Step:
        plan = await self.client.plan(prompt, messages=messages, **self.params)
        acted = self.act(plan)
        outcome = await acted if isinstance(acted, Awaitable) else acted
        receipt = await self.client.report_outcome(plan.plan_id, outcome.success, observation=outcome.observation,
                                                   metadata=outcome.metadata)
        self.steps.append(Step(plan, outcome, receipt))
        return self.steps[-1]
