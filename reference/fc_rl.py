"""FC-RL: foresight-conditioned reinforcement learning from outcomes, the recipe's third stage on an adapter.

Each step plays ``rl_states`` training starts through the real engine (vLLM serving the adapter as it is
now): ``rl_group`` turns per start. Each turn's plan — NumberReach: the operations its ``<imaginary>`` rollout
wrote; search: its query, then the answer its imagined chain ends in (:mod:`reference.rl_worlds`) — is then
carried out in the world, stalls and retrieval misses included, and the episode's outcome is the reward's
only source:

    reward = 1[success] − λ·(confidence − 1[success])²      (RLCR's, λ = 1 there; a turn without a usable plan: −1)

so a plan that works pays, and a stated confidence pays for being right about it (for any λ > 0 the best
confidence to state is the plan's chance: a proper scoring rule). λ = 0.5 here: with RLCR's λ = 1, a model
that says 0% everywhere gets 0 for a success and 0 for a failure — no reason left to plan better — and the
first run here fell into exactly that in two steps (mean stated confidence 0.29 → 0.09 → 0.00). The simulator's exact
probabilities are never seen here (they evaluate, in :mod:`reference.evaluate`). The baseline is the group's
leave-one-out mean (RLOO); one policy-gradient step per batch of fresh samples (on-policy: no ratio to clip).
A small torch loop, not TRL's GRPOTrainer: the samples come from our own engine with the adapter reloaded each
step, and the reward needs the environment, not a text scorer.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from planner.format import ACTION_STOPS, parse_turn
from reference.lora import AdapterConfig, batch_tensors, token_logprobs
from reference.rl_worlds import RLWorld, rl_world

MICRO_BATCH = 16


@dataclass(frozen=True)
class Scored:
    """One sampled turn and what its plan got."""

    prompt_ids: list[int]
    token_ids: list[int]
    reward: float
    success: bool
    confidence: float | None
    valid: bool


CALIBRATION_WEIGHT = 0.5  # λ of the reward (see the module's doc)


def reward(success: bool, confidence: float | None, usable: bool, weight: float = CALIBRATION_WEIGHT) -> float:
    """Success, less ``weight`` times the Brier penalty of the stated confidence; −1 for no usable plan."""
    if not usable or confidence is None:
        return -1.0
    s = 1.0 if success else 0.0
    return s - weight * (confidence - s) ** 2


def score(state: Any, text: str, rng: random.Random,
          world: RLWorld | None = None) -> tuple[float, bool, float | None, bool]:
    """(reward, success, confidence, valid) of one turn: its plan carried out from ``state`` in ``world``
    (default NumberReach)."""
    turn = parse_turn(text)
    usable, success = (world or rl_world("numberreach")).carry_out(state, turn, rng)
    return reward(success, turn.confidence, usable), success, turn.confidence, turn.is_valid


def rloo(rewards: list[float]) -> list[float]:
    """Each reward less the mean of the others in its group."""
    n = len(rewards)
    if n < 2:
        return [0.0] * n
    total = sum(rewards)
    return [r - (total - r) / (n - 1) for r in rewards]


async def play(engine: Any, world: RLWorld, states: list[Any], group: int, max_tokens: int, seed: int,
               rng: random.Random) -> list[list[Scored]]:
    """``group`` turns for each state, sampled through ``engine`` and scored by their plans' outcomes."""
    from engine.base import GenerationRequest
    from engine.sampler import collect

    async def one(i: int, state: Any) -> list[Scored]:
        ids = engine.render_chat([{"role": "user", "content": world.prompt(state).strip()}])
        req = GenerationRequest(ids, n=group, max_tokens=max_tokens, temperature=1.0, seed=seed + i,
                                stop=ACTION_STOPS, include_stop_str_in_output=True)
        batch = await collect(engine, req, f"fc-rl-{seed}-{i}")
        out = []
        for sample in batch.samples:
            r, ok, conf, valid = score(state, sample.text, rng, world)
            out.append(Scored(list(ids), list(sample.token_ids), r, ok, conf, valid))
        return out

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(states))))


