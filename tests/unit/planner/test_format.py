"""The turn parser: a golden corpus of well-formed and malformed turns, and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import Action, Turn, parse_confidence, parse_turn, render_turn

CLEAN = (
    "<imaginary>*3 21, +2 23</imaginary>\n<keyword>reach, target</keyword>\n<analysis>need 2 more</analysis>\n"
    "<confidence>85%</confidence>\n<think>go</think>\n"
    '<tool_call>{"name": "apply", "arguments": {"op": "*3"}}</tool_call>'
)


def test_clean_turn() -> None:
    t = parse_turn(CLEAN)
    assert t.problems == ()
    assert t.imaginary == "*3 21, +2 23"
    assert t.keywords == ("reach", "target")
    assert t.analysis == "need 2 more"
    assert t.confidence == 0.85
    assert t.think == "go"
    assert t.action == Action("tool_call", '{"name": "apply", "arguments": {"op": "*3"}}', "apply", {"op": "*3"})


@pytest.mark.parametrize(
    ("text", "value"),
    [("95%", 0.95), ("95", 0.95), ("0.95", 0.95), ("95 %", 0.95), ("95％", 0.95), ("~90%", 0.9),
     ("90-95%", 0.925), (">90%", 0.9), ("150%", 1.0), ("1", 1.0), ("0", 0.0), ("about 70 percent", 0.7),
     ("60% then 80%", 0.8), ("０．５", 0.5), ("nothing", None), ("", None), (".5", 0.5)],
)
def test_confidence_spellings(text: str, value: float | None) -> None:
    got = parse_confidence(text)
    assert got == pytest.approx(value) if value is not None else got is None


@pytest.mark.parametrize(("written", "problem"), [("150%", True), ("100%", False), ("250", True), ("0.95", False)])
def test_a_confidence_above_100_percent_is_clamped_and_reported(written: str, problem: bool) -> None:
    t = parse_turn(f"<imaginary>a</imaginary><confidence>{written}</confidence><search>q</search>")
    assert t.confidence is not None and 0.0 <= t.confidence <= 1.0
    assert ("confidence_out_of_range" in t.problem_kinds) is problem
    assert t.confidence == (1.0 if problem else parse_confidence(written))


GOLDEN: list[tuple[str, dict[str, object]]] = [
    # aliases and spelling variants: accepted, not problems
    ("<rollout>r</rollout><success>70%</success><answer>42</answer>",
     {"imaginary": "r", "confidence": 0.7, "action": ("answer", "42"), "problems": []}),
    ("<simulation>s</simulation><confidence>0.6</confidence><search>q</search>",
     {"imaginary": "s", "confidence": 0.6, "action": ("search", "q"), "problems": []}),
    ("< Imaginary >x</ IMAGINARY >< Confidence >55%</confidence ><search>q</search>",
     {"imaginary": "x", "confidence": 0.55, "problems": []}),
    ("## World Model Simulation\nthe door opens\n**Confidence:** 85%.\n<answer>a</answer>",
     {"imaginary": "the door opens", "confidence": 0.85, "problems": []}),
    ("<imaginary>i</imaginary>\n**confidence** 90%\n<search>q</search>",
     {"confidence": 0.9, "problems": []}),
    # malformations: reported, never raised
    ("<imaginary>*3 21, +2", {"imaginary": "*3 21, +2", "confidence": None,
                              "problems": ["truncated", "missing_confidence", "missing_action"]}),
    ("<imaginary>a</imaginary><confidence>8", {"confidence": None, "problems": ["truncated", "missing_action"]}),
    ("<imaginary>a<confidence>70%</confidence><search>q</search>",
     {"imaginary": "a", "confidence": 0.7, "problems": ["unclosed_tag"]}),
    ("hello <imaginary>a</imaginary><confidence>70%</confidence><search>q</search> bye",
     {"confidence": 0.7, "problems": ["text_outside_tags"]}),
    ("<imaginary>a</imaginary><confidence>20%</confidence><imaginary>b</imaginary><confidence>60%</confidence>"
     "<search>q</search>", {"imaginary": "b", "confidence": 0.6, "problems": ["duplicate_block", "duplicate_block"]}),
    ("<imaginary>a</imaginary><confidence>70%</confidence><search>q</search><answer>b</answer>",
     {"action": None, "problems": ["multiple_actions"]}),
    ("<imaginary>a</imaginary><confidence>70%</confidence><search>q</search><information>fake</information>"
     "<answer>b</answer>", {"action": ("search", "q"), "problems": ["self_written_information"]}),
    ("<imaginary>a</imaginary><confidence>70%</confidence><tool_call>{not json</tool_call>",
     {"action": ("tool_call", "{not json"), "problems": ["invalid_tool_call"]}),
    ("<imaginary>a</imaginary><confidence>high</confidence><answer>x</answer>",
     {"confidence": None, "problems": ["unparsable_confidence"]}),
    ("", {"imaginary": None, "problems": ["missing_confidence", "missing_imaginary", "missing_action"]}),
    ("<imaginary>a</imaginary></think><confidence>1%</confidence><answer>x</answer>",
     {"confidence": 0.01, "problems": ["stray_closing_tag"]}),
]


@pytest.mark.parametrize(("text", "expected"), GOLDEN)
def test_golden_corpus(text: str, expected: dict[str, object]) -> None:
    t = parse_turn(text)
    for key, want in expected.items():
        if key == "problems":
            assert sorted(t.problem_kinds) == sorted(want), t.problems  # type: ignore[arg-type]
        elif key == "action":
            got = None if t.action is None else (t.action.kind, t.action.content)
            assert got == want
        else:
            assert getattr(t, key) == want, (key, t)


def test_render_round_trip() -> None:
    t = parse_turn(CLEAN)
    assert parse_turn(render_turn(t)) == t


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_text_never_raises(text: str) -> None:
    t = parse_turn(text)
    assert isinstance(t, Turn)
    assert t.confidence is None or 0.0 <= t.confidence <= 1.0


TAGS = ["<imaginary>", "</imaginary>", "<confidence>", "</confidence>", "<think>", "</think>", "<search>",
        "</search>", "<information>", "<answer>", "</answer>", "< Tool_Call >", "**Confidence:**", "## Rollout\n"]


@given(st.lists(st.one_of(st.sampled_from(TAGS), st.text(max_size=12)), max_size=25))
@settings(max_examples=300, deadline=None)
def test_tag_soup_never_raises(parts: list[str]) -> None:
    t = parse_turn("".join(parts))
    assert t.confidence is None or 0.0 <= t.confidence <= 1.0


@given(st.integers(min_value=0, max_value=len(CLEAN)))
def test_truncations_of_a_valid_turn_never_raise(cut: int) -> None:
    t = parse_turn(CLEAN[:cut])
    if cut < len(CLEAN):
        assert t.problems  # an incomplete turn is never clean
    else:
        assert not t.problems


safe_text = st.text(alphabet=st.characters(blacklist_characters="<>#*\n", blacklist_categories=("Cs",)),
                    min_size=1, max_size=30).map(str.strip).filter(lambda s: bool(s) and ":" not in s)


@given(imaginary=safe_text, think=safe_text, content=safe_text,
       pct=st.integers(min_value=0, max_value=100), kind=st.sampled_from(["search", "answer"]))
@settings(max_examples=200, deadline=None)
def test_well_formed_turns_round_trip(imaginary: str, think: str, content: str, pct: int, kind: str) -> None:
    text = (f"<imaginary>{imaginary}</imaginary>\n<confidence>{pct}%</confidence>\n<think>{think}</think>\n"
            f"<{kind}>{content}</{kind}>")
    t = parse_turn(text)
    assert t.problems == ()
    assert t.confidence == pytest.approx(pct / 100)
    assert parse_turn(render_turn(t)) == t
    assert render_turn(t) == text


def test_problem_kinds_lists_every_kind_the_parser_reports() -> None:
    import re
    from pathlib import Path

    from planner.format import PROBLEM_KINDS

    source = Path(__file__).resolve().parents[3].joinpath("planner", "format.py").read_text()
    assert set(re.findall(r'Problem\("([a-z_]+)"', source)) == set(PROBLEM_KINDS)
