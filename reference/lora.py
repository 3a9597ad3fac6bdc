"""The recipe on a pretrained base: its stages as one LoRA adapter (peft), trained in bfloat16.

The same worlds and the same stage data as the from-scratch model (:mod:`reference.train`), with a base model
as input instead of a tokenizer built here:

1. ``wm`` — world-model mid-training (WM-AMT): the rollouts of random plans (each step's next state), with the
   plan's own choices masked: world-model loss only;
2. ``fe`` — format-eliciting SFT (FE-SFT): whole foresight turns inside the base's own chat template (the
   turn in the assistant message, closed by the template's end of turn); only the shortest hitting plans
   teach the policy what to propose, as in the from-scratch recipe;
3. ``rl`` — foresight-conditioned RL (FC-RL) from outcomes: :mod:`reference.fc_rl`.

Every stage trains one adapter further; each stage's adapter is saved under ``OUT/stages/NAME`` so a run
resumes after its last finished stage. Loss and logits are computed on completion tokens only (the base's
49,152-word output layer dominates a step otherwise). Budgeted in optimizer steps.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from catalog.adapters import ADAPTER_META, base_sha256, read_meta
from reference.worlds import WORLDS, WorldSpec, world_spec

STAGES = ("wm", "fe", "rl")
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class RecipeError(ValueError):
    """A recipe that cannot run as asked (a bad base, stages out of order, a changed configuration)."""


@dataclass(frozen=True)
class AdapterConfig:
    """Everything that determines a trained adapter."""

    base: str
    world: str = "numberreach"
    stages: tuple[str, ...] = ("wm", "fe", "rl")
    steps: tuple[int, ...] = (100, 100, 20)
    rank: int = 16
    alpha: int = 32
    lr: float = 5e-4
    warmup: int = 10
    batch_size: int = 16
    seed: int = 0
    threads: int = 2
    dtype: str = "bfloat16"
    policy_plans: str = "shortest"  # as reference.train.TrainConfig.policy_plans
    # FC-RL (reference.fc_rl): start states a step, samples a state (the group), its learning rate
    rl_states: int = 4
    rl_group: int = 8
    rl_lr: float = 2e-5  # 1e-4 moved every stated confidence to 0% in two steps
    rl_max_tokens: int | None = None  # per turn; None: the world's (reference.rl_worlds)


def check_config(cfg: AdapterConfig) -> None:
    if cfg.world not in WORLDS:
        raise RecipeError(f"world must be one of {', '.join(WORLDS)}, not {cfg.world!r}")
    if not cfg.stages or any(s not in STAGES for s in cfg.stages):
        raise RecipeError(f"stages must be some of {', '.join(STAGES)}, not {','.join(cfg.stages)!r}")
    if list(cfg.stages) != sorted(cfg.stages, key=STAGES.index) or len(set(cfg.stages)) != len(cfg.stages):
        raise RecipeError(f"stages run in the order {','.join(STAGES)}, each once: {','.join(cfg.stages)!r}")
    if len(cfg.steps) != len(cfg.stages) or any(s < 1 for s in cfg.steps):
        raise RecipeError(f"give one positive step count per stage ({len(cfg.stages)}), not {cfg.steps}")
    if not (Path(cfg.base) / "config.json").is_file():
        raise RecipeError(f"the base {cfg.base!r} is not a checkpoint directory (no config.json); "
                          "add one with `foresight models add smollm2-135m-instruct`")


# --------------------------------------------------------------------------- data


def chat_row(tok: Any, prompt: str, completion: str,
             masked: Sequence[tuple[int, int]] = ()) -> tuple[list[int], list[float]]:
    """Token ids of a user ``prompt`` and an assistant ``completion`` in the base's chat template, with loss
    weights: 1 on the completion and the template's end of turn, 0 on the prompt and on ``masked``
    (character spans of the completion)."""
    head = str(tok.apply_chat_template([{"role": "user", "content": prompt.strip()}], tokenize=False,
                                       add_generation_prompt=True))
    whole = str(tok.apply_chat_template([{"role": "user", "content": prompt.strip()},
                                         {"role": "assistant", "content": completion}], tokenize=False))
    at = whole.find(completion, len(head) - 1 if head.endswith("\n") else len(head))
    if not whole.startswith(head) or at != len(head):
        raise RecipeError("the base's chat template does not end its prompt where the assistant's message starts")
    end = at + len(completion) + len(whole[at + len(completion):].rstrip("\n"))
    enc = tok(whole[:end], add_special_tokens=False, return_offsets_mapping=True)
    weights = []
    for s, e in enc["offset_mapping"]:  # a token that overlaps a masked span (" *" holds the op's "*") is masked
        inside = at <= s < end and not any(s - at < hi and e - at > lo for lo, hi in masked)
        weights.append(1.0 if inside else 0.0)
    return list(enc["input_ids"]), weights


def without_observation(completion: str) -> str:
    """A turn up to its action: the observation some stage-2 examples append is the environment's next message."""
    cut = completion.rfind("\n<information>")
    return completion[:cut] if cut > 0 else completion


