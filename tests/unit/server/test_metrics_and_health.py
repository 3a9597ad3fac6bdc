"""Health, readiness and the request metrics."""

from __future__ import annotations

import httpx

from server.app import services_of

CHAT = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}


async def test_ready_when_loaded(client: httpx.AsyncClient) -> None:
    r = await client.get("/ready")
    assert r.status_code == 200 and r.json()["ready"] is True


async def test_metrics_count_requests_by_route_and_status(client: httpx.AsyncClient) -> None:
    await client.post("/v1/chat/completions", json=CHAT)
    await client.post("/v1/chat/completions", json={**CHAT, "n": 0})
    text = (await client.get("/metrics")).text
    assert 'foresight_requests_total{route="/v1/chat/completions",status="200"} 1.0' in text
    assert 'foresight_requests_total{route="/v1/chat/completions",status="400"} 1.0' in text
    assert 'foresight_request_latency_seconds_count{route="/v1/chat/completions"} 2.0' in text
    assert "foresight_time_to_first_token_seconds_count 1.0" in text


async def test_draining_turns_ready_and_new_work_to_503(client: httpx.AsyncClient) -> None:
    from server.lifecycle import Phase

    services_of(client.app).lifecycle.set(Phase.DRAINING)  # type: ignore[attr-defined]
    assert (await client.get("/ready")).status_code == 503
    r = await client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503 and r.json()["error"]["code"] == "draining"
    assert (await client.get("/health")).status_code == 200


def test_default_chat_template_renders_roles_and_generation_prompt() -> None:
    import jinja2

    from engine.templates import DEFAULT_CHAT_TEMPLATE

    text = jinja2.Template(DEFAULT_CHAT_TEMPLATE).render(
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        add_generation_prompt=True,
    )
    assert text == "<|system|>\nbe brief\n<|user|>\nhi\n<|assistant|>\n"
