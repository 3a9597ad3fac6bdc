"""``foresight plan``: run one plan against a running server, or in-process on a local checkpoint."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from server.cli_types import positive, unit
from server.config import DEFAULT_MODEL


def add_plan(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "plan", help="branch or commit on one prompt with the model's own foresight",
        description="Send a prompt (the observation the agent sees) to /v1/plan and print the decision. "
                    "By default against a running server; --in-process loads --model here instead.",
        epilog="example: foresight plan --prompt-file obs.txt --algorithm lookahead --json",
    )
    p.add_argument("--prompt-file", required=True, help="file holding the prompt text ('-' for stdin)")
    p.add_argument("--algorithm", default="branch_commit",
                   choices=["greedy", "best_of_n", "branch_commit", "lookahead"])
    p.add_argument("--width", type=positive, default=4, help="K samples per round (N for best_of_n)")
    p.add_argument("--commit-threshold", type=unit, default=0.8, help="in [0, 1] (default %(default)s)")
    p.add_argument("--max-tokens", type=positive, default=4096, help="token budget of the whole plan")
    p.add_argument("--max-depth", type=positive, default=2)
    p.add_argument("--lookahead-context", choices=["history", "observation"], default="history")
    p.add_argument("--discount", type=unit, default=1.0,
                   help="lookahead: weight of an imagined future against a plan's own confidence, in [0, 1]")
    p.add_argument("--root-rounds", type=positive, default=1,
                   help="lookahead: rounds of --width first-level turns while none reaches --commit-threshold")
    p.add_argument("--seed", type=int)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="server to ask (default %(default)s)")
    p.add_argument("--api-key", help="bearer key, if the server wants one")
    p.add_argument("--in-process", action="store_true", help="load --model here instead of calling a server")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="checkpoint for --in-process")
    p.add_argument("--json", action="store_true", help="print the whole response as JSON")
    p.set_defaults(func=_plan)


def _body(args: argparse.Namespace, prompt: str) -> dict[str, Any]:
    return {"prompt": prompt, "algorithm": args.algorithm, "width": args.width,
            "commit_threshold": args.commit_threshold, "seed": args.seed,
            "budget": {"max_tokens": args.max_tokens, "max_depth": args.max_depth},
            "lookahead_context": args.lookahead_context, "discount": args.discount,
            "root_rounds": args.root_rounds}


async def _in_process(model: str, body: dict[str, Any]) -> dict[str, Any]:
    from server.app import build_engine
    from server.config import load_settings
    from server.protocol.plan import PlanRequest
    from server.services.generation import GenerationService
    from server.services.planning import PlanningService

    settings = load_settings(model=model)
    engine = build_engine(settings)
    await engine.start()
    try:
        service = PlanningService(GenerationService(engine, settings))
        return (await service.run(PlanRequest.model_validate(body))).model_dump()
    finally:
        await engine.close()


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
        headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
        try:
            r = httpx.post(f"{args.url}/v1/plan", json=body, headers=headers, timeout=300)
        except httpx.HTTPError as exc:
            print(f"foresight: cannot reach {args.url}: {exc}", file=sys.stderr)
            return 1
        if r.status_code != 200:
            msg = r.json().get("error", {}).get("message", r.text) if r.headers.get("content-type", "").startswith(
                "application/json") else r.text
            print(f"foresight: the server answered {r.status_code}: {msg}", file=sys.stderr)
            return 1
        result = r.json()
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
