"""How far a quantized model's next-token distributions move from the original's (torch, no llmcompressor).

KL(original ‖ quantized) in nats, averaged over the completion tokens of held-out traces (the
positions whose prediction is the model's own output, not the prompt), how often the two
models' most likely next tokens agree, and each model's perplexity on those tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def logit_divergence(original: Any, quantized: Any, encoded: Sequence[tuple[list[int], int]]) -> dict[str, float]:
    """``encoded``: (token ids, index where the completion starts) per trace."""
    import torch


    total, worst, agree, count = 0.0, 0.0, 0, 0
    nll_p = nll_q = 0.0
    with torch.no_grad():
        for ids, start in encoded:
            if len(ids) < 2 or start >= len(ids):  # nothing of the completion left within max_seq_length
                continue
            x = torch.tensor([ids])
            lo = max(start - 1, 0)  # logits at position i predict token i+1
            p = torch.log_softmax(original(x).logits[0, lo:-1].float(), dim=-1)
            q = torch.log_softmax(quantized(x).logits[0, lo:-1].float(), dim=-1)
            kl = (p.exp() * (p - q)).sum(-1).clamp_min(0.0)
            total += float(kl.sum())
            worst = max(worst, float(kl.max()))
            agree += int((p.argmax(-1) == q.argmax(-1)).sum())
            count += kl.numel()
            target = torch.tensor(ids[lo + 1:]).unsqueeze(-1)
            nll_p -= float(p.gather(-1, target).sum())
            nll_q -= float(q.gather(-1, target).sum())
    if not count:
        nan = float("nan")
        return {"kl_mean": nan, "kl_max": nan, "top1_agreement": nan, "kl_tokens": 0.0, "perplexity_original": nan,
                "perplexity_quantized": nan}
    n = count
    return {"kl_mean": total / n, "kl_max": worst, "top1_agreement": agree / n, "kl_tokens": float(count),
            "perplexity_original": math.exp(nll_p / n), "perplexity_quantized": math.exp(nll_q / n)}


def combine(sets: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The figures of several held-out sets together, weighted by their tokens (sets with none left out)."""
    sets = [s for s in sets if s["kl_tokens"]]
    n = sum(s["kl_tokens"] for s in sets) or 1.0

    def mean(key: str) -> float:
        return sum(s[key] * s["kl_tokens"] for s in sets) / n

    return {"kl_mean": mean("kl_mean"), "kl_max": max((s["kl_max"] for s in sets), default=0.0),
            "top1_agreement": mean("top1_agreement"), "kl_tokens": float(sum(s["kl_tokens"] for s in sets)),
            "perplexity_original": math.exp(sum(math.log(s["perplexity_original"]) * s["kl_tokens"] for s in sets) / n),
            "perplexity_quantized": math.exp(sum(math.log(s["perplexity_quantized"]) * s["kl_tokens"]
                                                 for s in sets) / n)}
