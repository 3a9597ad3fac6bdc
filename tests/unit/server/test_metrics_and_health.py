"""Health, readiness and the request metrics."""

from __future__ import annotations

import httpx

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
