"""Train the reference foresight model: three stages scaled down from the paper.

1. world-model mid-training: predict the trajectory of random plans;
2. format-eliciting SFT: whole turns (rollout, confidence, think, action);
3. calibration: whole turns again, with the judgement's loss up-weighted (the confidence; the search
   world's analysis too: :attr:`reference.worlds.WorldSpec.judgement_tag`) so the verbalized
   probability matches the simulator's exact one.

Budgeted in optimizer steps, not minutes (this machine's speed drifts). The
result is saved in Hugging Face format; ``foresight reference train`` then runs
the acceptance evaluation on the real engine and fails loudly if it misses.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

from reference.tokenizer import EOS, build_tokenizer, save_hf_tokenizer
from reference.worlds import WORLDS, WorldSpec, world_spec


@dataclass(frozen=True)
class ModelShape:
    """The tiny Llama's dimensions."""

    hidden_size: int = 192
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 6
    num_key_value_heads: int = 6
    max_position_embeddings: int = 256


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained checkpoint."""

    seed: int = 0
    stage_steps: tuple[int, int, int] = (400, 4000, 600)
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 50
    confidence_weight: float = 4.0
    vocab_size: int = 384
    identity_scale: float = 2.0  # > 0: fixed random input codes for numbers (untied embeddings)
    threads: int = 2
    # whose operations train the policy in stage-2/3 turns: "all" plans of the prior, or only the
    # "shortest" hitting ones (the other plans' operations carry no loss; their rollouts, analyses
    # and confidences still train the world model and the judgement)
    policy_plans: Literal["all", "shortest"] = "shortest"
    shape: ModelShape = field(default_factory=ModelShape)
    world: str = "numberreach"  # reference.worlds.WORLDS


POLICY_PLANS = ("all", "shortest")


def _encode(tok, ex: Any, conf_weight: float, policy_mask: bool = False,
            spec: WorldSpec | None = None, policy_weight: float = 1.0) -> tuple[list[int], list[float]]:
    """Token ids and per-token loss weights; ``policy_mask`` zeroes the weights of the plan's choices
    written in the imaginary span (NumberReach: its operations; search: its query), keeping what the
    world model predicts and everything else; otherwise ``policy_weight`` weighs those choices.
    ``conf_weight`` weighs the judgement: from the world's ``judgement_tag`` to ``</confidence>``."""
    prompt = tok.encode(ex.prompt).ids  # with BOS
    comp_enc = tok.encode(ex.completion, add_special_tokens=False)
    comp = [*comp_enc.ids, tok.token_to_id(EOS)]
    weights = [0.0] * len(prompt) + [1.0] * len(comp)
    spans: list[tuple[tuple[int, int], float]] = []
    spec = spec or world_spec("numberreach")
    if conf_weight != 1.0:
        start = ex.completion.find(spec.judgement_tag)
        end = ex.completion.find("</confidence>") + len("</confidence>")
        if start < 0 or end < start:
            raise ValueError(f"a weighted turn has no {spec.judgement_tag}…</confidence> span: {ex.completion[:80]!r}")
        spans.append(((start, end), conf_weight))
    for i, (s, _e) in enumerate(comp_enc.offsets):
        for (lo, hi), w in spans:
            if lo <= s < hi:
                weights[len(prompt) + i] = max(weights[len(prompt) + i], w)
    if policy_mask:
        for i in spec.policy_tokens(tok, ex, comp_enc):
            weights[len(prompt) + i] = 0.0
    elif policy_weight != 1.0:
        for i in spec.policy_tokens(tok, ex, comp_enc):
            weights[len(prompt) + i] = max(weights[len(prompt) + i], policy_weight)
    return prompt + comp, weights


def _batch(rows: list[tuple[list[int], list[float]]], pad: int) -> tuple[torch.Tensor, ...]:
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    w = torch.zeros((len(rows), width))
    for i, (r, wt) in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        w[i, : len(wt)] = torch.tensor(wt)
    return ids, w


def _bucketed(rows: list[tuple[list[int], list[float]]], batch: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (less padding), in random order."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    mega = batch * 16
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: len(rows[i][0]))
        batches.extend(chunk[j : j + batch] for j in range(0, len(chunk), batch))
    rng.shuffle(batches)
    return batches


def _identity_codes(tok: Any, hidden: int, cfg: TrainConfig, groups: tuple[tuple[str, ...], ...]) -> torch.Tensor:
    """Fixed random input codes for number tokens (search: entity names), added to their learned embeddings.

    Learned number embeddings come out smooth (30 looks like 31), which makes "is this
    value the target?" hard; a fixed random code per number keeps every number
    distinguishable, so a duplicate-token attention head can answer it.
    """
    codes = torch.zeros(tok.get_vocab_size(), hidden)
    gen = torch.Generator().manual_seed(cfg.seed + 12345)
    drawn = torch.randn(len(groups), hidden, generator=gen) * cfg.identity_scale
    for code, group in zip(drawn, groups, strict=True):
        codes[[tok.token_to_id(t) for t in group]] = code
    return codes


