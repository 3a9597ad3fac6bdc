"""``foresight calibration report``: calibration per domain, as a table and a reliability-diagram PNG.

It asks a running server (``GET /v1/calibration``) or, with ``--database-url`` /
``--store``, reads the outcome store directly (the server may be down).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


def add_calibration(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cal = sub.add_parser("calibration", help="inspect confidence calibration against reported outcomes",
                         description="Calibration of the model's confidence per domain.")
    csub = cal.add_subparsers(dest="calibration_command", metavar="ACTION")
    r = csub.add_parser(
        "report", help="print ECE/Brier (raw vs calibrated) and write a reliability diagram",
        description="Counts, ECE (15 bins) and Brier of raw and calibrated confidence per domain, the map in "
                    "use, and a reliability-diagram PNG. Reads a running server, or the store directly.",
        epilog="example: foresight calibration report --domain numberreach --out reliability.png",
    )
    src = r.add_mutually_exclusive_group()
    src.add_argument("--url", default=DEFAULT_URL, help=f"server to ask (default {DEFAULT_URL})")
    src.add_argument("--database-url", help="read this outcome store directly (postgresql://… or sqlite:///…)")
    src.add_argument("--store", help="read this SQLite store file directly")
    r.add_argument("--model", help="model name in the store (with --database-url/--store; default: the only one)")
    r.add_argument("--domain", help="one domain (default: all)")
    r.add_argument("--api-key", help="bearer key for the server")
    r.add_argument("--out", default="reliability.png", help="PNG to write (default reliability.png); '' for none")
    r.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    r.set_defaults(func=_report)

    def _help(_args: argparse.Namespace) -> int:
        cal.print_help()
        return 2

    cal.set_defaults(func=_help)


def _fail(message: str) -> int:
    print(f"foresight: {message}", file=sys.stderr)
    return 1


def _from_server(url: str, domain: str | None, api_key: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    params = {"domain": domain} if domain else {}
    resp = httpx.get(f"{url.rstrip('/')}/v1/calibration", params=params, headers=headers, timeout=30)
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        raise RuntimeError(f"{url} answered {resp.status_code}: {message}")
    data: dict[str, Any] = resp.json()
    return data


async def _from_store(url: str, model: str | None, domain: str | None) -> dict[str, Any]:
    import dataclasses

    from server.services.calibration import summarize
    from server.store import Store

    store = Store(url)
    await store.open()
    try:
        if model is None:
            models = await store.models()
            if len(models) != 1:
                raise RuntimeError(f"the store holds plans of {len(models)} models ({', '.join(models) or 'none'}): "
                                   "name one with --model")
            model = models[0]
        maps = await store.load_maps(model)
        domains = [domain] if domain else await store.domains(model)
        out = [dataclasses.asdict(summarize(d, await store.outcome_rows(model, d), maps.get(d))) for d in domains]
        return {"object": "calibration", "model": model, "domains": out}
    finally:
        await store.close()


def _fmt(v: float | None) -> str:
    return "     -" if v is None else f"{v:6.4f}"


def print_report(report: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(f"model {report['model']}", file=out)
    if not report["domains"]:
        print("  no outcomes reported yet", file=out)
    for d in report["domains"]:
        m = d["map"]
        print(f"domain {d['domain']}: {d['outcomes']} outcomes, {d['successes']} successes; "
              f"map {m.get('kind', 'identity')} (fitted on {m.get('outcomes', 0)})", file=out)
        print(f"  {'':<12}{'count':>7}{'ECE':>9}{'Brier':>9}", file=out)
        for label in ("raw", "calibrated"):
            s = d[label]
            print(f"  {label:<12}{s['count']:>7}{_fmt(s['ece']):>9}{_fmt(s['brier']):>9}", file=out)
        if d.get("fidelity_count"):
            print(f"  world-model fidelity {d['fidelity_mean']:.3f} over {d['fidelity_count']} observations", file=out)


def plot_reliability(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = report["domains"] or [{"domain": "(no outcomes)", "raw": {"bins": []}, "calibrated": {"bins": []}}]
    fig, axes = plt.subplots(1, len(domains), figsize=(5 * len(domains), 5), squeeze=False)
    for ax, d in zip(axes[0], domains, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
        for label, marker in (("raw", "o"), ("calibrated", "s")):
            bins = [b for b in d[label]["bins"] if b["count"]]
            ece = d[label].get("ece")
            name = f"{label} (ECE {ece:.3f})" if ece is not None else label
            ax.plot([b["mean_confidence"] for b in bins], [b["accuracy"] for b in bins], marker=marker, label=name)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="observed success rate",
               title=f"{report['model']} · {d['domain']}")
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _report(args: argparse.Namespace) -> int:
    try:
        if args.database_url or args.store:
            from server.store import default_url

            url = args.database_url or default_url(args.store)
            if args.store and not Path(args.store).is_file():
                return _fail(f"no store file at {args.store!r}")
            report = asyncio.run(_from_store(url, args.model, args.domain))
        else:
            report = _from_server(args.url, args.domain, args.api_key)
    except httpx.HTTPError as exc:
        return _fail(f"cannot reach {args.url}: {exc} (is `foresight serve` running? or use --database-url)")
    except Exception as exc:  # store errors, bad answers: one line, no traceback
        return _fail(str(exc))
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    if args.out:
        plot_reliability(report, Path(args.out))
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
