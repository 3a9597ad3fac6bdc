"""Dependencies point one way (DESIGN §1): a test reads every import of every module, lazy ones too.

    foresight (the CLI) → server, reference, quantize, engine, planner, protocol, catalog
    server              → engine, planner, protocol, catalog (a model name finds its checkpoint)
    protocol            → planner (the plan schema; pydantic otherwise)
    client              → protocol (it installs and runs without the server)
    reference, quantize → engine, planner, catalog (quantize → reference: its report plays the reference world)
    bench               → engine, planner, reference, quantize
    engine              → planner, only in engine/sampler.py (the planner's Sampler protocol)
    planner, catalog    → nothing of ours
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = {"foresight", "server", "engine", "protocol", "foresight_client", "planner", "reference", "quantize", "bench",
        "catalog"}
ALLOWED: dict[str, set[str]] = {
    "foresight": {"server", "reference", "quantize", "engine", "planner", "protocol", "foresight_client", "catalog"},
    "server": {"engine", "planner", "protocol", "catalog"},
    "protocol": {"planner"},
    # its wire models are protocol/'s, copied into its wheel as foresight_client._wire (scripts/build-client.sh)
    "foresight_client": {"protocol", "planner"},
    "reference": {"engine", "planner", "catalog"},
    "quantize": {"engine", "planner", "reference", "catalog"},
    "bench": {"engine", "planner", "reference", "quantize", "foresight_client", "catalog"},
    "catalog": set(),
    "engine": {"planner"},
    "planner": set(),
}
# a module may reach further than its package only where it says why, here
EXCEPTIONS: dict[str, set[str]] = {
    "engine/sampler.py": {"planner"},  # the one place engine meets the planner's protocol
}
ENGINE_PLANNER_ONLY = "engine/sampler.py"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
    return found & OURS


def _modules() -> list[Path]:
    return sorted(p for pkg in ALLOWED for p in (REPO / pkg).rglob("*.py"))


def back_arrows() -> list[str]:
    """Every import that points the wrong way, as 'module → package'."""
    wrong = []
    for path in _modules():
        rel = path.relative_to(REPO).as_posix()
        pkg = rel.split("/")[0]
        allowed = set(ALLOWED[pkg]) | EXCEPTIONS.get(rel, set()) | {pkg}
        if pkg == "engine" and rel != ENGINE_PLANNER_ONLY:
            allowed.discard("planner")
        wrong += [f"{rel} → {target}" for target in sorted(_imports(path) - allowed)]
    return wrong


def test_dependencies_point_one_way() -> None:
    assert back_arrows() == []


def test_every_package_is_checked() -> None:
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "models"}
    assert packages <= set(ALLOWED), f"add {sorted(packages - set(ALLOWED))} to ALLOWED"


@pytest.mark.parametrize(("source", "target"), [
    ("server/services/x.py", "reference"), ("reference/x.py", "server"), ("quantize/x.py", "server"),
    ("planner/x.py", "engine"), ("engine/base.py", "planner"), ("protocol/x.py", "server"), ("bench/x.py", "server"),
    ("foresight_client/x.py", "server"), ("foresight_client/x.py", "engine"),
])
def test_the_check_catches_a_back_arrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                                        target: str) -> None:
    for pkg in ALLOWED:
        (tmp_path / pkg).mkdir()
    module = tmp_path / source
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(f"def f():\n    from {target}.anything import thing\n    return thing\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["REPO"]), "REPO", tmp_path)
    assert back_arrows() == [f"{source} → {target}"]


def test_exactly_one_module_imports_vllm_and_one_llmcompressor() -> None:
    """In the packages; bench/serve_overhead.py drives vLLM's own serving benchmark against both servers."""

    def importers(name: str) -> list[str]:
        out = []
        for path in (p for p in _modules() if p.relative_to(REPO).parts[0] != "bench"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                mods = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                        [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                if any(m.split(".")[0] == name for m in mods):
                    out.append(path.relative_to(REPO).as_posix())
                    break
        return out

    assert importers("vllm") == ["engine/vllm.py"]
    assert importers("llmcompressor") == ["quantize/gptq.py"]


def test_no_bench_script_shadows_a_package() -> None:
    """A bench runs as ``python bench/x.py``: its directory comes first on ``sys.path``, so a script named
    like a package of ours (``bench/planner.py`` was) is what ``import planner`` finds — every bench that
    planned then failed with "'planner' is not a package"."""
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    scripts = {p.stem for p in (REPO / "bench").glob("*.py")}
    assert not scripts & packages, f"bench scripts named like packages: {sorted(scripts & packages)}"
