"""A small byte-level BPE tokenizer for the reference model, built locally.

Tags of the foresight format, the environment's operations and every integer
0..999 are whole tokens (not special: they must survive detokenisation). A
number as one token turns the world model's arithmetic into a table lookup and
"have I reached the target?" into a token match — both easy for a tiny model,
where digit-by-digit arithmetic is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
FORMAT_TAGS = tuple(
    f"<{c}{t}>"
    for t in (
        "information",
        "imaginary",
        "keyword",
        "analysis",
        "confidence",
        "think",
        "search",
        "answer",
        "tool_call",
    )
    for c in ("", "/")
)
OP_TOKENS = ("+1", "+2", "*2", "*3", "-1")
# the constant parts of the reference model's tool call, one token each
TOOL_CALL_TOKENS = ('{"name": "apply", "arguments": {"op": "', '"}}')
NUMBER_TOKENS = tuple(str(i) for i in range(1000))
# The reference model's chat template. The model is a Markov agent, trained on one observation a turn
# (``<s><information>x=… target=… steps=…</information>\n``), with a context of 256 tokens. So the template
# renders only the last user or tool message, as ``<information>…</information>`` (content already wrapped so
# is written as it is), and no system block, no tools block and no earlier turns: its one tool, ``apply``,
# is built in. A chat turn, a tool round trip and /v1/plan give the same prompt for the same observation.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% if tools %}{# apply is built in: no tools block #}{% endif %}"
    "{% set ns = namespace(obs=none) %}"
    "{% for message in messages %}{% if message['role'] in ['user', 'tool'] %}"
    "{% set ns.obs = message['content'] %}{% endif %}{% endfor %}"
    "{% if ns.obs is not none %}"
    "{% set text = ns.obs if ns.obs is string else ns.obs | map(attribute='text') | join('') %}"
    "{% set text = text | trim %}"
    "{% if text.startswith('<information>') %}{{ text }}"
    "{% else %}{{ '<information>' + text + '</information>' }}{% endif %}{{ '\n' }}"
    "{% endif %}"
)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 384,
                    whole: tuple[str, ...] | None = None) -> Tokenizer:
    """A byte-level BPE trained on ``texts``, plus ``whole`` (default: NumberReach's tags, tool call,
    operations and numbers) as whole, non-special tokens."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    if whole is None:
        whole = (*FORMAT_TAGS, *TOOL_CALL_TOKENS, *OP_TOKENS, *NUMBER_TOKENS)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in whole])
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    return tok


def save_hf_tokenizer(tok: Tokenizer, out: Path, max_length: int, chat_template: str = CHAT_TEMPLATE) -> None:
    """Save as a Hugging Face fast tokenizer (tokenizer.json + config)."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=max_length,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = chat_template
    fast.save_pretrained(str(out))
