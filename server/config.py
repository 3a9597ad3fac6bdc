"""Server settings: environment (prefix ``FORESIGHT_``), an optional config file, CLI flags.

Precedence, highest first: CLI flags, environment variables, config file, defaults.
An invalid value stops start-up with a message naming the setting and what is allowed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.errors import SettingsError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO_ROOT / "models" / "foresight-numberreach"
ENV_PREFIX = "FORESIGHT_"


class Settings(BaseSettings):
    """Every setting of the server; docs/configuration.md has the table."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    # what to serve
    model: str = Field(default=str(DEFAULT_MODEL), description=(
        "Path of a Hugging Face checkpoint directory, or the name of a model added with `foresight models add`."))
    served_model_name: str | None = Field(default=None, description="Name clients use; default: the directory name.")
    adapters: dict[str, str] = Field(default_factory=dict, description=(
        "LoRA adapters served beside the base, name → adapter directory (`foresight serve --adapter NAME=PATH`); "
        "each must have been trained on this base (its foresight_adapter.json names the base's sha256)."))
    default_model: str | None = Field(default=None, description=(
        "What a request without `model` runs on: the base's served name or an adapter's name; default: the base."))
    enable_lora: bool = Field(default=False, description=(
        "Start the engine with LoRA even without adapters, so that an admin can load some at run time "
        "(POST /v1/adapters); on whenever `adapters` names any."))
    max_lora_rank: int = Field(default=16, ge=1, le=512, description="Highest LoRA rank the engine accepts.")
    max_loras: int = Field(default=4, ge=1, description="Adapters that may share one engine batch.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto",
        description="Weights and activations dtype (auto, on CPU: float16 for a quantized checkpoint, float32 "
                    "for it on AVX2-only CPUs and for a float32 checkpoint without native bfloat16).",
    )
    max_model_len: int | None = Field(default=None, gt=0, description="Context length; default: the model's.")
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1, description="Share of GPU memory vLLM may use.")
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs per model replica.")
    pipeline_parallel_size: int = Field(default=1, ge=1, description="Pipeline stages (across nodes with Ray).")
    distributed_executor_backend: Literal["mp", "ray"] | None = Field(
        default=None, description="vLLM's executor: 'ray' for multi-node serving; default: vLLM's choice."
    )
    cpu_kvcache_space_gib: int = Field(default=1, ge=1, description="KV cache size on CPU (GiB).")
    block_size: int | None = Field(default=None, ge=16, le=256, description=(
        "Tokens per KV-cache block, the prefix cache's unit (only full blocks are reused); default: vLLM's "
        "on GPUs (16), 32 on CPU (vLLM's 128 never reused a short prompt). On CPU a multiple of 32."))
    kv_cache_blocks: int | None = Field(default=None, ge=1, description=(
        "A fixed KV cache size in blocks (vLLM's num_gpu_blocks_override); default: what memory allows."))
    max_num_seqs: int = Field(default=64, ge=1, description="Most sequences the engine runs at once.")
    scheduling_policy: Literal["priority", "fcfs"] = Field(default="priority", description=(
        "How the engine orders its waiting requests: `priority` by each request's class (interactive before "
        "batch, then first come), `fcfs` first come first served."))
    batch_max_share: float = Field(default=0.5, gt=0, le=1, description=(
        "The share of the engine's sequences (max_num_seqs) that requests of batch-class keys may hold at "
        "once: the rest stays free for interactive work (past it, a batch request gets 429 batch_share_full)."))
    enforce_eager: bool = Field(default=True, description="Skip graph capture/compilation (faster start-up).")
    seed: int = Field(default=0, description="Engine seed.")

    # HTTP
    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to bind.")
    drain_timeout_s: float = Field(default=30.0, ge=0, description="On SIGTERM, wait this long for in-flight work.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")
    log_format: Literal["json", "text"] = Field(default="json", description="JSON lines or plain text logs.")
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    max_n: int = Field(default=16, ge=1, description="Largest n a request may ask for.")

    # security and limits (issue 8)
    auth_enabled: bool = Field(default=True, description="Require a bearer API key on /v1/* (off only explicitly).")
    auth_secret: str | None = Field(default=None, min_length=16, description="HMAC secret for key hashes; "
                                    "default: generated once into auth_secret_file.")
    auth_secret_file: str | None = Field(default=None, description="Where the generated HMAC secret lives; default: "
                                         "auth_secret beside store_path.")
    auth_cache_ttl_s: float = Field(default=10.0, ge=0, description="How long a verified key is cached (revocation "
                                    "takes effect within this).")
    redis_url: str | None = Field(default=None, description=(
        "Redis for rate limits shared by every replica (redis://host:6379/0); default: counted in this process."))
    metrics_require_key: bool = Field(default=False, description="Require an API key on /metrics too.")
    cors_allow_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (default: none).")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body accepted.")
    max_prompt_tokens: int | None = Field(default=None, ge=1, description="Longest prompt; default: the context.")
    max_tokens_limit: int | None = Field(default=None, ge=1, description="Largest max_tokens; default: the context.")
    max_queue: int = Field(default=64, ge=0, description="Engine sequences that may wait beyond max_num_seqs "
                           "running ones (a request holds n of them; a plan its width); past it, 429.")
    request_timeout_s: float = Field(default=300.0, gt=0, description="Deadline of one generation request (504).")
    max_plan_tokens: int = Field(default=32768, ge=1, description="Largest plan budget.max_tokens.")
    max_plan_candidates: int = Field(default=64, ge=1, description="Largest plan budget.max_candidates.")
    max_plan_depth: int = Field(default=4, ge=1, description="Largest plan budget.max_depth.")
    max_plan_deadline_s: float = Field(default=120.0, gt=0, description="Largest plan budget.deadline_s.")
    health_check_interval_s: float = Field(default=5.0, gt=0, description="How often the engine's health is polled.")
    warmup: bool = Field(default=True, description="Run two tiny generations (sampled, with log-probabilities) "
                         "before /ready, so that the first requests do not pay kernel compilation.")

    # outcomes and calibration (DESIGN §4)
    database_url: str | None = Field(
        default=None, description="Outcome store URL (postgresql://user:pass@host/db); default: SQLite at store_path."
    )
    store_path: str = Field(default="var/foresight.db", description="SQLite file of the embedded outcome store.")
    calibration_min_platt: int = Field(default=30, ge=2, description="Outcomes per domain before Platt scaling.")
    calibration_min_isotonic: int = Field(default=300, ge=2, description="Outcomes per domain before isotonic.")
    calibration_refit_interval_s: float = Field(
        default=2.0, ge=0, description="Refit a domain's map at most this often (background, never blocks requests)."
    )
    calibration_sync_interval_s: float = Field(default=3.0, gt=0, description=(
        "How often a replica looks for maps refitted by another replica (the store's map versions)."))
    plan_retention_days: float = Field(default=30.0, gt=0, description=(
        "How long a plan's audit detail (request, candidate tree) is kept; older plans are purged."))
    plan_purge_interval_s: float = Field(default=3600.0, gt=0, description="How often the retention purge runs.")
    usage_flush_interval_s: float = Field(default=10.0, gt=0, description=(
        "How often usage and cost per key are added to the store (and attributed)."))
    max_plan_record_bytes: int = Field(default=262_144, ge=4096, description=(
        "Largest audit record of one plan; larger trees are stored truncated and say so."))

    @field_validator("model")
    @classmethod
    def _model_exists(cls, v: str) -> str:
        from catalog.errors import CatalogError
        from catalog.known import resolve

        path = Path(v).expanduser()
        if not path.exists():
            try:
                added = resolve(v)
            except CatalogError as exc:
                raise ValueError(str(exc)) from None
            if added is not None:
                return str(added.resolve())
            raise ValueError(f"no checkpoint at {v!r}: give a directory with config.json")
        if path.is_dir() and not (path / "config.json").exists():
            raise ValueError(f"{v!r} has no config.json: is it a Hugging Face checkpoint directory?")
        return str(path.resolve())

    # total cost of ownership (server/tco.py; defaults are list-price ballparks: override them)
    tco_hardware_price: float = Field(default=30000.0, ge=0, description="Price of one accelerator (currency).")
    tco_accelerators: int = Field(default=1, ge=1, description="Accelerators serving this replica.")
    tco_service_life_years: float = Field(default=4.0, gt=0, description="Years the hardware is amortized over.")
    tco_power_watts: float = Field(default=350.0, ge=0, description="Board power per accelerator when estimated.")
    tco_pue: float = Field(default=1.4, ge=1, description="Data-centre power usage effectiveness.")
    tco_electricity_price_per_kwh: float = Field(default=0.15, ge=0, description="Electricity price per kWh.")
    tco_currency: str = Field(default="USD", min_length=1, max_length=8, description="Currency of the prices.")
    tco_window_s: float = Field(default=300.0, gt=0, description="Window of cost per 1k tokens / per decision.")
    power_source: Literal["auto", "nvml", "estimated"] = Field(
        default="auto", description="Energy from NVML (auto: when a GPU is present) or estimated from busy time."
    )
    monitor_interval_s: float = Field(default=1.0, gt=0, description="How often energy and cost are sampled.")

    @model_validator(mode="after")
    def _calibration_thresholds(self) -> Settings:
        if self.calibration_min_isotonic < self.calibration_min_platt:
            raise ValueError("calibration_min_isotonic must be at least calibration_min_platt")
        return self

    @model_validator(mode="after")
    def _adapter_names(self) -> Settings:
        for name in self.adapters:
            if not name or name != name.strip() or "/" in name:
                raise ValueError(f"adapter name {name!r}: a non-empty name without slashes or surrounding spaces")
            if name == self.model_name:
                raise ValueError(f"adapter name {name!r} is the base's own served name")
        if self.adapters:
            self.adapters = {name: _adapter_path(name, path, self.model) for name, path in self.adapters.items()}
        if self.default_model is not None and self.default_model not in (self.model_name, *self.adapters):
            raise ValueError(f"default_model {self.default_model!r} is neither the base ({self.model_name!r}) "
                             f"nor one of the adapters ({', '.join(self.adapters) or 'none'})")
        return self

    @property
    def lora(self) -> bool:
        """Whether the engine starts with LoRA."""
        return self.enable_lora or bool(self.adapters)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: str | None) -> str | None:
        if v and not v.startswith(("redis://", "rediss://", "redis+unix://")):
            raise ValueError("must start with redis://, rediss:// or redis+unix://")
        return v or None

    @property
    def secret_path(self) -> Path:
        return Path(self.auth_secret_file) if self.auth_secret_file else Path(self.store_path).parent / "auth_secret"

    @property
    def store_url(self) -> str:
        from server.store.db import default_url, normalize_url

        return normalize_url(self.database_url) if self.database_url else default_url(self.store_path)

    @property
    def model_name(self) -> str:
        return self.served_model_name or Path(self.model).name


