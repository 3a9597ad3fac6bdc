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
    now,
)
from server.services.generation import GenerationResult
from server.services.tools import Tools, tool_message
from server.services.usage import TokenUsage


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


# a chat answer without tools looks as it did before tools existed: no tool_calls, no foresight
PLAIN_CHAT: dict[str, Any] = {"choices": {"__all__": {"foresight": True, "message": {"tool_calls": True}}}}


def chat_choice(index: int, text: str, finish_reason: str | None, tools: Tools | None) -> ChatChoice:
    """One choice: the text as it is, or — with tools declared — the turn as message, tool call and foresight."""
    if tools is None:
        return ChatChoice(index=index, message=AssistantMessage(content=text), finish_reason=finish_reason)
    message, finish, foresight = tool_message(text, finish_reason, tools)
    return ChatChoice(index=index, message=message, finish_reason=finish, foresight=foresight)


def chat_response(request_id: str, model: str, result: GenerationResult, usage: TokenUsage, with_logprobs: bool,
                  tools: Tools | None = None) -> ChatCompletionResponse:
    choices = []
    for i, s in enumerate(result.sequences):
        choice = chat_choice(i, s.text, s.finish_reason, tools)
        choice.logprobs = chat_logprobs(s.logprobs) if with_logprobs else None
        choices.append(choice)
    return ChatCompletionResponse(id=request_id, created=now(), model=model, choices=choices, usage=usage.openai())


def completion_response(request_id: str, model: str, results: list[GenerationResult], usage: TokenUsage,
                        with_logprobs: bool) -> CompletionResponse:
    choices: list[CompletionChoice] = []
    for p, result in enumerate(results):
        n = len(result.sequences)
        for i, s in enumerate(result.sequences):
            choices.append(CompletionChoice(
                index=p * n + i, text=s.text, finish_reason=s.finish_reason,
                logprobs=completion_logprobs(s.logprobs, 0) if with_logprobs else None,
            ))
    return CompletionResponse(id=request_id, created=now(), model=model, choices=choices, usage=usage.openai())
