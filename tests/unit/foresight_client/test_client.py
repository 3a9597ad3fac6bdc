"""The typed client against the app in-process (scripted engine): plans, outcomes, calibration, typed errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from engine.scripted import ScriptedEngine
from foresight_client import (
    APIConnectionError,
    AsyncEpisode,
    AsyncForesight,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    Outcome,
)
from foresight_client.errors import RateLimitError, ServiceUnavailableError, status_error
from protocol.plan import PlanResponse
from tests.unit.server.conftest import running_app
from tests.unit.server.routes.test_plan_route import foresight_script
from tests.unit.server.test_auth import make_key


@asynccontextmanager
async def foresight(api_key: str | None = None, **kw: object) -> AsyncIterator[AsyncForesight]:
    async with running_app(ScriptedEngine(foresight_script, max_model_len=2048), **kw) as app_client:
        transport = httpx.ASGITransport(app=app_client.app)  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield AsyncForesight("http://test", api_key, http_client=http)


async def test_plan_report_and_read_calibration() -> None:
    async with foresight() as fs:
        plan = await fs.plan("obs", algorithm="best_of_n", width=3, domain="billing", budget={"max_candidates": 3})
        assert isinstance(plan, PlanResponse) and plan.domain == "billing" and plan.usage.candidates == 3
        receipt = await fs.report_outcome(plan.plan_id, True, observation="it worked")
        assert receipt.plan_id == plan.plan_id and receipt.domain == "billing" and receipt.success
        with pytest.raises(ConflictError) as again:
            await fs.report_outcome(plan.plan_id, False)
        assert again.value.status_code == 409 and again.value.code == "outcome_exists"
        with pytest.raises(NotFoundError):
            await fs.report_outcome("plan-unknown", True)
        cal = await fs.calibration("billing")
        assert [d.domain for d in cal.domains] == ["billing"] and cal.domains[0].outcomes == 1


async def test_bad_parameters_are_refused_before_sending_and_by_the_server() -> None:
    async with foresight(max_n=4) as fs:
        with pytest.raises(BadRequestError) as local:
            await fs.plan("obs", commit_threshold=1.5)
        assert local.value.param == "commit_threshold"
        with pytest.raises(BadRequestError) as remote:  # valid JSON, above this server's limit
            await fs.plan("obs", width=8)
        assert remote.value.param == "width" and remote.value.code == "budget_too_large"


async def test_the_key_is_sent_and_a_missing_one_is_an_authentication_error(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    key = await make_key(store, "app")
    async with foresight(store_path=str(store), auth_enabled=True) as fs:
        with pytest.raises(AuthenticationError) as err:
            await fs.plan("obs")
        assert err.value.status_code == 401 and "API key" in err.value.message
    async with foresight(key, store_path=str(store), auth_enabled=True) as fs:
        assert (await fs.plan("obs", algorithm="greedy")).decision in ("commit", "budget_exhausted")


async def test_an_episode_plans_acts_and_reports() -> None:
    acted: list[str] = []

    async def act(plan: PlanResponse) -> Outcome:
        assert plan.action is not None
        acted.append(plan.action.content)
        return Outcome(success=plan.action.content == "a1", observation="next")

    async with foresight() as fs:
        episode = AsyncEpisode(fs, act, params={"algorithm": "best_of_n", "width": 3, "domain": "ep"})
        step = await episode.step("obs")
        assert acted == ["a1"]  # the most confident of the three scripted candidates (90%)
        assert step.receipt.success and step.receipt.domain == "ep" and episode.steps == [step]


async def test_an_unreachable_server_is_a_connection_error() -> None:
    async with AsyncForesight("http://127.0.0.1:9", timeout=2) as fs:
        with pytest.raises(APIConnectionError, match="cannot reach"):
            await fs.calibration()


def test_error_bodies_become_typed_exceptions() -> None:
    err = status_error(429, {"error": {"message": "slow down", "type": "rate_limit_error", "code": "queue_full"}},
                       {"retry-after": "3"})
    assert isinstance(err, RateLimitError) and err.retry_after == 3.0 and err.code == "queue_full"
    html = status_error(503, "<html>bad gateway</html>")
    assert isinstance(html, ServiceUnavailableError) and "503" in html.message
