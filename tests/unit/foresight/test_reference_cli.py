"""`foresight reference train`'s options are checked before any training starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foresight.cli import build_parser

REPO = Path(__file__).resolve().parents[3]


def test_eval_temperature_and_split_default_to_the_acceptance_setting_and_reject_bad_values(
        capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["reference", "eval"])
    assert (args.temperature, args.split) == (1.0, "heldout")
    args = parser.parse_args(["reference", "eval", "--temperature", "0.7", "--split", "train"])
    assert (args.temperature, args.split) == (0.7, "train")
    for flag, bad, why in (("--temperature", "0", "must be in (0, 2]"), ("--temperature", "2.5", "must be in (0, 2]"),
                           ("--temperature", "hot", "not a number"), ("--split", "test", "invalid choice")):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["reference", "eval", flag, bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert flag in err and why in err


def test_eval_planners_are_named_configurations(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["reference", "eval"]).planners == []
    args = parser.parse_args(["reference", "eval", "--planners", "branch_commit", "lookahead"])
    assert args.planners == ["branch_commit", "lookahead"]
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["reference", "eval", "--planners", "mcts"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--planners" in err and "unknown planner 'mcts'" in err and "lookahead" in err


def test_table_shows_planner_rows_with_their_tokens() -> None:
    import io

    from foresight.reference import print_table
    from reference.evaluate import EvalResult, TurnMetrics

    result = EvalResult(model="m", seed=0, turns=TurnMetrics(), episodes=10, best_of_n=8,
                        success={"model_best_of_n": 0.5, "planner_lookahead": 0.8},
                        planner_tokens={"lookahead": 3469.0})
    out = io.StringIO()
    print_table(result, out)
    lines = out.getvalue().splitlines()
    assert any("model best-of-8" in line and "0.500" in line and "tokens" not in line for line in lines)
    assert any("planner lookahead" in line and "0.800" in line and "3469 tokens/decision" in line for line in lines)


def test_steps_default_to_the_shipped_recipe_and_reject_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    from reference.train import TrainConfig

    parser = build_parser()
    assert parser.parse_args(["reference", "train"]).steps is None
    shipped = json.loads((REPO / "models" / "foresight-numberreach" / "training.json").read_text())
    assert list(TrainConfig().stage_steps) == shipped["config"]["stage_steps"]  # what None trains
    assert parser.parse_args(["reference", "train", "--steps", "400,2000,600"]).steps == (400, 2000, 600)
    for bad in ("400,0,600", "a,b,c", "400,-1,600", "1,2,3,4"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["reference", "train", "--steps", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--steps" in err and "positive step count per stage" in err
    args = parser.parse_args(["reference", "train", "--steps", "400,4000"])
    with pytest.raises(SystemExit, match="three step counts"):  # a model from scratch has three stages
        args.func(args)


def test_train_base_runs_the_stages_asked_into_one_adapter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import reference.lora

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    seen = []
    monkeypatch.setattr(reference.lora, "train_adapter", lambda cfg, out: seen.append((cfg, out)))
    parser = build_parser()
    args = parser.parse_args(["reference", "train", "--base", str(base), "--stages", "wm,fe", "--steps", "5,7",
                              "--out", str(tmp_path / "a"), "--skip-check", "--rank", "8"])
    assert args.func(args) == 0
    cfg, out = seen[0]
    assert (cfg.stages, cfg.steps, cfg.rank, cfg.base, out) == (("wm", "fe"), (5, 7), 8, str(base), tmp_path / "a")
    args = parser.parse_args(["reference", "train", "--base", str(base), "--stages", "fe", "--skip-check"])
    args.func(args)
    assert seen[-1][0].steps == (100,)  # the default budget of each stage asked
    for argv, why in ((["--stages", "fe,wm"], "in the order"), (["--stages", "wm,fe", "--steps", "5"], "2 stages"),
                      (["--stages", "fe,fe"], "each once")):
        args = parser.parse_args(["reference", "train", "--base", str(base), "--skip-check", *argv])
        with pytest.raises(SystemExit, match=why):
            args.func(args)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["reference", "train", "--base", str(base), "--stages", "wm,sft"])
    assert exc.value.code == 2 and "stages are some of wm,fe,rl" in capsys.readouterr().err
    args = parser.parse_args(["reference", "train", "--base", str(tmp_path / "nothing"), "--skip-check"])
    with pytest.raises(SystemExit, match="not a checkpoint directory"):
        args.func(args)


def test_train_passes_steps_to_the_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import reference.train

    seen = []
    monkeypatch.setattr(reference.train, "train", lambda cfg, out, device="cpu": seen.append(cfg))
    args = build_parser().parse_args(["reference", "train", "--steps", "10,20,30", "--skip-check",
                                      "--out", f"{tmp_path}/m"])
    assert args.func(args) == 0
    assert seen[0].stage_steps == (10, 20, 30) and seen[0].seed == 0


@pytest.mark.parametrize(("world", "states"), [("numberreach", 300), ("search", 900)])
def test_train_checks_on_the_worlds_number_of_states(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     world: str, states: int) -> None:
    import foresight.reference as cli
    import reference.train

    monkeypatch.setattr(reference.train, "train", lambda cfg, out, device="cpu": out.mkdir(parents=True))
    asked = {}

    async def fake_eval(model, dtype, world_name, **kw):  # type: ignore[no-untyped-def]
        asked.update(kw, world=world_name)
        result = _result(0.9, 0.95, 0.95)
        result.to_dict = lambda: {"turns": vars(result.turns)}
        return result

    monkeypatch.setattr(cli, "_run_eval", fake_eval)
    monkeypatch.setattr(cli, "print_table", lambda result, out=None: None)
    args = build_parser().parse_args(["reference", "train", "--world", world, "--out", f"{tmp_path}/m"])
    assert args.func(args) == 0
    assert asked["world"] == world and asked["states"] == states and asked["seed"] == 1
    assert json.loads((tmp_path / "m" / "acceptance.json").read_text())["turns"]["brier_gap"] == 0.0


def _result(greedy: float, best: float, optimal: float = 0.95, validity: float = 1.0, gap: float = 0.0):
    from types import SimpleNamespace

    turns = SimpleNamespace(format_validity=validity, brier_gap=gap, confidence_brier=0.06 + gap, exact_brier=0.06)
    return SimpleNamespace(turns=turns, success={"model_greedy": greedy, "model_best_of_n": best, "optimal": optimal})


@pytest.mark.parametrize(("greedy", "best", "ok"), [
    (0.38, 0.69, True),   # the all-plans checkpoint: closes 0.31 of 0.57
    (0.84, 0.94, True),   # a strong greedy policy: closes 0.10 of 0.11
    (0.38, 0.55, False),  # closes 0.17 of 0.57: the confidence barely helps
    (0.84, 0.80, False),  # best-of-N below greedy
])
def test_acceptance_asks_best_of_n_to_close_half_of_greedys_distance_to_the_optimum(
        greedy: float, best: float, ok: bool) -> None:
    from foresight.reference import acceptance_failures

    failures = acceptance_failures(_result(greedy, best))
    assert (failures == []) is ok
    assert all("best-of-N" in f for f in failures)


def test_acceptance_names_format_and_brier_failures() -> None:
    from foresight.reference import acceptance_failures

    failures = acceptance_failures(_result(0.4, 0.8, validity=0.98, gap=0.02))
    assert len(failures) == 2 and "format validity" in failures[0] and "Brier" in failures[1]


def test_train_defaults_are_the_shipped_recipe() -> None:
    """`foresight reference train` with no options trains what `models/` ships (its training.json)."""
    from dataclasses import asdict

    from reference.train import TrainConfig

    shipped = json.loads((REPO / "models" / "foresight-numberreach" / "training.json").read_text())["config"]
    # trained before worlds had a name: NumberReach's
    assert json.loads(json.dumps(asdict(TrainConfig()))) == {**shipped, "world": shipped.get("world", "numberreach")}
    args = build_parser().parse_args(["reference", "train"])
    assert args.policy_plans == shipped["policy_plans"] and args.seed == shipped["seed"]


def test_world_option_picks_the_model_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from foresight.cli import main
    from foresight.reference import acceptance_failures, default_model, print_table
    from reference.search.evaluate import SearchEvalResult, SearchTurnMetrics

    parser = build_parser()
    assert parser.parse_args(["reference", "eval"]).world == "numberreach"
    assert parser.parse_args(["reference", "eval", "--world", "search", "--drifted"]).drifted
    assert default_model("search") == REPO / "models" / "foresight-search"
    for argv, why in ((["--drifted"], "--world search only"), (["--world", "search", "--planners", "greedy"],
                                                                 "bench/planners.py --world search")):
        with pytest.raises(SystemExit) as exc:
            main(["reference", "eval", *argv])
        assert why in str(exc.value.code)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["reference", "train", "--world", "chess"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err

    turns = SearchTurnMetrics(states=10, format_validity=1.0, chain_accuracy=0.9, result_accuracy=0.8,
                              confidence_brier=0.1, exact_brier=0.095, brier_gap=0.005)
    result = SearchEvalResult(model="m", seed=0, turns=turns, episodes=10, best_of_n=8,
                              success={"model_greedy": 0.6, "model_best_of_n": 0.7, "optimal": 0.8},
                              paired={"model_greedy": (0.60, 0.01), "model_best_of_n": (0.65, 0.01),
                                      "optimal": (0.8, 0.0)})
    out = io.StringIO()
    print_table(result, out)
    text = out.getvalue()
    assert "world search" in text and "chain accuracy" in text and "paired 0.650 ± 0.010" in text
    # the paired estimates decide: best-of-N closed 0.05 of a 0.20 gap (needs 0.08)
    assert any("best-of-N gains +0.050" in f for f in acceptance_failures(result))
    result.paired["model_best_of_n"] = (0.72, 0.01)
    assert acceptance_failures(result) == []
