"""The quality report ``foresight quantize`` writes beside the checkpoint and prints. Pure Python.

Sizes (whole directory, weights, and the quantized layers against the same layers in 16 bits),
the logit KL on held-out traces, and foresight quality on the reference evaluation for the
original and the quantized model side by side.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quantize.sizes import CheckpointSize

REPORT_JSON = "quantization_report.json"
REPORT_MD = "quantization_report.md"
QUALITY_ROWS = (
    ("format_validity", "format validity", "{:.3f}"),
    ("confidence_brier", "confidence Brier", "{:.4f}"),
    ("rollout_accuracy", "rollout accuracy", "{:.3f}"),
    ("next_state_accuracy", "next-state accuracy", "{:.3f}"),
    ("success_model_greedy", "task success (greedy)", "{:.3f}"),
    ("success_model_best_of_n", "task success (best-of-N)", "{:.3f}"),
)


@dataclass
class Quality:
    """Foresight quality of one checkpoint on the reference evaluation (held-out states and episodes)."""

    dtype: str
    format_validity: float
    confidence_brier: float
    rollout_accuracy: float
    next_state_accuracy: float
    success_model_greedy: float
    success_model_best_of_n: float

    @classmethod
    def from_eval(cls, dtype: str, result: dict[str, Any]) -> Quality:
        t, s = result["turns"], result["success"]
        return cls(dtype, t["format_validity"], t["confidence_brier"], t["rollout_accuracy"],
                   t["next_state_accuracy"], s.get("model_greedy", float("nan")),
                   s.get("model_best_of_n", float("nan")))


@dataclass
class QuantReport:
    model: str
    out: str
    scheme: str
    group_size: int
    dtype: str
    left_16bit: list[str]
    original: CheckpointSize
    quantized: CheckpointSize
    worker: dict[str, Any]
    eval_episodes: int = 0
    eval_states: int = 0
    quality_original: Quality | None = None
    quality_quantized: Quality | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def weight_ratio(self) -> float:
        """Original weight files over quantized weight files (as stored on disk)."""
        return self.original.weight_bytes / max(self.quantized.weight_bytes, 1)

    @property
    def ratio_vs_16bit(self) -> float:
        """The same parameters in 16 bits over the quantized weight files."""
        return self.original.bytes_16bit / max(self.quantized.weight_bytes, 1)

    @property
    def layer_ratio(self) -> float:
        """The quantized layers in 16 bits over their packed weights and scales."""
        return self.quantized.quantized_layer_params * 2 / max(self.quantized.quantized_layer_bytes, 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratios"] = {"weights_on_disk": self.weight_ratio, "weights_vs_16bit": self.ratio_vs_16bit,
                       "quantized_layers_vs_16bit": self.layer_ratio}
        return d

    def markdown(self) -> str:
        mb = 1e6
        w = self.worker
        lines = [
            f"# Quantization report: {self.scheme} group {self.group_size}",
            "",
            f"- original: `{self.model}`; quantized: `{self.out}` "
            f"({w.get('quant_method')}, cast to {self.dtype} first)",
            f"- calibration: {w.get('calibration_traces')} traces, {w.get('calibration_tokens')} tokens; "
            f"GPTQ {w.get('gptq_seconds')} s",
        ]
        if self.left_16bit:
            lines.append(f"- left 16-bit (input width not a multiple of {self.group_size}): "
                         + ", ".join(self.left_16bit))
        lines += [
            "",
            "| size | original | quantized | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| directory | {self.original.dir_bytes / mb:.2f} MB | {self.quantized.dir_bytes / mb:.2f} MB | "
            f"{self.original.dir_bytes / max(self.quantized.dir_bytes, 1):.2f}× |",
            f"| weights on disk | {self.original.weight_bytes / mb:.2f} MB | {self.quantized.weight_bytes / mb:.2f} MB"
            f" | {self.weight_ratio:.2f}× |",
            f"| weights vs the 16-bit cast | {self.original.bytes_16bit / mb:.2f} MB | "
            f"{self.quantized.weight_bytes / mb:.2f} MB | {self.ratio_vs_16bit:.2f}× |",
            f"| quantized layers vs 16-bit | {self.quantized.quantized_layer_params * 2 / mb:.2f} MB | "
            f"{self.quantized.quantized_layer_bytes / mb:.2f} MB | {self.layer_ratio:.2f}× |",
            "",
            f"Logit KL(original ‖ quantized) on {w.get('heldout_traces')} held-out traces "
            f"({int(w.get('kl_tokens', 0))} completion tokens): mean {w.get('kl_mean', float('nan')):.5f} nats, "
            f"max {w.get('kl_max', float('nan')):.4f}; top-1 agreement {w.get('top1_agreement', float('nan')):.3f}.",
        ]
        lines += self._heldout_table()
        if self.quality_original and self.quality_quantized:
            o, q = asdict(self.quality_original), asdict(self.quality_quantized)
            lines += [
                "",
                f"Foresight quality on the reference evaluation ({self.eval_states} held-out states, "
                f"{self.eval_episodes} held-out episodes, through vLLM):",
                "",
                f"| metric | original ({o['dtype']}) | quantized ({q['dtype']}) | change |",
                "| --- | ---: | ---: | ---: |",
            ]
            for key, label, fmt in QUALITY_ROWS:
                lines.append(f"| {label} | {fmt.format(o[key])} | {fmt.format(q[key])} | "
                             f"{q[key] - o[key]:+.4f} |")
        else:
            lines += ["", "Foresight quality: not evaluated (--eval-episodes 0)."]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def _heldout_table(self) -> list[str]:
        """Per named held-out set: KL, top-1 agreement and both models' perplexity on its completion tokens."""
        sets = [s for s in self.worker.get("heldout_sets") or [] if "perplexity_original" in s]
        if not sets:
            return []
        rows = ["", "| held-out set | traces | tokens | KL mean (nats) | top-1 agreement | perplexity original | "
                "perplexity quantized |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for s in sets:
            rows.append(f"| {s['name']} | {s['traces']} | {int(s['kl_tokens'])} | {s['kl_mean']:.5f} | "
                        f"{s['top1_agreement']:.3f} | {s['perplexity_original']:.3f} | "
                        f"{s['perplexity_quantized']:.3f} |")
        return rows

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        d = Path(out_dir)
        js, md = d / REPORT_JSON, d / REPORT_MD
        js.write_text(json.dumps(self.to_dict(), indent=2))
        md.write_text(self.markdown())
        return js, md
