"""The foresight turn format (DESIGN §2): a tolerant parser and a canonical renderer.

``parse_turn`` never raises on model text: whatever it cannot make sense of is
reported in ``Turn.problems``. Accepted variants (tag aliases, markdown forms,
odd spacing or case) are not problems; they are listed in ``Turn.variants``.

Pure Python: no torch, no vllm.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

ActionKind = Literal["search", "answer", "tool_call"]
ACTION_KINDS: tuple[ActionKind, ...] = ("search", "answer", "tool_call")
CONFIDENCE_STOP = "</confidence>"
ACTION_STOPS = ("</search>", "</answer>", "</tool_call>")

# canonical name for every accepted tag spelling (lower case, no spaces, '-' or '_')
_ALIASES: dict[str, str] = {
    "imaginary": "imaginary",
    "imagine": "imaginary",
    "rollout": "imaginary",
    "simulation": "imaginary",
    "worldmodel": "imaginary",
    "keyword": "keyword",
    "keywords": "keyword",
    "analysis": "analysis",
    "confidence": "confidence",
    "success": "confidence",
    "think": "think",
    "thinking": "think",
    "search": "search",
    "answer": "answer",
    "toolcall": "tool_call",
    "information": "information",
}
_TAG_RE = re.compile(r"<\s*(/)?\s*([A-Za-z][A-Za-z_\- ]{0,30}?)\s*>")
_CONF_NUM_RE = re.compile(
    r"(?P<a>\d+(?:\.\d+)?|\.\d+)\s*(?:(?:-|–|—|to)\s*(?P<b>\d+(?:\.\d+)?))?\s*(?P<pct>%|percent)?",
    re.IGNORECASE,
)
_HEADING_RE = re.compile(r"^\s*#{1,6}\s*(?P<title>[^\n#]*?)\s*:?\s*$")
_HEADING_TITLES: dict[str, str] = {
    "world model simulation": "imaginary",
    "world model": "imaginary",
    "world-model simulation": "imaginary",
    "imaginary": "imaginary",
    "rollout": "imaginary",
    "simulation": "imaginary",
    "keywords": "keyword",
    "keyword": "keyword",
    "analysis": "analysis",
    "confidence": "confidence",
    "success": "confidence",
    "think": "think",
    "thinking": "think",
    "reasoning": "think",
}
_BOLD_CONF_RE = re.compile(
    r"\*\*\s*(?:confidence|success)\s*:?\s*\*\*\s*:?\s*(?P<v>[^\n<]*)", re.IGNORECASE
)
_PLAIN_CONF_RE = re.compile(r"(?m)^\s*(?:confidence|success)\s*:\s*(?P<v>[^\n<]*)$", re.IGNORECASE)


# every kind of Problem the parser reports (metrics pre-create a zero series for each)
PROBLEM_KINDS = (
    "confidence_out_of_range",
    "duplicate_block",
    "invalid_tool_call",
    "missing_action",
    "missing_confidence",
    "missing_imaginary",
    "multiple_actions",
    "parser_error",
    "self_written_information",
    "stray_closing_tag",
    "text_outside_tags",
    "truncated",
    "unclosed_tag",
    "unparsable_confidence",
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a generated turn."""

    kind: str
    detail: str = ""


@dataclass(frozen=True)
class Action:
    """The one action a turn ends with."""

    kind: ActionKind
    content: str
    name: str | None = None
    arguments: Any = None


