"""The recipe's stages on the real pretrained base, a few steps each: for both worlds the supervised stages
(WM-AMT, FE-SFT) give a LoRA adapter that names its base and resumes; FC-RL plays through vLLM, its plans
carried out in the world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from catalog.adapters import base_sha256, read_meta
from reference.lora import AdapterConfig, RecipeError, chat_row, stage_rows, train_adapter
from reference.worlds import world_spec


def test_rows_train_the_completion_in_the_chat_template_and_mask_the_plans_choices(smollm2: Path) -> None:
    tok = AutoTokenizer.from_pretrained(smollm2)
    ids, w = chat_row(tok, "<information>x=3 target=97 steps=6</information>\n", "<imaginary>+1 4, *2 8</imaginary>",
                      [(11, 13), (17, 19)])
    trained = tok.decode([i for i, x in zip(ids, w, strict=True) if x > 0])
    assert trained.startswith("<imaginary>") and trained.endswith("</imaginary><|im_end|>")
    assert "+1" not in trained and "*2" not in trained and " 4" in trained and " 8" in trained
    assert "<information>" not in trained  # the prompt carries no loss
    for world in ("numberreach", "search"):
        rows = stage_rows(tok, world_spec(world), "fe", 4, 0)
        text = tok.decode(rows[0][0])
        assert "<|im_start|>assistant\n<imaginary>" in text and "\n<information>" not in text.split("assistant")[-1]


@pytest.mark.parametrize("world", ["numberreach", "search"])
def test_wm_then_fe_gives_an_adapter_that_names_its_base_and_resumes(smollm2: Path, tmp_path: Path,
                                                                     world: str) -> None:
    cfg = AdapterConfig(base=str(smollm2), world=world, stages=("wm", "fe"), steps=(2, 1), batch_size=2, rank=4)
    out = train_adapter(cfg, tmp_path / "a")
    meta = read_meta(out)
    assert meta["stages"] == ["wm", "fe"] and meta["world"] == world
    assert meta["base_sha256"] == base_sha256(smollm2) and meta["rank"] == 4
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    losses = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in losses if r.get("event") == "stage_done"] == ["wm", "fe"]
    train_adapter(cfg, out)  # both stages are there: nothing is trained again
    again = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert again[-1]["resumed_after"] == ["wm", "fe"] and len(again) == len(losses) + 1
    with pytest.raises(RecipeError, match="other stages or steps"):
        train_adapter(AdapterConfig(base=str(smollm2), world=world, stages=("wm", "fe"), steps=(3, 1),
                                    batch_size=2, rank=4), out)


@pytest.mark.parametrize("world", ["numberreach", "search"])
def test_fc_rl_plays_through_the_engine_and_learns_from_outcomes(smollm2: Path, tmp_path: Path, world: str) -> None:
    cfg = AdapterConfig(base=str(smollm2), world=world, stages=("fe", "rl"), steps=(2, 1), batch_size=2, rank=4,
                        rl_states=2, rl_group=4, rl_max_tokens=48)
    out = train_adapter(cfg, tmp_path / "rl")
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    [rl] = [r for r in log if r.get("stage") == "rl" and "step" in r]
    assert -1.0 <= rl["reward"] <= 1.0 and 0.0 <= rl["valid"] <= 1.0
    assert read_meta(out)["stages"] == ["fe", "rl"]
    assert read_meta(out)["stage_runs"][-1]["samples"] == 8


def test_an_adapter_merged_into_its_base_is_the_same_function(smollm2: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from reference.lora import TARGET_MODULES, merge_adapter

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.bfloat16)
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=list(TARGET_MODULES),
                                           init_lora_weights=False, task_type="CAUSAL_LM"))  # B ≠ 0: a real change
    lora.save_pretrained(tmp_path / "adapter")
    merged_dir = merge_adapter(tmp_path / "adapter", smollm2, tmp_path / "merged")
    assert not (merged_dir / "source.json").exists() and (merged_dir / "tokenizer.json").exists()
    ids = torch.tensor([[1, 504, 3458, 314, 216, 33, 30, 32]])
    with torch.no_grad():
        plain = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.bfloat16)(ids).logits.float()
        fresh = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.bfloat16)
        adapted = PeftModel.from_pretrained(fresh, str(tmp_path / "adapter"))(ids).logits.float()
        folded = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.bfloat16)(ids).logits.float()
    change = (adapted - plain).abs().mean()
    assert change > 0.05  # the adapter changes the function …
    assert (folded - adapted).abs().mean() < 0.1 * change  # … and the merged weights compute that change