def stage_rows(tok: Any, spec: WorldSpec, stage: str, count: int, seed: int,
               policy_plans: str = "shortest") -> list[tuple[list[int], list[float]]]:
    """Training rows of a supervised stage: ``wm`` (rollouts, choices masked) or ``fe`` (whole turns)."""
    if stage == "wm":
        return [chat_row(tok, e.prompt, e.completion, spec.policy_chars(e))
                for e in spec.stage_examples(1, count, seed)]
    rows = []
    for e in spec.stage_examples(2, count, seed):
        text = without_observation(e.completion)
        masked = spec.policy_chars(e) if policy_plans == "shortest" and not spec.unmasked_policy(e) else []
        rows.append(chat_row(tok, e.prompt, text, [(lo, hi) for lo, hi in masked if hi <= len(text)]))
    return rows


PAD_MULTIPLE = 32  # batch widths rounded up: fewer distinct shapes for oneDNN to compile and cache


def batch_tensors(rows: Sequence[tuple[list[int], list[float]]], pad: int) -> tuple[torch.Tensor, ...]:
    width = -(-max(len(ids) for ids, _ in rows) // PAD_MULTIPLE) * PAD_MULTIPLE
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    w = torch.zeros((len(rows), width))
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, wt) in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        w[i, : len(wt)] = torch.tensor(wt)
        mask[i, : len(r)] = 1
    return ids, w, mask


# --------------------------------------------------------------------------- model