@dataclass(frozen=True)
class Turn:
    """A parsed foresight turn: world-model span, policy span, action, problems."""

    imaginary: str | None = None
    keywords: tuple[str, ...] = ()
    analysis: str | None = None
    confidence: float | None = None
    confidence_text: str | None = None
    think: str | None = None
    action: Action | None = None
    problems: tuple[Problem, ...] = ()
    variants: tuple[str, ...] = field(default=(), compare=False)

    @property
    def problem_kinds(self) -> list[str]:
        return [p.kind for p in self.problems]

    @property
    def is_valid(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- confidence


def parse_confidence(text: str) -> float | None:
    """A probability from any accepted spelling; the last value wins; None if none.

    ``95%``, ``95``, ``0.95``, ``95 %``, ``95％``, ``~90%``, ``90-95%`` (midpoint),
    ``>90%``. Values above 1 are percentages; the result is clamped to [0, 1].
    """
    value = _written_probability(text)
    return None if value is None else min(1.0, max(0.0, value))


def _written_probability(text: str) -> float | None:
    """The probability as written, before clamping (``150%`` → 1.5)."""
    norm = unicodedata.normalize("NFKC", text)
    matches = list(_CONF_NUM_RE.finditer(norm))
    if not matches:
        return None
    m = matches[-1]
    try:
        a = float(m.group("a"))
        value = (a + float(m.group("b"))) / 2 if m.group("b") else a
    except ValueError:
        return None
    if m.group("pct") or value > 1.0:
        value /= 100.0
    return value


def format_confidence(p: float) -> str:
    """Canonical spelling: an integer percent when exact, else one decimal."""
    pct = round(p * 100, 1)
    return f"{int(pct)}%" if pct == int(pct) else f"{pct}%"


# --------------------------------------------------------------------------- normalising


def _canon(name: str) -> str | None:
    return _ALIASES.get(re.sub(r"[\s_\-]", "", name.lower()))


def _markdown_to_tags(text: str, variants: list[str]) -> str:
    """Rewrite markdown headings and bold labels into canonical tags."""
    lines = text.split("\n")
    out: list[str] = []
    section: str | None = None
    body: list[str] = []

    def flush() -> None:
        if section is not None:
            out.append(f"<{section}>" + "\n".join(body).strip() + f"</{section}>")

    for line in lines:
        h = _HEADING_RE.match(line)
        starts_tag = line.lstrip().startswith("<") or bool(
            _BOLD_CONF_RE.search(line) or _PLAIN_CONF_RE.search(line)
        )
        if h or (section is not None and starts_tag):
            flush()
            section, body = None, []
            title = h.group("title").strip().strip("*").lower() if h else ""
            if h and title in _HEADING_TITLES:
                section = _HEADING_TITLES[title]
                variants.append(f"markdown_heading:{section}")
                continue
            if h:
                out.append(line)
                continue
        if section is not None:
            body.append(line)
        else:
            out.append(line)
    flush()
    text = "\n".join(out)
    if "<confidence>" not in text:
        for regex in (_BOLD_CONF_RE, _PLAIN_CONF_RE):
            if regex.search(text):
                variants.append("markdown_confidence")
                text = regex.sub(lambda m: f"<confidence>{m.group('v').strip()}</confidence>", text)
                break
    return text


def _normalise_tags(text: str, variants: list[str]) -> str:
    """Canonical lower-case tag names; unknown tags are left as text."""

    def repl(m: re.Match[str]) -> str:
        canon = _canon(m.group(2))
        if canon is None:
            return m.group(0)
        written = m.group(0)
        rebuilt = f"<{'/' if m.group(1) else ''}{canon}>"
        if written != rebuilt:
            variants.append(f"tag:{written}")
        return rebuilt

    return _TAG_RE.sub(repl, text)


# --------------------------------------------------------------------------- scanning


@dataclass
class _Block:
    name: str
    content: str
    closed: bool


_CANON_TAG_RE = re.compile(r"<(/)?(" + "|".join(sorted(set(_ALIASES.values()))) + r")>")


def _scan(text: str, problems: list[Problem]) -> list[_Block]:
    """Split canonical-tagged text into blocks; unclosed tags end at the next tag."""
    blocks: list[_Block] = []
    open_name: str | None = None
    start = 0
    pos = 0
    outside: list[str] = []
    for m in _CANON_TAG_RE.finditer(text):
        closing, name = bool(m.group(1)), m.group(2)
        chunk = text[pos : m.start()]
        if open_name is None:
            outside.append(chunk)
        if closing:
            if open_name == name:
                blocks.append(_Block(name, text[start : m.start()], closed=True))
                open_name = None
            else:
                problems.append(Problem("stray_closing_tag", f"</{name}> without <{name}>"))
        else:
            if open_name is not None:
                blocks.append(_Block(open_name, text[start : m.start()], closed=False))
                problems.append(Problem("unclosed_tag", f"<{open_name}> is never closed"))
            open_name, start = name, m.end()
        pos = m.end()
    if open_name is not None:
        blocks.append(_Block(open_name, text[start:], closed=False))
        problems.append(Problem("truncated", f"<{open_name}> is cut off at the end of the text"))
    else:
        outside.append(text[pos:])
    stray = "".join(outside).strip()
    if stray:
        problems.append(Problem("text_outside_tags", stray[:80]))
    return blocks


def _cut_self_information(text: str, problems: list[Problem]) -> str:
    """Drop a model-written ``<information>`` and everything after it."""
    idx = text.find("<information>")
    if idx < 0:
        return text
    problems.append(Problem("self_written_information", "the model wrote its own <information>"))
    return text[:idx]


def _make_action(block: _Block, problems: list[Problem]) -> Action:
    kind: ActionKind = block.name  # type: ignore[assignment]
    content = block.content.strip()
    if kind != "tool_call":
        return Action(kind, content)
    try:
        payload = json.loads(content)
    except ValueError:
        problems.append(Problem("invalid_tool_call", "the tool call is not valid JSON"))
        return Action(kind, content)
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        problems.append(Problem("invalid_tool_call", "the tool call has no string 'name'"))
        return Action(kind, content, arguments=payload if isinstance(payload, dict) else None)
    return Action(kind, content, name=payload["name"], arguments=payload.get("arguments"))


_BLOCK_RE = re.compile(r"<\s*([A-Za-z][A-Za-z_\- ]{0,30}?)\s*>.*?(?:<\s*/\s*\1\s*>|$)", re.S | re.IGNORECASE)


def _canonical(name: str) -> str | None:
    return _ALIASES.get(re.sub(r"[\s_\-]", "", name.lower()))


def text_outside_tags(text: str) -> str:
    """What a turn says outside its foresight and action tags (an unclosed tag runs to the end), stripped."""
    return _BLOCK_RE.sub(lambda m: "" if _canonical(m.group(1)) else m.group(0), text).strip()


def parse_turn(text: str) -> Turn:
    """Parse one generated turn. Never raises on model text."""
    try:
        return _parse(text if isinstance(text, str) else str(text))
    except Exception as exc:  # pragma: no cover - a bug guard, the parser must not raise
        return Turn(problems=(Problem("parser_error", repr(exc)[:200]),))


def _parse(text: str) -> Turn:
    problems: list[Problem] = []
    variants: list[str] = []
    text = _normalise_tags(_markdown_to_tags(text, variants), variants)
    text = _cut_self_information(text, problems)
    blocks = _scan(text, problems)

    spans: dict[str, list[_Block]] = {}
    actions: list[_Block] = []
    for b in blocks:
        if b.name in ACTION_KINDS:
            actions.append(b)
        else:
            spans.setdefault(b.name, []).append(b)
    for name, found in spans.items():
        if len(found) > 1:
            problems.append(Problem("duplicate_block", f"<{name}> appears {len(found)} times"))

    def last(name: str) -> _Block | None:
        found = spans.get(name)
        return found[-1] if found else None

    imag, conf = last("imaginary"), last("confidence")
    confidence: float | None = None
    conf_text: str | None = None
    if conf is None:
        problems.append(Problem("missing_confidence", "no <confidence>"))
    else:
        conf_text = conf.content.strip()
        if not _is_truncated(conf, blocks):
            written = _written_probability(conf_text)
            confidence = None if written is None else min(1.0, max(0.0, written))
            if written is None:
                problems.append(Problem("unparsable_confidence", conf_text[:40]))
            elif written != confidence:  # e.g. 150%: clamped, and off-format
                problems.append(Problem("confidence_out_of_range", f"{conf_text[:40]} read as {confidence:g}"))
    if imag is None:
        problems.append(Problem("missing_imaginary", "no <imaginary> world-model span"))

    action: Action | None = None
    if not actions:
        problems.append(Problem("missing_action", "no <search>, <answer> or <tool_call>"))
    elif len(actions) > 1:
        problems.append(Problem("multiple_actions", f"{len(actions)} actions in one turn"))
    else:
        action = _make_action(actions[0], problems)

    kw = last("keyword")
    keywords = tuple(k.strip() for k in kw.content.split(",") if k.strip()) if kw else ()
    think, analysis = last("think"), last("analysis")
    return Turn(
        imaginary=imag.content.strip() if imag else None,
        keywords=keywords,
        analysis=analysis.content.strip() if analysis else None,
        confidence=confidence,
        confidence_text=conf_text,
        think=think.content.strip() if think else None,
        action=action,
        problems=tuple(problems),
        variants=tuple(variants),
    )


def _is_truncated(block: _Block, blocks: list[_Block]) -> bool:
    """Unclosed and running to the end of the text: cut off by max_tokens."""
    return not block.closed and blocks[-1] is block


# --------------------------------------------------------------------------- rendering


def render_world_model(turn: Turn) -> str:
    """The world-model span in canonical form, ending with ``</confidence>``."""
    parts: list[str] = []
    if turn.imaginary is not None:
        parts.append(f"<imaginary>{turn.imaginary}</imaginary>")
    if turn.keywords:
        parts.append(f"<keyword>{', '.join(turn.keywords)}</keyword>")
    if turn.analysis is not None:
        parts.append(f"<analysis>{turn.analysis}</analysis>")
    if turn.confidence_text is not None:
        parts.append(f"<confidence>{turn.confidence_text}</confidence>")
    elif turn.confidence is not None:
        parts.append(f"<confidence>{format_confidence(turn.confidence)}</confidence>")
    return "\n".join(parts)


def render_turn(turn: Turn) -> str:
    """Canonical text of a turn; ``parse_turn(render_turn(t)) == t`` for clean turns."""
    parts = [render_world_model(turn)] if render_world_model(turn) else []
    if turn.think is not None:
        parts.append(f"<think>{turn.think}</think>")
    if turn.action is not None:
        parts.append(f"<{turn.action.kind}>{turn.action.content}</{turn.action.kind}>")
    return "\n".join(parts)
