"""The typed sync client against the real server and the reference model: an Episode plays NumberReach."""

from __future__ import annotations

import random

import pytest

from foresight_client import Episode, Foresight, Outcome
from protocol.plan import PlanResponse
from reference import data
from reference import numberreach as env
from tests.integration.server_process import ServerProcess

pytestmark = pytest.mark.integration
DOMAIN = "client-episode"


def test_an_episode_plays_numberreach_through_the_client(server: ServerProcess) -> None:
    state = env.State(5, 40, 6)
    rng = random.Random(0)

    def act(plan: PlanResponse) -> Outcome:
        nonlocal state
        assert plan.action is not None
        op = data.op_of_action(plan.action.arguments)
        assert op in env.OPS
        state = env.step(state, op, rng).state
        return Outcome(success=state.x == state.t, observation=data.prompt_for(state))

    with Foresight(server.url) as fs:
        episode = Episode(fs, act, params={"algorithm": "greedy", "domain": DOMAIN, "seed": 1})
        while not state.done and len(episode.steps) < 6:
            episode.step(data.prompt_for(state))
        assert episode.steps and all(s.receipt.domain == DOMAIN for s in episode.steps)
        assert all(s.receipt.fidelity is not None for s in episode.steps)  # each observation was scored
        cal = fs.calibration(DOMAIN)
        assert cal.domains[0].outcomes == len(episode.steps)
