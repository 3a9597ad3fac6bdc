"""Settings: precedence, config files, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from foresight.cli import main
from server.config import load_settings
from server.errors import SettingsError


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    d = tmp_path / "my-model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


def test_defaults(ckpt: Path) -> None:
    s = load_settings(model=str(ckpt))
    assert (s.host, s.port, s.model_name) == ("127.0.0.1", 8000, "my-model")


def test_precedence_flags_over_env_over_file(ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {ckpt}\nport: 7000\nlog_level: debug\nmax_n: 3\n")
    monkeypatch.setenv("FORESIGHT_PORT", "7100")
    monkeypatch.setenv("FORESIGHT_MAX_N", "5")
    s = load_settings(cfg, max_n=9)
    assert (s.port, s.log_level, s.max_n) == (7100, "debug", 9)


@pytest.mark.parametrize("suffix,text", [(".json", '{"port": 7001}'), (".toml", "port = 7001\n")])
def test_json_and_toml_files(ckpt: Path, tmp_path: Path, suffix: str, text: str) -> None:
    cfg = tmp_path / f"c{suffix}"
    cfg.write_text(text)
    assert load_settings(cfg, model=str(ckpt)).port == 7001


@pytest.mark.parametrize(
    ("kw", "needle"),
    [({"dtype": "int3"}, "FORESIGHT_DTYPE"), ({"port": 99999}, "FORESIGHT_PORT"),
     ({"gpu_memory_utilization": 2}, "gpu_memory_utilization"), ({"model": "/nowhere"}, "no checkpoint")],
)
def test_invalid_values_name_the_setting(ckpt: Path, kw: dict[str, object], needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(**{"model": str(ckpt), **kw})
    assert needle in str(err.value)


def test_unknown_key_in_file_names_it(ckpt: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("prot: 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(cfg, model=str(ckpt))


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SettingsError, match="cannot be parsed"):
        load_settings(bad)


def test_cli_reports_invalid_setting_without_traceback(ckpt: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORESIGHT_DTYPE", "int8")
    assert main(["serve", "--model", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "FORESIGHT_DTYPE" in err and "Traceback" not in err


def test_cli_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("serve", "plan", "reference"):
        assert cmd in out


def test_configuration_doc_documents_every_setting() -> None:
    from server.config import Settings
    from tests.conftest import REPO

    doc = (REPO / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"| `{name}` | `FORESIGHT_{name.upper()}` |" in doc, name
