"""The three-stage recipe trains a search-world checkpoint end to end (a few steps: the recipe, not
its quality — CI evaluates the shipped weights, tests/integration/test_search_world.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from reference.search import data
from reference.search.tokens import CHAT_TEMPLATE
from reference.train import ModelShape, TrainConfig, train


def test_a_few_steps_make_a_loadable_checkpoint(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, LlamaForCausalLM

    cfg = replace(TrainConfig(world="search", stage_steps=(3, 3, 3), batch_size=4),
                  shape=ModelShape(hidden_size=48, intermediate_size=96, num_hidden_layers=1, num_attention_heads=2,
                                   num_key_value_heads=2))
    out = train(cfg, tmp_path / "ckpt")
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "config" and log[0]["world"] == "search"
    assert [r["stage"] for r in log[1:]][-1] == 3 and log[-1]["step"] == 9
    assert json.loads((out / "training.json").read_text())["config"]["world"] == "search"
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == CHAT_TEMPLATE
    ex = data.stage_examples(2, 1, seed=3)[0]
    ids = tok(ex.prompt + ex.completion)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == ex.prompt + ex.completion
    assert tok.convert_ids_to_tokens(ids)[:3] == ["<s>", "<information>", "question:"]
    model = LlamaForCausalLM.from_pretrained(out)
    assert model.config.vocab_size == len(tok) and not model.config.tie_word_embeddings