def _lr(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, total - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(cfg: TrainConfig, out: Path, log_path: Path | None = None, device: str = "cpu") -> Path:
    """Train from scratch and save a Hugging Face checkpoint in ``out`` (on ``device``; the shipped
    checkpoint is trained on the CPU)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if cfg.world not in WORLDS:
        raise ValueError(f"world must be one of {', '.join(WORLDS)}, not {cfg.world!r}")
    spec = world_spec(cfg.world)
    if cfg.policy_plans not in POLICY_PLANS:
        raise ValueError(f"policy_plans must be one of {', '.join(POLICY_PLANS)}, not {cfg.policy_plans!r}")
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    log_path = log_path or out / "train_log.jsonl"

    corpus = spec.stage_examples(2, 4000, cfg.seed + 99)
    tok = build_tokenizer((e.prompt + e.completion for e in corpus), cfg.vocab_size, spec.whole_tokens)
    s = cfg.shape
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=s.hidden_size,
        intermediate_size=s.intermediate_size,
        num_hidden_layers=s.num_hidden_layers,
        num_attention_heads=s.num_attention_heads,
        num_key_value_heads=s.num_key_value_heads,
        max_position_embeddings=s.max_position_embeddings,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tok.token_to_id("<s>"),
        eos_token_id=tok.token_to_id("</s>"),
        pad_token_id=tok.token_to_id("<pad>"),
    )
    model = LlamaForCausalLM(config)
    model.to(device)  # type: ignore[arg-type]  # transformers types .to oddly
    identity = _identity_codes(tok, s.hidden_size, cfg, spec.identity_groups).to(device)
    hook = model.model.embed_tokens.register_forward_hook(
        lambda _m, inp, out: out + torch.nn.functional.embedding(inp[0], identity)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.01)
    total = sum(cfg.stage_steps)
    pad = tok.token_to_id("<pad>") or 0
    step = 0
    started = time.monotonic()
    with log_path.open("w") as log, tqdm(total=total, desc="train", file=sys.stderr) as bar:
        log.write(json.dumps({"event": "config", **asdict(cfg), "params": model.num_parameters()}) + "\n")
        for stage, n_steps in enumerate(cfg.stage_steps, start=1):
            examples = spec.stage_examples(stage, n_steps * cfg.batch_size, cfg.seed)
            weight = cfg.confidence_weight if stage == 3 else 1.0
            masked = stage > 1 and cfg.policy_plans == "shortest"
            rows = [_encode(tok, e, weight, masked and not spec.unmasked_policy(e), spec,
                            spec.policy_weight if stage > 1 and spec.unmasked_policy(e) else 1.0)
                    for e in examples]
            batches = _bucketed(rows, cfg.batch_size, random.Random(cfg.seed * 31 + stage))
            model.train()
            for i in range(n_steps):
                ids, w = (t.to(device) for t in _batch([rows[j] for j in batches[i]], pad))
                logits = model(input_ids=ids).logits[:, :-1]
                target, tw = ids[:, 1:], w[:, 1:]
                nll = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="none"
                )
                loss = (nll * tw.reshape(-1)).sum() / tw.sum()
                for group in opt.param_groups:
                    group["lr"] = _lr(step, total, cfg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                step += 1
                bar.set_postfix(stage=stage, loss=f"{loss.item():.4f}")
                bar.update(1)
                if step % 10 == 0 or i == n_steps - 1:
                    rec = {"step": step, "stage": stage, "loss": round(loss.item(), 5),
                           "lr": _lr(step, total, cfg), "elapsed_s": round(time.monotonic() - started, 1)}
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
    hook.remove()
    if cfg.identity_scale > 0:  # fold the fixed codes into the input embedding only: a plain, untied Llama
        with torch.no_grad():
            model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.detach().clone())
            model.config.tie_word_embeddings = False
            model.model.embed_tokens.weight = torch.nn.Parameter(model.model.embed_tokens.weight + identity)
    model.to("cpu")  # type: ignore[arg-type]
    model.save_pretrained(str(out), safe_serialization=True)
    save_hf_tokenizer(tok, out, s.max_position_embeddings, spec.chat_template)
    (out / "training.json").write_text(json.dumps({"config": asdict(cfg), "steps": step,
                                                    "seconds": round(time.monotonic() - started, 1)}, indent=2))
    return out
