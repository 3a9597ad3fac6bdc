"""Held-out sets for a pretrained model: named, any text, chat turns rendered by the model's own template;
and the figures per set (KL, top-1 agreement, perplexity), on tiny torch models whose answers we know."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from quantize.divergence import combine, logit_divergence
from quantize.errors import BadTraces
from quantize.gptq import _encode, _render
from quantize.traces import Trace, as_chat, named_heldout, read_traces, write_traces


def test_chat_traces_keep_their_messages_through_a_file(tmp_path: Path) -> None:
    traces = as_chat([Trace("<information>x=1</information>\n", "<confidence>90%</confidence><answer>2</answer>")])
    assert traces[0].messages == ({"role": "user", "content": "<information>x=1</information>"},
                                  {"role": "assistant", "content": "<confidence>90%</confidence><answer>2</answer>"})
    write_traces(traces, tmp_path / "t.jsonl")
    assert json.loads((tmp_path / "t.jsonl").read_text())["messages"][1]["role"] == "assistant"
    assert read_traces(tmp_path / "t.jsonl") == traces


def test_a_heldout_set_is_any_text_under_a_name(tmp_path: Path) -> None:
    path = tmp_path / "prose.jsonl"
    path.write_text(json.dumps({"text": "Plain prose, no foresight in it."}) + "\n")
    with pytest.raises(BadTraces, match="no foresight turn"):
        read_traces(path)  # calibration refuses it
    name, traces = named_heldout(f"docs={path}")
    assert name == "docs" and traces[0].completion == "Plain prose, no foresight in it." and traces[0].prompt == ""
    assert named_heldout(str(path))[0] == "prose"
    with pytest.raises(BadTraces, match="name before '='"):
        named_heldout(f" ={path}")
    with pytest.raises(BadTraces, match="does not exist"):
        named_heldout("docs=/nonexistent.jsonl")


class ChatML:
    """A tokenizer with a ChatML template and one id per character (the worker's view of one)."""

    chat_template = "chatml"
    bos_token_id = None
    eos_token_id = 0
    bos_token = None

    def apply_chat_template(self, msgs: list[dict[str, str]], add_generation_prompt: bool = False,
                            tokenize: bool = False) -> str:
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}


def test_the_worker_renders_a_chat_trace_with_the_models_template() -> None:
    trace = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    prompt, completion, eos = _render(ChatML(), trace)
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert completion == "yo<|im_end|>\n" and not eos  # the template's own end of turn, no second one
    ids, start = _encode(ChatML(), trace, 512)
    assert "".join(map(chr, ids[start:])) == completion and start == len(prompt)
    plain_ids, _ = _encode(ChatML(), {"prompt": "a", "completion": "b"}, 512)
    assert plain_ids == [ord("a"), ord("b"), 0]  # a plain trace still ends with the end of sequence


class Fixed:
    """A 'model' whose next-token log-probabilities are the same at every position."""

    def __init__(self, probs: list[float]) -> None:
        self.probs = probs

    def __call__(self, x: Any) -> Any:
        import torch

        logits = torch.log(torch.tensor(self.probs)).expand(1, x.shape[1], len(self.probs))
        return type("Out", (), {"logits": logits})()


def test_kl_agreement_and_perplexity_of_known_distributions() -> None:
    original, quantized = Fixed([0.5, 0.25, 0.25]), Fixed([0.25, 0.5, 0.25])
    encoded = [([0, 0, 1, 2], 1)]  # the completion is the last three tokens: predicted at positions 0, 1, 2
    d = logit_divergence(original, quantized, encoded)
    kl = 0.5 * math.log(2) + 0.25 * math.log(0.5)
    assert d["kl_tokens"] == 3 and d["kl_mean"] == pytest.approx(kl) and d["top1_agreement"] == 0.0
    assert d["perplexity_original"] == pytest.approx(math.exp(-(math.log(0.5) + math.log(0.25) * 2) / 3))
    assert d["perplexity_quantized"] == pytest.approx(math.exp(-(math.log(0.25) + math.log(0.5) + math.log(0.25)) / 3))
    same = logit_divergence(original, original, encoded)
    both = combine([{**d, "kl_tokens": 3.0}, {**same, "kl_tokens": 1.0}])
    assert both["kl_mean"] == pytest.approx(kl * 3 / 4) and both["top1_agreement"] == pytest.approx(0.25)