def policy_step(model: Any, opt: torch.optim.Optimizer, groups: list[list[Scored]], pad: int) -> float:
    """One REINFORCE step with RLOO baselines; returns the loss (token-normalized)."""
    items = [(s, a) for g in groups for s, a in zip(g, rloo([x.reward for x in g]), strict=True)
             if a != 0.0 and s.token_ids]
    opt.zero_grad(set_to_none=True)
    if not items:
        return 0.0
    total_tokens = sum(len(s.token_ids) for s, _ in items)
    loss_sum = 0.0
    for start in range(0, len(items), MICRO_BATCH):
        chunk = items[start:start + MICRO_BATCH]
        rows = [(s.prompt_ids + s.token_ids, [0.0] * len(s.prompt_ids) + [1.0] * len(s.token_ids)) for s, _ in chunk]
        ids, w, mask = batch_tensors(rows, pad)
        lp = token_logprobs(model, ids, mask, w)
        adv = torch.cat([torch.full((len(s.token_ids),), a) for s, a in chunk])
        loss = -(adv * lp).sum() / total_tokens
        loss.backward()
        loss_sum += float(loss.detach())
    params = [p for p in model.parameters() if p.requires_grad]
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss_sum


def rl_stage(model: Any, tok: Any, cfg: AdapterConfig, n_steps: int, log: Callable[[dict[str, Any]], None],
             work: Path) -> dict[str, Any]:
    """``n_steps`` FC-RL steps on ``model`` (a peft model in training), episodes through vLLM on its base."""
    return asyncio.run(_rl(model, tok, cfg, n_steps, log, work))


async def _rl(model: Any, tok: Any, cfg: AdapterConfig, n_steps: int, log: Callable[[dict[str, Any]], None],
              work: Path) -> dict[str, Any]:
    from engine import open_engine
    from engine.on_adapter import on_adapter

    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed + 4242)
    world = rl_world(cfg.world)
    visited = world.visited(rng)  # training-side states, met by a mix of policies
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.rl_lr, weight_decay=0.0)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    started, tokens, samples = time.monotonic(), 0, 0
    async with open_engine(cfg.base, dtype=cfg.dtype, log_stats=False, enable_lora=True, max_loras=1,
                           max_lora_rank=max(16, cfg.rank), max_model_len=1024) as engine:
        current: str | None = None
        with tqdm(total=n_steps, desc="rl", file=sys.stderr) as bar:
            for step in range(n_steps):
                name = f"rl-{step}"
                model.save_pretrained(str(work / name))
                await engine.load_adapter(name, str(work / name))
                if current is not None:
                    await engine.unload_adapter(current)
                    shutil.rmtree(work / current, ignore_errors=True)
                current = name
                states = [next(visited) for _ in range(cfg.rl_states)]
                model.eval()
                groups = await play(on_adapter(engine, name), world, states, cfg.rl_group,
                                    cfg.rl_max_tokens or world.max_tokens,
                                    cfg.seed * 100_000 + step * 100, rng)
                model.train()
                loss = policy_step(model, opt, groups, pad)
                flat = [s for g in groups for s in g]
                samples += len(flat)
                tokens += sum(len(s.token_ids) for s in flat)
                rec = {"stage": "rl", "step": step + 1, "loss": round(loss, 5),
                       "reward": round(sum(s.reward for s in flat) / len(flat), 4),
                       "success": round(sum(s.success for s in flat) / len(flat), 4),
                       "valid": round(sum(s.valid for s in flat) / len(flat), 4),
                       "confidence": round(sum(s.confidence or 0.0 for s in flat) / len(flat), 4),
                       "elapsed_s": round(time.monotonic() - started, 1)}
                log(rec)
                bar.set_postfix(reward=rec["reward"], success=rec["success"])
                bar.update(1)
        if current is not None:
            shutil.rmtree(work / current, ignore_errors=True)
    return {"steps": n_steps, "samples": samples, "completion_tokens": tokens,
            "seconds": round(time.monotonic() - started, 1)}

