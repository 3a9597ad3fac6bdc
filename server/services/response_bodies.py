"""Engine results → OpenAI response bodies."""

from __future__ import annotations

from typing import Any

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
from server.services.tools import Tools, tool_message


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


# a chat answer without tools looks as it did before tools existed: no tool_calls, no foresight
PLAIN_CHAT: dict[str, Any] = {"choices": {"__all__": {"foresight": True, "message": {"tool_calls": True}}}}


def chat_choice(index: int, text: str, finish_reason: str | None, tools: Tools | None) -> ChatChoice:
    """One choice: the text as it is, or — with tools declared — the turn as message, tool call and foresight."""
    if tools is None:
        return ChatChoice(index=index, message=AssistantMessage(content=text), finish_reason=finish_reason)
    message, finish, foresight = tool_message(text, finish_reason, tools)
    return ChatChoice(index=index, message=message, finish_reason=finish, foresight=foresight)


def chat_response(request_id: str, model: str, result: GenerationResult, with_logprobs: bool,
                  tools: Tools | None = None) -> ChatCompletionResponse:
    choices = []
    for i, s in enumerate(result.sequences):
        choice = chat_choice(i, s.text, s.finish_reason, tools)
        choice.logprobs = chat_logprobs(s.logprobs) if with_logprobs else None
        choices.append(choice)
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
