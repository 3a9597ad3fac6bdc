"""The planner's sampler sends a continued sample as the tokens the engine wrote, not its text encoded
again: a tokenizer may encode a text differently from the tokens that produced it, and vLLM's prefix
cache serves identical tokens only."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence

from engine.base import GenerationChunk, GenerationRequest
from engine.sampler import EngineSampler, TokenPrompt
from engine.scripted import ScriptedEngine
from planner.search import Sample

MERGED = 1000  # "ab" as one token when text is encoded; the engine writes a and b one at a time


class MergingEngine(ScriptedEngine):
    """Encoding merges "ab" into one token; generation writes characters: the mismatch of a real BPE."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        out: list[int] = []
        i = 0
        while i < len(text):
            if text.startswith("ab", i):
                out.append(MERGED)
                i += 2
            else:
                out.append(ord(text[i]))
                i += 1
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return "".join("ab" if i == MERGED else chr(i) for i in ids)


EOS = 2


class EosEngine(MergingEngine):
    """Ends every sample with an end-of-sequence token, which (as in vLLM) is not in the text."""

    def decode(self, ids: Sequence[int]) -> str:
        return "".join("" if i == EOS else MergingEngine.decode(self, [i]) for i in ids)  # special: not shown

    async def generate(self, request: GenerationRequest, request_id: str) -> AsyncIterator[GenerationChunk]:
        async for chunk in super().generate(request, request_id):
            chunk.deltas = [dataclasses.replace(d, token_ids=(*d.token_ids, EOS), num_tokens=d.num_tokens + 1)
                            if d.finish_reason else d for d in chunk.deltas]
            yield chunk


def span_script(prompt: str, index: int, request: GenerationRequest) -> str:
    return "xabyab</confidence>" if prompt.endswith("Q:") else "think</action>"


async def first_span(sampler: EngineSampler) -> tuple[TokenPrompt, Sample]:
    prompt = sampler.start("Q:")
    (span,) = (await sampler.sample(prompt, 1, stop=["</confidence>"], max_tokens=64, temperature=1.0)).samples
    return prompt, span


async def test_a_continued_sample_is_sent_as_the_tokens_generated() -> None:
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    prompt, span = await first_span(sampler)
    assert span.text == "xabyab</confidence>"
    assert span.token_ids == tuple(ord(c) for c in span.text)  # one token a character, no merges
    await sampler.sample(sampler.extend(prompt, span), 1, stop=["</action>"], max_tokens=64, temperature=0.0)
    sent = engine.requests[-1].prompt_token_ids
    assert sent == engine.encode("Q:") + list(span.token_ids)
    assert sent != engine.encode("Q:" + span.text)  # what encoding the text again would have sent


async def test_a_prompt_extending_a_sample_is_its_tokens_and_the_rest_encoded() -> None:
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    prompt, span = await first_span(sampler)
    await sampler.sample(sampler.extend(prompt, span, "<ab>"), 1, stop=["</action>"], max_tokens=64, temperature=0.0)
    assert engine.requests[-1].prompt_token_ids == [*engine.encode("Q:"), *span.token_ids, ord("<"), MERGED, ord(">")]


async def test_an_end_of_sequence_token_is_left_out_of_what_is_sent() -> None:
    engine = EosEngine(span_script)
    sampler = EngineSampler(engine)
    prompt, span = await first_span(sampler)
    assert span.token_ids[-1] == EOS
    await sampler.sample(sampler.extend(prompt, span), 1, stop=["</action>"], max_tokens=64, temperature=0.0)
    assert engine.requests[-1].prompt_token_ids == engine.encode("Q:") + list(span.token_ids[:-1])


async def test_an_encoding_that_adds_a_space_marker_is_joined_on_without_it() -> None:
    """SentencePiece starts every encoding with a space marker: a piece joined on drops it."""
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    prompt, span = await first_span(sampler)
    plain = engine.encode
    engine.encode = lambda text, add_special_tokens=True: [ord(" "), *plain(text)]  # type: ignore[method-assign]
    await sampler.sample(sampler.extend(prompt, span, "<obs>"), 1, stop=["</action>"], max_tokens=64,
                         temperature=0.0)
    assert engine.requests[-1].prompt_token_ids == [*prompt.ids, *span.token_ids, *plain("<obs>")]


