"""Engine results → OpenAI response bodies."""

from __future__ import annotations

from engine.base import TokenLogprob
from protocol.openai import (
    AssistantMessage,
    ChatChoice,
    ChatCompletionResponse,
    ChatLogprobs,
    ChatTokenLogprob,
    CompletionChoice,
    CompletionLogprobs,
    CompletionResponse,
    TopLogprob,
    Usage,
    now,
)
from server.services.generation import GenerationResult


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8", errors="replace"))


def chat_logprobs(items: list[TokenLogprob]) -> ChatLogprobs:
    return ChatLogprobs(
        content=[
            ChatTokenLogprob(
                token=t.token, logprob=t.logprob, bytes=_bytes(t.token),
                top_logprobs=[TopLogprob(token=s, logprob=lp, bytes=_bytes(s)) for s, lp in t.top],
            )
            for t in items
        ]
    )


def completion_logprobs(items: list[TokenLogprob], offset: int) -> CompletionLogprobs:
    out = CompletionLogprobs()
    pos = offset
    for t in items:
        out.tokens.append(t.token)
        out.token_logprobs.append(t.logprob)
        out.top_logprobs.append(dict(t.top) if t.top else None)
        out.text_offset.append(pos)
        pos += len(t.token)
    return out


def usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def chat_response(request_id: str, model: str, result: GenerationResult, with_logprobs: bool) -> ChatCompletionResponse:
    choices = [
        ChatChoice(
            index=i,
            message=AssistantMessage(content=s.text),
            finish_reason=s.finish_reason,
            logprobs=chat_logprobs(s.logprobs) if with_logprobs else None,
        )
        for i, s in enumerate(result.sequences)
    ]
    return ChatCompletionResponse(id=request_id, created=now(), model=model, choices=choices,
                                  usage=usage(result.prompt_tokens, result.completion_tokens))


def completion_response(request_id: str, model: str, results: list[GenerationResult],
                        with_logprobs: bool) -> CompletionResponse:
    choices: list[CompletionChoice] = []
    for p, result in enumerate(results):
        n = len(result.sequences)
        for i, s in enumerate(result.sequences):
            choices.append(CompletionChoice(
                index=p * n + i, text=s.text, finish_reason=s.finish_reason,
                logprobs=completion_logprobs(s.logprobs, 0) if with_logprobs else None,
            ))
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(r.completion_tokens for r in results)
    return CompletionResponse(id=request_id, created=now(), model=model, choices=choices,
                              usage=usage(prompt, completion))
