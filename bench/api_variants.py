"""One chat load three ways on our server: plain ``/v1/chat/completions``, the same with ``tools`` declared,
and ``/v1/responses`` — what declaring tools and the Responses API cost, side by side in one run.

Each request is one held-out NumberReach observation, answered with a fixed number of tokens
(``ignore_eos``, a vLLM extension both routes take; the report checks the output token counts too). The
variants run in rounds of alternating order so that the machine's drift falls on each alike;
the prompt token ids are the same in every variant (the reference model's template renders no tools
block), which the report checks from the servers' usage figures. Used by ``bench/serve_overhead.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from reference import numberreach as env

REPO = Path(__file__).resolve().parents[1]
QWEN_TEMPLATE = REPO / "docs" / "templates" / "qwen2.5-foresight.jinja"
APPLY = {"type": "function", "function": {"name": "apply", "description": "Apply one operation to x.",
                                          "parameters": {"type": "object", "properties": {
                                              "op": {"type": "string", "enum": list(env.OPS)}},
                                              "required": ["op"]}}}
ROUNDS = 3


def _observations(n: int) -> list[str]:
    starts = env.start_states(heldout=True)
    return [f"x={s.x} target={s.t} steps={s.n}" for s in (starts * (n // len(starts) + 1))[:n]]


def _body(variant: str, model: str, obs: str, tokens: int) -> tuple[str, dict[str, Any]]:
    if variant == "responses":
        return "/v1/responses", {"model": model, "input": obs, "max_output_tokens": tokens, "temperature": 0,
                                 "ignore_eos": True}
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": obs}], "max_tokens": tokens,
                            "temperature": 0, "ignore_eos": True}
    if variant == "tools":
        body["tools"] = [APPLY]
    return "/v1/chat/completions", body


def _usage(variant: str, answer: dict[str, Any]) -> tuple[int, int, int]:
    """Prompt, completion and cached prompt tokens of one answer."""
    u = answer["usage"]
    if variant == "responses":
        return int(u["input_tokens"]), int(u["output_tokens"]), int(u["input_tokens_details"]["cached_tokens"])
    return int(u["prompt_tokens"]), int(u["completion_tokens"]), int(u["prompt_tokens_details"]["cached_tokens"])


async def _load(url: str, variant: str, model: str, observations: list[str], concurrency: int,
                tokens: int) -> dict[str, Any]:
    queue = list(enumerate(observations))
    latencies: list[float] = []
    prompts: dict[int, int] = {}
    completion = cached = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal completion, cached
        while queue:
            i, obs = queue.pop()
            path, body = _body(variant, model, obs, tokens)
            t0 = time.perf_counter()
            r = await client.post(path, json=body)
            latencies.append(time.perf_counter() - t0)
            r.raise_for_status()
            prompt, out, hit = _usage(variant, r.json())
            prompts[i] = prompt
            completion += out
            cached += hit

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"requests": len(observations), "wall_s": wall, "latencies": latencies,
            "prompt_tokens": [prompts[i] for i in sorted(prompts)], "completion_tokens": completion,
            "cached_tokens": cached}


def tools_block_cost() -> dict[str, int]:
    """Prompt tokens of one observation with and without the tools block, on the Qwen2.5-style template
    (rendered with the reference model's tokenizer)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(REPO / "models" / "foresight-numberreach"))
    messages = [{"role": "user", "content": _observations(1)[0]}]
    template = QWEN_TEMPLATE.read_text()

    def count(tools: list[dict[str, Any]] | None) -> int:
        text = tok.apply_chat_template(messages, tools=tools, chat_template=template, tokenize=False,
                                       add_generation_prompt=True)
        return len(tok.encode(text, add_special_tokens=False))

    return {"without_tools": count(None), "with_one_tool": count([APPLY])}


def run(url: str, model: str, num_prompts: int, concurrency: int, tokens: int) -> dict[str, Any]:
    """The three variants, ``ROUNDS`` rounds in alternating order, on the server at ``url``."""
    observations = _observations(num_prompts)
    variants = ["chat", "tools", "responses"]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for k in range(ROUNDS):
        for v in variants if k % 2 == 0 else list(reversed(variants)):
            runs[v].append(asyncio.run(_load(url, v, model, observations, concurrency, tokens)))
    out: dict[str, Any] = {}
    for v, rs in runs.items():
        lat = sorted(x for r in rs for x in r["latencies"])
        out[v] = {"requests_per_s": sum(r["requests"] for r in rs) / sum(r["wall_s"] for r in rs),
                  "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
                  "completion_tokens": sum(r["completion_tokens"] for r in rs),
                  "prompt_tokens": rs[0]["prompt_tokens"],
                  "cached_share": sum(r["cached_tokens"] for r in rs)
                  / max(1, sum(sum(r["prompt_tokens"]) for r in rs))}
    out["same_prompts"] = out["chat"]["prompt_tokens"] == out["tools"]["prompt_tokens"] == \
        out["responses"]["prompt_tokens"]
    out["tools_block"] = tools_block_cost()
    return out


def report(v: dict[str, Any]) -> None:
    print(f"\n{'variant (our server)':<22}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'out tokens':>12}"
          f"{'prompt':>8}{'cached':>8}{'ratio':>8}")
    base = v["chat"]["requests_per_s"]
    for name in ("chat", "tools", "responses"):
        r = v[name]
        mean_prompt = statistics.mean(r["prompt_tokens"])
        print(f"{name:<22}{r['requests_per_s']:>12.2f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
              f"{r['completion_tokens']:>12}{mean_prompt:>8.0f}{r['cached_share']:>8.2f}"
              f"{r['requests_per_s'] / base:>8.3f}")
    print(f"same prompt token counts in all three variants: {v['same_prompts']}")
    for name in ("tools", "responses"):
        ratio = v[name]["requests_per_s"] / base
        print(f"{name} / chat throughput {ratio:.3f} (target >= 0.97): {'PASS' if ratio >= 0.97 else 'MISS'}")
    tb = v["tools_block"]
    print(f"a tools block on the Qwen2.5-style template: {tb['with_one_tool'] - tb['without_tools']} prompt tokens "
          f"for one tool ({tb['without_tools']} -> {tb['with_one_tool']}, reference tokenizer)")
