"""The ``foresight`` command line.

    foresight serve [--model PATH] [--host H] [--port P] [--config FILE]
    foresight plan ...
    foresight calibration report [--url URL | --database-url URL] [--domain D] [--out PNG]
    foresight keys create|list|revoke ...
    foresight reference train|eval ...
    foresight models add|list|remove ...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from server.errors import SettingsError


def _add_serve(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible REST API",
        description=(
            "Serve a foresight model with vLLM embedded in-process. With no flags it serves the shipped "
            "reference model on http://127.0.0.1:8000 (CPU, nothing downloaded). Every setting can also "
            "be given as an environment variable FORESIGHT_<NAME> or in a YAML/JSON/TOML file (--config); "
            "flags win over the environment, which wins over the file."
        ),
        epilog="example: foresight serve --model ./my-checkpoint --port 9000",
    )
    p.add_argument("--model", help="path of a Hugging Face checkpoint directory (default: the reference model)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to bind (default 8000)")
    p.add_argument("--config", help="YAML, JSON or TOML file of settings (names: docs/configuration.md)")
    p.add_argument("--served-model-name", help="the model name clients use (default: the directory name)")
    p.add_argument("--database-url", help="outcome store, e.g. postgresql://user:pass@host/db "
                                          "(default: SQLite at var/foresight.db)")
    p.add_argument("--adapter", action="append", type=_adapter, default=None, metavar="NAME=PATH",
                   help="serve a LoRA adapter trained on this base under NAME (repeatable; the setting `adapters`)")
    p.add_argument("--default-model", help="what requests without `model` run on: the base's name or an adapter's")
    p.set_defaults(func=_serve)


def _adapter(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"want NAME=PATH, not {text!r}")
    return name.strip(), path.strip()


def _serve(args: argparse.Namespace) -> int:
    from foresight.runner import serve
    from server.config import load_settings

    adapters = dict(args.adapter) if args.adapter else None
    if args.adapter and len(adapters or {}) != len(args.adapter):
        raise SystemExit("foresight: --adapter names one adapter twice")
    settings = load_settings(args.config, model=args.model, host=args.host, port=args.port,
                             served_model_name=args.served_model_name, database_url=args.database_url,
                             adapters=adapters, default_model=args.default_model)
    return serve(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foresight",
        description="Foresight Serve: serve foresight agent models, plan with their foresight, prove the cost.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serve(sub)
    from foresight.calibration import add_calibration
    from foresight.fit import add_fit
    from foresight.keys import add_keys
    from foresight.models import add_models
    from foresight.plan import add_plan
    from foresight.quantize import add_quantize
    from foresight.reference import add_reference

    add_plan(sub)
    add_calibration(sub)
    add_keys(sub)
    add_fit(sub)
    add_quantize(sub)
    add_reference(sub)
    add_models(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"foresight: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
