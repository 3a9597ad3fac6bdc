"""its_hub 1.2.0's adaptive and Beta self-consistency, which its library has and its gateway does not, behind a
small chat endpoint for bench/peers.py. Runs in its_hub's own environment (.venv-peer-its-hub): nothing of ours.

    .venv-peer-its-hub/bin/python bench/peer_plugins/its_hub_library.py --port P
    POST /configure {"endpoint": ".../v1", "model": M, "pattern": REGEX, "keys": {"adaptive": K1, "beta": K2}}
    POST /v1/chat/completions {"messages": [...], "budget": 8, "alg": "adaptive" | "beta"}

``AdaptiveSelfConsistency(threshold=0.75)``: 2 samples, doubling, until 75% agree; ``BetaSelfConsistency(
confidence_threshold=0.95)``: all calls at once, cancelled once the Beta posterior says the leader stays the
leader with 95%. Both vote on the regex's first group (the action), as the gateway's self-consistency does;
their defaults are the library's. The answer is the chosen candidate's message, as the gateway returns it.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from its_hub import AdaptiveSelfConsistency, BetaSelfConsistency
from its_hub.core.algorithms.self_consistency import create_regex_projection_function
from its_hub.core.lms.openai_lm import OpenAICompatibleLanguageModel

app = FastAPI()
state: dict[str, Any] = {}


@app.post("/configure")
async def configure(body: dict[str, Any]) -> dict[str, str]:
    project = create_regex_projection_function([body["pattern"]])
    state["algs"] = {"adaptive": AdaptiveSelfConsistency(consistency_space_projection_func=project),
                     "beta": BetaSelfConsistency(consistency_space_projection_func=project)}
    state["lms"] = {alg: OpenAICompatibleLanguageModel(endpoint=body["endpoint"], api_key=key,
                                                       model_name=body["model"])
                    for alg, key in body["keys"].items()}
    return {"status": "configured"}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/chat/completions")
async def chat(body: dict[str, Any]) -> dict[str, Any]:
    alg = body.get("alg")
    if "algs" not in state or alg not in state["algs"] or alg not in state["lms"]:
        raise HTTPException(400, f"not configured for alg {alg!r}")
    message = await state["algs"][alg].ainfer(state["lms"][alg], body["messages"], int(body.get("budget", 8)))
    return {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=ap.parse_args().port, log_level="warning")
