"""`foresight reference train`'s options are checked before any training starts."""

from __future__ import annotations

import pytest

from server.cli import build_parser


def test_ended_share_defaults_to_the_shipped_recipe_and_rejects_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["reference", "train"]).ended_share == 0.0
    assert parser.parse_args(["reference", "train", "--ended-share", "0.08"]).ended_share == 0.08
    for bad, why in (("1.5", "must be in [0, 1)"), ("abc", "not a number")):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["reference", "train", "--ended-share", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--ended-share" in err and why in err
