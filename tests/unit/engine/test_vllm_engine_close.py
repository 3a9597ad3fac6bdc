"""Closing the vLLM adapter: the output handler stops before the engine when nothing waits on it.

vLLM's own shutdown stops the engine core first and its output handler after, so the handler, still
reading, may log the engine's exit as its failure (an ERROR with a traceback) at a clean shutdown.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("vllm")

from engine.vllm import VllmEngine, VllmEngineConfig


class FakeLLM:
    """What close() touches of ``AsyncLLM``: its output handler task, unfinished requests, shutdown."""

    def __init__(self, unfinished: int) -> None:
        self.output_handler = asyncio.create_task(asyncio.Event().wait())
        self.unfinished = unfinished
        self.handler_done_at_shutdown: bool | None = None

    def get_num_unfinished_requests(self) -> int:
        return self.unfinished

    def shutdown(self) -> None:
        self.handler_done_at_shutdown = self.output_handler.done()


def engine_with(llm: FakeLLM) -> VllmEngine:
    engine = VllmEngine(VllmEngineConfig(model="unused", served_model_name="unused"))
    engine._llm = llm  # type: ignore[assignment]
    return engine


async def test_with_nothing_in_flight_the_handler_stops_before_the_engine() -> None:
    llm = FakeLLM(unfinished=0)
    await engine_with(llm).close()
    assert llm.handler_done_at_shutdown is True
    assert llm.output_handler.cancelled()


async def test_with_requests_in_flight_vllm_keeps_its_order_so_they_are_ended() -> None:
    llm = FakeLLM(unfinished=2)
    await engine_with(llm).close()
    assert llm.handler_done_at_shutdown is False  # the handler is left to end the waiting requests
    llm.output_handler.cancel()


async def test_close_twice_is_harmless() -> None:
    llm = FakeLLM(unfinished=0)
    engine = engine_with(llm)
    await engine.close()
    await engine.close()
    assert llm.handler_done_at_shutdown is True
