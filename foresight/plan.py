"""``foresight plan``: run one plan against a running server, or in-process on a local checkpoint."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from foresight_client import APIStatusError, Foresight, ForesightError
from planner.params import Param, param_type, params
from planner.search import Budget, PlanConfig
from server.config import DEFAULT_MODEL


def add_plan(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "plan", help="branch or commit on one prompt with the model's own foresight",
        description="Send a prompt (the observation the agent sees) to /v1/plan and print the decision. "
                    "By default against a running server; --in-process loads --model here instead.",
        epilog="example: foresight plan --prompt-file obs.txt --algorithm lookahead --json",
    )
    p.add_argument("--prompt-file", required=True, help="file holding the prompt text ('-' for stdin)")
    for param in params(PlanConfig):
        _add_param(p, param)
    for param in params(Budget):
        _add_param(p, param, "budget: ")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="server to ask (default %(default)s)")
    p.add_argument("--api-key", help="bearer key, if the server wants one")
    p.add_argument("--in-process", action="store_true", help="load --model here instead of calling a server")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="checkpoint for --in-process")
    p.add_argument("--json", action="store_true", help="print the whole response as JSON")
    p.set_defaults(func=_plan)


def _flag(param: Param) -> str:
    return "--" + param.name.replace("_", "-")


def _add_param(p: argparse.ArgumentParser, param: Param, prefix: str = "") -> None:
    """One flag per plan parameter, with the bounds and description of ``PlanConfig``. A flag not given is
    not sent: the server fills it in from the model's and the algorithm's defaults (`/v1/models` shows
    them; the knob's own default is the last resort)."""
    default = param.default.value if hasattr(param.default, "value") else param.default
    whose = "the model's" if param.name == "algorithm" else "the model's for the algorithm"
    help_text = f"{prefix}{param.knob.description} (default: {whose}, else {default})"
    help_text = help_text.replace("%", "%%")
    kw: dict[str, Any] = {"dest": param.name, "default": argparse.SUPPRESS, "help": help_text}
    if param.choices is not None:
        p.add_argument(_flag(param), choices=param.choices, **kw)
    elif param.base in (int, float):
        p.add_argument(_flag(param), type=param_type(param), **kw)
    else:
        p.add_argument(_flag(param), **kw)


def _given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The parameters of ``cls`` given on the command line (the server fills in the rest, within its own
    limits)."""
    return {p.name: getattr(args, p.name) for p in params(cls) if hasattr(args, p.name)}


def _body(args: argparse.Namespace, prompt: str) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": prompt, **_given(args, PlanConfig)}
    budget = _given(args, Budget)
    if budget:
        body["budget"] = budget
    return body


async def _in_process(model: str, body: dict[str, Any]) -> dict[str, Any]:
    from protocol.plan import PlanRequest
    from server.config import load_settings
    from server.container import build_engine
    from server.services.generation import GenerationService
    from server.services.planning import PlanningService

    settings = load_settings(model=model)
    async with build_engine(settings) as engine:
        service = PlanningService(GenerationService(engine, settings))
        return (await service.run(PlanRequest.model_validate(body))).response.model_dump(mode="json")


def _plan(args: argparse.Namespace) -> int:
    source = sys.stdin if args.prompt_file == "-" else None
    try:
        prompt = source.read() if source else Path(args.prompt_file).read_text()
    except OSError as exc:
        print(f"foresight: cannot read --prompt-file: {exc}", file=sys.stderr)
        return 2
    body = _body(args, prompt)
    if args.in_process:
        result = asyncio.run(_in_process(args.model, body))
    else:
        try:
            with Foresight(args.url, args.api_key) as client:
                result = client.plan(**body).model_dump(mode="json")
        except APIStatusError as exc:
            print(f"foresight: the server answered {exc.status_code}: {exc.message}", file=sys.stderr)
            return 1
        except ForesightError as exc:  # unreachable, or a request the client's own check refused
            print(f"foresight: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        action = result.get("action") or {}
        conf = result["confidence"]
        print(f"decision   {result['decision']}  ({result['algorithm']}, {result['usage']['candidates']} candidates, "
              f"{result['usage']['completion_tokens']} tokens)")
        print(f"action     {action.get('kind')}: {action.get('content')}")
        print(f"confidence raw {conf['raw']}  calibrated {conf['calibrated']}")
        print(f"rollout    {result['rollout']}")
    return 0
