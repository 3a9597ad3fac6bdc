"""`foresight plan`'s options are checked before a server is asked or an engine is loaded."""

from __future__ import annotations

import pytest

from foresight.cli import build_parser


def test_plan_options_default_and_pass_through() -> None:
    from foresight.plan import _body

    args = build_parser().parse_args(["plan", "--prompt-file", "p.txt", "--algorithm", "lookahead",
                                      "--discount", "0.85", "--width", "16", "--root-rounds", "3"])
    body = _body(args, "obs")
    assert (body["discount"], body["width"], body["algorithm"], body["prompt"], body["root_rounds"]) == (
        0.85, 16, "lookahead", "obs", 3)
    nothing = _body(build_parser().parse_args(["plan", "--prompt-file", "p.txt"]), "obs")
    assert nothing == {"prompt": "obs"}  # the server fills in the model's and the algorithm's defaults
    # a flag given at the knob's own default is still sent: the algorithm's default must not replace it
    same = _body(build_parser().parse_args(["plan", "--prompt-file", "p.txt", "--width", "4",
                                            "--max-candidates", "16"]), "obs")
    assert same == {"prompt": "obs", "width": 4, "budget": {"max_candidates": 16}}


@pytest.mark.parametrize(("flag", "bad", "why"), [
    ("--discount", "1.5", "must be in [0, 1]"), ("--discount", "high", "not a number"),
    ("--commit-threshold", "-0.1", "must be in [0, 1]"), ("--width", "0", "must be at least 1"),
    ("--max-tokens", "many", "not a whole number"), ("--max-depth", "0", "must be at least 1"),
    ("--root-rounds", "0", "must be at least 1"),
])
def test_bad_plan_options_are_cli_errors_naming_the_option(flag: str, bad: str, why: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["plan", "--prompt-file", "p.txt", flag, bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and why in err
