"""What serving an adapter through vLLM's LoRA costs on this CPU, against the same function merged into the base.

Three engines on SmolLM2-135M-Instruct (bfloat16), one after another in one run: the base alone; the base with
LoRA enabled, every request naming the adapter (as ``foresight serve --adapter`` serves it); and the adapter
folded into the base's weights (``reference.lora.merge_adapter``: the same function, no LoRA at run time). Each
generates a fixed number of tokens (end of turn ignored, so all three do the same work) for NumberReach
prompts, one request at a time and ``--concurrency`` at once. Prints tokens per second and the ratios.

    .venv/bin/python bench/lora_cost.py              # ~6 min here
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine import GenerationRequest, open_engine  # noqa: E402
from engine.base import Engine  # noqa: E402
from engine.on_adapter import on_adapter  # noqa: E402
from reference import data  # noqa: E402
from reference.evaluate import chat_prompt  # noqa: E402


async def tokens_per_second(engine: Engine, prompts: list[str], concurrency: int, tokens: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    made = 0

    async def one(text: str) -> None:
        nonlocal made
        req = GenerationRequest(chat_prompt(engine, text), max_tokens=tokens, temperature=0.0, ignore_eos=True)
        async with sem:
            async for chunk in engine.generate(req, f"lora-cost-{uuid.uuid4().hex}"):
                made += sum(d.num_tokens for d in chunk.deltas)

    began = time.perf_counter()
    await asyncio.gather(*(one(p) for p in prompts))
    return made / (time.perf_counter() - began)


async def measure(model: Path, adapter: Path | None, prompts: list[str], levels: list[int],
                  tokens: int) -> dict[int, float]:
    options = {"adapters": (("adapter", str(adapter)),), "max_lora_rank": 16} if adapter else {}
    async with open_engine(model, dtype="bfloat16", log_stats=False, max_model_len=1024, **options) as engine:
        on = on_adapter(engine, "adapter" if adapter else None)
        await tokens_per_second(on, prompts[:2], 2, 8)  # warm-up
        return {c: await tokens_per_second(on, prompts[: max(c * 2, 4)], c, tokens) for c in levels}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, default=REPO / "models" / "smollm2-135m-instruct")
    p.add_argument("--adapter", type=Path, default=REPO / "models" / "smollm2-foresight-numberreach")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    p.add_argument("--tokens", type=int, default=96, help="tokens generated per request")
    a = p.parse_args()
    if not (a.base / "config.json").exists():
        sys.exit(f"lora_cost: no base at {a.base} (foresight models add smollm2-135m-instruct)")
    from reference import numberreach as env
    from reference.lora import merge_adapter

    rng = random.Random(0)
    prompts = [data.prompt_for(rng.choice(env.start_states(heldout=True))) for _ in range(2 * max(a.concurrency))]
    with tempfile.TemporaryDirectory(prefix="lora-cost-") as tmp:
        merged = merge_adapter(a.adapter, a.base, Path(tmp) / "merged")
        rows = {"base": asyncio.run(measure(a.base, None, prompts, a.concurrency, a.tokens)),
                "base + LoRA adapter": asyncio.run(measure(a.base, a.adapter, prompts, a.concurrency, a.tokens)),
                "adapter merged": asyncio.run(measure(merged, None, prompts, a.concurrency, a.tokens))}
    print(f"\n{a.tokens} tokens per request, bfloat16, vLLM on this machine; tokens/s (ratio to the base)")
    print("| engine | " + " | ".join(f"concurrency {c}" for c in a.concurrency) + " |")
    print("|---|" + "---|" * len(a.concurrency))
    for name, row in rows.items():
        cells = [f"{row[c]:.0f} ({row[c] / rows['base'][c]:.2f}×)" for c in a.concurrency]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
