"""Loss weights of the reference training: the confidence gets the extra weight, the prompt none."""

from __future__ import annotations

from reference import data
from reference import numberreach as env
from reference.tokenizer import build_tokenizer
from reference.train import _encode


def test_encode_weights_prompt_zero_and_confidence_up() -> None:
    examples = data.stage_examples(2, 60, seed=2)
    tok = build_tokenizer((e.prompt + e.completion for e in examples), 384)
    ex = data.make_turn(env.State(7, 23, 6), ("*3", "+2"))
    ids, weights = _encode(tok, ex, conf_weight=4.0)
    n_prompt = len(tok.encode(ex.prompt).ids)
    assert weights[:n_prompt] == [0.0] * n_prompt
    heavy = {tok.id_to_token(i): w for i, w in zip(ids, weights, strict=True) if w > 1}
    assert heavy["</confidence>"] == 4.0 and "</imaginary>" not in heavy
    assert len(ids) == len(weights)


def test_policy_mask_zeroes_the_plans_operations_only() -> None:
    examples = data.stage_examples(2, 60, seed=2)
    tok = build_tokenizer((e.prompt + e.completion for e in examples), 384)
    ex = data.make_turn(env.State(7, 52, 6), ("*3", "+2", "*2", "+2", "*2"))  # misses: not a policy target
    assert not ex.shortest_hit
    ids, plain = _encode(tok, ex, conf_weight=4.0)
    _, masked = _encode(tok, ex, conf_weight=4.0, policy_mask=True)
    tokens = [tok.id_to_token(i) for i in ids]
    imaginary_end = tokens.index("</imaginary>")
    zeroed = [t for t, a, b in zip(tokens, plain, masked, strict=True) if a != b]
    assert zeroed == ["*3", "+2", "*2", "+2", "*2"]
    assert all(b == 0.0 for t, b in zip(tokens[:imaginary_end], masked, strict=False) if t in zeroed)
    # the values, the first op the turn acts on (think, tool call) and the confidence keep their weight
    assert masked[tokens.index("96")] == 1.0
    assert [masked[i] for i, t in enumerate(tokens) if t == "*3"][1:] == [1.0, 1.0]
    assert masked[tokens.index("</confidence>")] == 4.0


def test_turns_say_whether_their_plan_is_a_shortest_hit() -> None:
    hit = data.make_turn(env.State(7, 23, 6), ("*3", "+2"))
    assert hit.shortest_hit and data.with_observation(hit).shortest_hit
    assert not data.make_turn(env.State(7, 23, 6), ("+2", "+2", "+2", "+2", "+2", "+2")).shortest_hit
