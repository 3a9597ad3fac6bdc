"""Calibration and evaluation traces for quantization: JSON lines in the foresight format. Pure Python.

A trace is one line holding a JSON object, in one of three shapes:

* ``{"prompt": "<information>…</information>", "completion": "<imaginary>…</imaginary>…<tool_call>…</tool_call>"}``
* ``{"text": "…the whole trace…"}``
* ``{"messages": [{"role": "user", "content": "…"}, {"role": "assistant", "content": "…"}]}``

A ``messages`` trace is rendered by the model's own chat template in the quantization worker (its last
message is the completion): a pretrained model is calibrated on the text its template makes.

Every calibration trace must contain at least one foresight turn (a ``<confidence>`` and an action,
DESIGN §2): GPTQ fits the weights to the activations it sees, so calibrating on text of another kind would
tune the model for that text instead. By default the reference environment's training-side turns
are used (:func:`reference_traces`); held-out turns measure the logit KL. Held-out sets may be any text
(``foresight=False``: a ``text`` record with no observation is all completion), each under a name.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from planner.format import parse_turn
from quantize.errors import BadTraces

MAX_ERRORS_SHOWN = 5
OBSERVATION_END = "</information>"


@dataclass(frozen=True)
class Trace:
    """One calibration or evaluation text, split where the model's own output starts."""

    prompt: str
    completion: str
    messages: tuple[dict[str, str], ...] | None = None  # rendered by the model's chat template when given

    @property
    def text(self) -> str:
        return self.prompt + self.completion

    def to_json(self) -> str:
        if self.messages is not None:
            return json.dumps({"messages": list(self.messages)})
        return json.dumps({"prompt": self.prompt, "completion": self.completion})


def _from_record(obj: object) -> Trace:
    if not isinstance(obj, dict):
        raise ValueError("is not a JSON object")
    if isinstance(obj.get("prompt"), str) and isinstance(obj.get("completion"), str):
        return Trace(obj["prompt"], obj["completion"])
    if isinstance(obj.get("text"), str):  # the model's part starts after the last observation
        text = obj["text"]
        cut = text.rfind(OBSERVATION_END)
        cut = cut + len(OBSERVATION_END) if cut >= 0 else 0
        cut += len(text[cut:]) - len(text[cut:].lstrip("\n"))
        return Trace(text[:cut], text[cut:])
    msgs = obj.get("messages")
    if isinstance(msgs, list) and msgs:
        if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in msgs):
            raise ValueError("has a message without string 'content'")
        *head, last = msgs
        return Trace("\n".join(m["content"] for m in head) + ("\n" if head else ""), last["content"],
                     tuple({"role": str(m.get("role", "user")), "content": m["content"]} for m in msgs))
    raise ValueError("has none of 'prompt'+'completion', 'text' or 'messages'")


def check_trace(trace: Trace) -> str | None:
    """Why a trace is unusable for calibration, or None."""
    if not trace.completion.strip():
        return "is empty" if not trace.text.strip() else "has nothing after its last observation"
    turn = parse_turn(trace.completion)
    if turn.confidence is None and turn.action is None:
        return "holds no foresight turn (no <confidence> and no action tag)"
    return None


def parse_traces(lines: Iterable[str], source: str = "<traces>", foresight: bool = True) -> list[Trace]:
    """Traces from JSON lines; blank lines are skipped, anything else malformed is refused by line number.
    ``foresight``: each must hold a foresight turn (calibration); else any non-empty text (held-out sets)."""
    traces: list[Trace] = []
    errors: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            trace = _from_record(json.loads(line))
            why = check_trace(trace) if foresight else (None if trace.completion.strip() else "has no text")
            if why:
                raise ValueError(why)
            traces.append(trace)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            errors.append(f"line {number} {exc}")
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise BadTraces(f"{source}: {len(errors)} malformed trace(s): {shown}{more}")
    if not traces:
        raise BadTraces(f"{source} holds no traces (one JSON object per line: prompt+completion, text or messages)")
    return traces


def read_traces(path: str | Path, foresight: bool = True) -> list[Trace]:
    p = Path(path)
    if not p.is_file():
        raise BadTraces(f"trace file {str(p)!r} does not exist")
    try:
        with p.open(encoding="utf-8") as fh:
            return parse_traces(fh, str(p), foresight)
    except UnicodeDecodeError as exc:
        raise BadTraces(f"{p} is not UTF-8 text: {exc}") from exc


def write_traces(traces: Iterable[Trace], path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for t in traces:
            fh.write(t.to_json() + "\n")


def named_heldout(spec: str) -> tuple[str, list[Trace]]:
    """``NAME=FILE`` (or ``FILE``: named by its stem) → the named held-out set, any text."""
    name, sep, path = spec.partition("=")
    if not sep or "/" in name or Path(spec).is_file():  # a path that holds '=' is a path
        name, path = Path(spec).stem, spec
    if not name.strip():
        raise BadTraces(f"--heldout {spec!r}: the name before '=' is empty")
    return name.strip(), read_traces(path, foresight=False)


def as_chat(traces: Iterable[Trace]) -> list[Trace]:
    """Turns as a user message (the observation) and the assistant's answer: for a model's own chat template."""
    return [Trace(t.prompt, t.completion, ({"role": "user", "content": t.prompt.strip()},
                                           {"role": "assistant", "content": t.completion})) for t in traces]


def reference_traces(count: int, seed: int, heldout: bool) -> list[Trace]:
    """Whole turns of the reference environment (its training or held-out side)."""
    from reference import data

    rng = random.Random(seed)
    states = data.visited_states(rng, heldout=heldout)
    out = []
    for _ in range(count):
        state = next(states)
        ex = data.make_turn(state, data.sample_plan(state, rng))
        out.append(Trace(ex.prompt, ex.completion))
    return out