async def test_a_sample_whose_tokens_were_not_said_is_its_text_encoded() -> None:
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    prompt = sampler.start("Q:")
    extended = sampler.extend(prompt, Sample("xab", 2))
    assert extended.ids == (*prompt.ids, ord("x"), MERGED)


async def test_a_rendered_prompt_is_sent_as_it_is_and_never_encoded() -> None:
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    encoded: list[str] = []
    plain = engine.encode
    engine.encode = lambda text, add_special_tokens=True: encoded.append(text) or plain(text)  # type: ignore[method-assign]
    ids = [ord("Q"), ord(":")]
    batch = await sampler.sample(sampler.prompt(ids), 2, stop=["</confidence>"], max_tokens=64, temperature=1.0)
    await sampler.sample(sampler.extend(sampler.prompt(ids), batch.samples[0]), 1, stop=["</action>"],
                         max_tokens=64, temperature=0.0)
    assert not [t for t in encoded if "Q" in t]  # (the scripted engine encodes what it generates)
    assert engine.requests[-1].prompt_token_ids == [*ids, *batch.samples[0].token_ids]


def past_the_stop() -> tuple[EngineSampler, TokenPrompt, Sample]:
    """A span stopped at ``</confidence>`` whose last token is ``><``: its text ends before that token does."""
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    over = ord("<") + 0x10000  # one token for "><"
    plain = engine.decode
    engine.decode = lambda ids: plain([i for i in ids if i != over]) + "><" * ids.count(over)  # type: ignore[method-assign]
    text = "xy</confidence>"
    ids = (*(ord(c) for c in "xy</confidence"), over)  # the engine's tokens: the text plus a "<"
    assert engine.decode(list(ids)) == text + "<"
    return sampler, sampler.start("Q:"), Sample(text, len(ids), "stop", ids)


async def test_tokens_written_past_the_stop_string_are_given_up_and_the_rest_of_the_text_encoded() -> None:
    """vLLM cuts the text at the stop string, not the tokens: a last token "><" after "</confidence" leaves a
    "<" the text never showed; the continuation must start where the text ends."""
    sampler, prompt, span = past_the_stop()
    ids, text, engine = span.token_ids, span.text, sampler.engine
    extended = sampler.extend(prompt, span)
    assert extended.ids == (*prompt.ids, *ids[:-1], ord(">"))
    assert engine.decode(list(extended.ids)).endswith(text)


async def test_tokens_that_do_not_decode_to_the_text_are_not_used() -> None:
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    prompt = sampler.start("Q:")
    wrong = Sample("xab", 3, "stop", (ord("Y"), ord("Y"), ord("Y")))
    assert sampler.extend(prompt, wrong).ids == (*prompt.ids, ord("x"), MERGED)


async def test_a_continuation_carries_on_from_every_token_and_starts_with_what_they_showed_past_the_stop() -> None:
    """A span cut at ``</confidence>`` inside a ``><`` token is continued from that token, as the model
    wrote it (re-encoding its text as ``>`` puts the model where it never was: SmolLM2 then ends its turn),
    and the continuation's text starts with the ``<`` the span's text never showed."""
    sampler, prompt, span = past_the_stop()
    context, carried = sampler.carry(prompt, span)
    assert context.ids == (*prompt.ids, *span.token_ids) and carried == "<"


async def test_carry_leaves_out_the_end_of_sequence_and_falls_back_where_the_tokens_do_not_show_the_text() -> None:
    engine = EosEngine(span_script)
    sampler = EngineSampler(engine)
    prompt, span = await first_span(sampler)
    assert span.token_ids[-1] == EOS
    context, carried = sampler.carry(prompt, span)
    assert context.ids == (*prompt.ids, *span.token_ids[:-1]) and carried == ""
    wrong = Sample("xab", 3, "stop", (ord("Y"), ord("Y"), ord("Y")))
    assert sampler.carry(prompt, wrong) == (sampler.extend(prompt, wrong), "")
