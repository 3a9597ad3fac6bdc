"""The planner's sampler sends a continued sample as the tokens the engine wrote, not its text encoded
again: a tokenizer may encode a text differently from the tokens that produced it, and vLLM's prefix
cache serves identical tokens only."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence

from engine import sampler as sampler_module
from engine.base import GenerationChunk, GenerationRequest
from engine.sampler import EngineSampler
from engine.scripted import ScriptedEngine
from planner.search import Sample, SampleBatch

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


async def test_a_continued_sample_is_sent_as_the_tokens_generated() -> None:
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    (span,) = (await sampler.sample("Q:", 1, stop=["</confidence>"], max_tokens=64, temperature=1.0)).samples
    assert span.text == "xabyab</confidence>"
    assert span.token_ids == tuple(ord(c) for c in span.text)  # one token a character, no merges
    await sampler.sample("Q:" + span.text, 1, stop=["</action>"], max_tokens=64, temperature=0.0)
    sent = engine.requests[-1].prompt_token_ids
    assert sent == engine.encode("Q:") + list(span.token_ids)
    assert sent != engine.encode("Q:" + span.text)  # what encoding the text again would have sent


async def test_a_prompt_extending_a_sample_is_its_tokens_and_the_rest_encoded() -> None:
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    (span,) = (await sampler.sample("Q:", 1, stop=["</confidence>"], max_tokens=64, temperature=1.0)).samples
    await sampler.sample("Q:" + span.text + "<ab>", 1, stop=["</action>"], max_tokens=64, temperature=0.0)
    assert engine.requests[-1].prompt_token_ids == [*engine.encode("Q:"), *span.token_ids, ord("<"), MERGED, ord(">")]


async def test_a_stop_string_ending_inside_a_token_is_sent_as_the_tokens_before_it_and_the_rest_encoded() -> None:
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    (span,) = (await sampler.sample("Q:", 1, stop=["</confidence>"], max_tokens=64, temperature=1.0)).samples
    # as if the engine's last token had been ">\n": the text stops at ">" (the stop string's end)
    sampler._known.clear()
    engine_ids = [*engine.encode("Q:"), *span.token_ids[:-1], ord(">") + 0x10000]
    decode = engine.decode
    engine.decode = lambda ids: decode(ids).replace(chr(ord(">") + 0x10000), ">\n")  # type: ignore[method-assign]
    sampler._remember_samples("Q:", engine.encode("Q:"), SampleBatch(
        [Sample(span.text, len(span.token_ids), "stop", tuple(engine_ids[2:]))], 2))
    assert sampler.token_ids("Q:" + span.text) == [*engine.encode("Q:"), *span.token_ids[:-1], ord(">")]


async def test_an_end_of_sequence_token_is_left_out_of_what_is_sent() -> None:
    engine = EosEngine(span_script)
    sampler = EngineSampler(engine)
    (span,) = (await sampler.sample("Q:", 1, stop=["</confidence>"], max_tokens=64, temperature=1.0)).samples
    assert span.token_ids[-1] == EOS
    await sampler.sample("Q:" + span.text, 1, stop=["</action>"], max_tokens=64, temperature=0.0)
    assert engine.requests[-1].prompt_token_ids == engine.encode("Q:") + list(span.token_ids[:-1])


async def test_an_encoding_that_adds_a_space_is_not_joined_on() -> None:
    """SentencePiece starts every encoding with a space marker: the rest is then not encoded apart."""
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    (span,) = (await sampler.sample("Q:", 1, stop=["</confidence>"], max_tokens=64, temperature=1.0)).samples
    plain = engine.encode
    engine.encode = lambda text, add_special_tokens=True: [ord(" "), *plain(text)]  # type: ignore[method-assign]
    await sampler.sample("Q:" + span.text + "<obs>", 1, stop=["</action>"], max_tokens=64, temperature=0.0)
    assert engine.requests[-1].prompt_token_ids == engine.encode("Q:" + span.text + "<obs>")


async def test_tokens_that_do_not_decode_to_the_text_are_not_used() -> None:
    """Tokens that decode to another text (beyond the last few, which may be given up) are not sent:
    the text is, encoded."""
    engine = MergingEngine(span_script)
    engine.decode = lambda ids: MergingEngine.decode(engine, ids).replace("y", "Y")  # type: ignore[method-assign]
    sampler = EngineSampler(engine)
    (span,) = (await sampler.sample("Q:", 1, stop=["</confidence>"], max_tokens=64, temperature=1.0)).samples
    await sampler.sample("Q:" + span.text, 1, stop=["</action>"], max_tokens=64, temperature=0.0)
    assert engine.requests[-1].prompt_token_ids == engine.encode("Q:" + span.text)


async def test_what_a_sampler_remembers_is_bounded() -> None:
    engine = MergingEngine(span_script)
    sampler = EngineSampler(engine)
    for i in range(sampler_module.KNOWN_PROMPTS + 20):
        await sampler.sample(f"{i} Q:", 2, stop=["</confidence>"], max_tokens=64, temperature=1.0)
    assert len(sampler._known) == sampler_module.KNOWN_PROMPTS
    # the first sample's continuation was remembered as generated (a, b apart), then forgotten: encoded ("ab" one)
    continued = "0 Q:xabyab</confidence>"
    await sampler.sample(continued, 1, stop=["</action>"], max_tokens=64, temperature=0.0)
    assert engine.requests[-1].prompt_token_ids == engine.encode(continued)
    assert MERGED in engine.requests[-1].prompt_token_ids