def _adapter_path(name: str, path: str, base: str) -> str:
    """An adapter's directory, checked to be a LoRA adapter trained on ``base`` (resolved to an absolute path)."""
    from catalog.adapters import check_adapter
    from catalog.errors import CatalogError

    p = Path(path).expanduser()
    if not p.is_dir():
        raise ValueError(f"adapter {name!r}: no directory at {path!r}")
    try:
        check_adapter(p, base)
    except CatalogError as exc:
        raise ValueError(f"adapter {name!r}: {exc}") from None
    return str(p.resolve())


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a YAML, JSON or TOML file (keys are the setting names)."""
    p = Path(path)
    if not p.is_file():
        raise SettingsError(f"config file {str(p)!r} does not exist")
    text = p.read_text()
    try:
        if p.suffix == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text) or {}
    except Exception as exc:
        raise SettingsError(f"config file {str(p)!r} cannot be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"config file {str(p)!r} must hold a mapping of setting names to values")
    return data


def _describe(err: Any) -> str:
    name = ".".join(str(x) for x in err.get("loc", ())) or "settings"
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        allowed = ", ".join(sorted(Settings.model_fields))
        return f"unknown setting {name!r} (known settings: {allowed})"
    shown = "(hidden)" if "secret" in name or "database_url" in name else repr(err.get("input"))
    return f"{name} (env {ENV_PREFIX}{name.upper()}): {msg}; got {shown}"


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings from flags (``overrides``), the environment and a config file."""
    file_values = read_config_file(config_file) if config_file else {}
    from_env = {name for name in Settings.model_fields if f"{ENV_PREFIX}{name.upper()}" in os.environ}
    merged = {k: v for k, v in file_values.items() if k not in from_env}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(_describe(e) for e in exc.errors())) from exc
