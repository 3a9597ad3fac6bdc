"""Structured access logs: request id, route, status, latency, tokens — and no prompt text."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from server.logs import JsonFormatter


async def test_access_record_has_ids_and_tokens_but_no_text(client: httpx.AsyncClient,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="foresight.access")
    secret = "my-secret-prompt-text"
    r = await client.post("/v1/completions", json={"model": "scripted", "prompt": secret, "max_tokens": 4},
                          headers={"x-request-id": "req-42", "authorization": "Bearer sk-hidden"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
    [rec] = [x for x in caplog.records if x.name == "foresight.access"]
    line = json.loads(JsonFormatter().format(rec))
    assert line["request_id"] == "req-42" and line["route"] == "/v1/completions" and line["status"] == 200
    assert line["completion_tokens"] == 4 and line["prompt_tokens"] > 0 and line["latency_s"] >= 0
    assert secret not in json.dumps(line) and "sk-hidden" not in json.dumps(line)
    other = await client.get("/v1/models")
    assert len(other.headers["x-request-id"]) == 32  # generated when the client sends none