def load_model(cfg: AdapterConfig, adapter: Path | None = None) -> tuple[Any, Any]:
    """The base in ``cfg.dtype`` with a trainable LoRA adapter (a new one, or ``adapter`` loaded to go on)."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(cfg.base)
    base = AutoModelForCausalLM.from_pretrained(cfg.base, dtype=getattr(torch, cfg.dtype))
    if adapter is not None:
        model = PeftModel.from_pretrained(base, str(adapter), is_trainable=True)
    else:
        lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0, target_modules=list(TARGET_MODULES),
                          task_type="CAUSAL_LM")
        model = get_peft_model(base, lora)
    return model, tok


def token_logprobs(model: Any, ids: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Log probabilities of the tokens with weight > 0 (next-token, flattened), the output layer applied to
    those positions only."""
    lm = model.get_base_model()
    hidden = lm.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    picked = weights[:, 1:] > 0
    logits = lm.lm_head(hidden[picked]).float()
    return -torch.nn.functional.cross_entropy(logits, ids[:, 1:][picked], reduction="none")


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def supervised_stage(model: Any, tok: Any, cfg: AdapterConfig, stage: str, n_steps: int,
                     log: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Train ``n_steps`` optimizer steps of a supervised stage; the tokens it saw."""
    spec = world_spec(cfg.world)
    rows = stage_rows(tok, spec, stage, n_steps * cfg.batch_size, cfg.seed + STAGES.index(stage),
                      cfg.policy_plans)
    random.Random(cfg.seed).shuffle(rows)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    seen = trained = 0
    started = time.monotonic()
    model.train()
    with tqdm(total=n_steps, desc=f"{stage}", file=sys.stderr) as bar:
        for step in range(n_steps):
            batch = rows[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            ids, w, mask = batch_tensors(batch, pad)
            lp = token_logprobs(model, ids, mask, w)
            loss = -(lp * w[:, 1:][w[:, 1:] > 0]).sum() / w[:, 1:].sum()
            for group in opt.param_groups:
                group["lr"] = lr_at(step, n_steps, cfg.lr, cfg.warmup)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            seen += int(mask.sum())
            trained += int((w > 0).sum())
            bar.set_postfix(loss=f"{loss.item():.4f}")
            bar.update(1)
            if step % 10 == 0 or step == n_steps - 1:
                log({"stage": stage, "step": step + 1, "loss": round(loss.item(), 5),
                     "lr": lr_at(step, n_steps, cfg.lr, cfg.warmup), "elapsed_s": round(time.monotonic() - started, 1)})
    return {"steps": n_steps, "tokens": seen, "completion_tokens": trained,
            "seconds": round(time.monotonic() - started, 1)}


# --------------------------------------------------------------------------- the recipe


def write_meta(path: Path, cfg: AdapterConfig, done: list[dict[str, Any]]) -> None:
    base = Path(cfg.base)
    meta = {"base": base.name, "base_sha256": base_sha256(base), "world": cfg.world,
            "stages": [d["stage"] for d in done], "stage_runs": done, "config": asdict(cfg),
            "rank": cfg.rank, "dtype": cfg.dtype}
    (path / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n")


def _finished(out: Path, cfg: AdapterConfig) -> list[dict[str, Any]]:
    """The stages a previous run of the same recipe already saved (resume after the last of them)."""
    done: list[dict[str, Any]] = []
    for stage, steps in zip(cfg.stages, cfg.steps, strict=True):
        meta = read_meta(out / "stages" / stage)
        if not meta:
            break
        previous = meta.get("stage_runs", [])
        if [d["stage"] for d in previous] != list(cfg.stages[: len(done) + 1]) or previous[-1]["steps"] != steps:
            raise RecipeError(f"{out / 'stages' / stage} was trained with other stages or steps; "
                              "use another --out or --force")
        done = previous
    return done


def train_adapter(cfg: AdapterConfig, out: Path) -> Path:
    """Run the recipe's stages into one adapter saved in ``out`` (each stage also under ``out/stages``)."""
    check_config(cfg)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    done = _finished(out, cfg)
    model, tok = load_model(cfg, out / "stages" / done[-1]["stage"] if done else None)
    with (out / "train_log.jsonl").open("a") as fh:

        def log(rec: dict[str, Any]) -> None:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()

        log({"event": "config", **asdict(cfg), "resumed_after": [d["stage"] for d in done]})
        for stage, steps in list(zip(cfg.stages, cfg.steps, strict=True))[len(done):]:
            if stage == "rl":
                from reference.fc_rl import rl_stage

                run = rl_stage(model, tok, cfg, steps, log, out / "stages" / "rl-work")
            else:
                run = supervised_stage(model, tok, cfg, stage, steps, log)
            done.append({"stage": stage, **run})
            target = out / "stages" / stage
            model.save_pretrained(str(target))
            write_meta(target, cfg, done)
            log({"event": "stage_done", **done[-1]})
    final = out / "stages" / cfg.stages[-1]
    for f in final.iterdir():
        if f.is_file() and f.name != "README.md":  # peft's model-card stub
            shutil.copy2(f, out / f.name)
    _ship_bf16(out / "adapter_model.safetensors")
    return out


def _ship_bf16(weights: Path) -> None:
    """The adapter's weights in bfloat16: half the size, and what vLLM computes the base in anyway (the
    stages' own copies stay float32, to resume training from)."""
    from safetensors.torch import load_file, save_file

    tensors = {k: v.to(torch.bfloat16) for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata={"format": "pt"})


def with_stages(cfg: AdapterConfig, stages: tuple[str, ...], steps: tuple[int, ...]) -> AdapterConfig:
    return replace(cfg, stages=stages, steps=steps)


def merge_adapter(adapter: Path, base: Path, out: Path) -> Path:
    """``base`` with ``adapter`` folded into its weights (bfloat16), saved as a plain checkpoint in ``out``: the
    same function without LoRA's per-request cost, for evaluations and benchmarks (never shipped: a base is)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    for f in base.iterdir():  # tokenizer, chat template, generation config
        if f.is_file() and f.suffix != ".safetensors" and f.name not in ("config.json", "source.json"):
            shutil.copy2(f, out / f.name)
    return out
