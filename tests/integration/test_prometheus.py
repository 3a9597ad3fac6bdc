"""A real Prometheus scrapes the real server: every dashboard and alert query returns data.

Prometheus is Debian's package (``scripts/test-services.sh`` installs it); it runs on loopback
with a 1 s scrape interval while a little traffic (completions, plans, outcomes) goes through.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from reference import data
from reference import numberreach as env
from tests.conftest import REPO
from tests.integration.server_process import ServerProcess, free_port

pytestmark = pytest.mark.integration
DASHBOARD = REPO / "docker" / "grafana" / "dashboards" / "foresight.json"
ALERTS = REPO / "docker" / "prometheus" / "alerts.yml"
_COMPARISON = re.compile(r"\s(==|!=|>=|<=|>|<)\s*[0-9.]+\s*$")


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} not found (Debian package 'prometheus'; scripts/test-services.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def alert_queries() -> list[str]:
    """The query parts of every rule: ``<query> <op> <threshold>`` joined by ``or``."""
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    out = []
    for rule in rules:
        for part in re.split(r"\s+or\s+", rule["expr"]):
            m = _COMPARISON.search(part)
            assert m, f"rule {rule['alert']}: {part!r} is not '<query> <op> <threshold>'"
            out.append(part[: m.start()].strip())
    return out


def substitute(expr: str) -> str:
    """A dashboard or alert query as it can answer in a Prometheus started minutes ago: variables filled,
    and ``offset``s dropped (the fidelity alert's baseline is the day ending an hour ago, which a fresh
    Prometheus has no data for; the same series and functions, now, must answer)."""
    expr = expr.replace("$instance", ".*").replace("$model", ".*")
    return re.sub(r"\s+offset\s+\w+", "", expr)


@pytest.fixture(scope="module")
def prometheus(server: ServerProcess) -> Iterator[str]:
    binary = _need("prometheus")
    root = Path(tempfile.mkdtemp(prefix="foresight-prom-"))
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "foresight", "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}]}],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"prometheus did not become ready: {(root / 'prometheus.log').read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def traffic(server: ServerProcess) -> None:
    s = env.State(5, 40, 6)
    for i in range(6):
        r = httpx.post(f"{server.url}/v1/completions", timeout=60, json={
            "model": "foresight-numberreach", "prompt": data.prompt_for(s), "max_tokens": 24, "temperature": 1.0})
        assert r.status_code == 200
        p = httpx.post(f"{server.url}/v1/plan", timeout=120, json={
            "prompt": data.prompt_for(s), "algorithm": "best_of_n", "width": 2, "domain": "prom", "seed": i})
        assert p.status_code == 200
        o = httpx.post(f"{server.url}/v1/outcomes", timeout=30, json={  # observed: world-model fidelity
            "plan_id": p.json()["plan_id"], "success": i % 2 == 0, "observation": f"x={6 + i} target=40 steps=5"})
        assert o.status_code == 200
    httpx.get(f"{server.url}/health", timeout=10)


def query(prom: str, expr: str) -> list[dict]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=30)
    assert r.status_code == 200, f"{expr}: {r.text}"
    body = r.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict] = body["data"]["result"]
    return result


def test_promtool_checks_the_rules_and_config(tmp_path: Path) -> None:
    promtool = _need("promtool")
    rules = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text((REPO / "docker" / "prometheus" / "prometheus.yml").read_text()
                   .replace("/etc/prometheus/alerts.yml", str(ALERTS)))
    checked = subprocess.run([promtool, "check", "config", str(cfg)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_dashboard_and_alert_query_returns_data(server: ServerProcess, prometheus: str) -> None:
    traffic(server)
    exprs = [substitute(e) for e in dashboard_queries() + alert_queries()]
    assert len(exprs) > 20
    missing: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        missing = [e for e in exprs if not query(prometheus, e)]
        if not missing:
            break
        traffic(server) if len(missing) < 6 else None
        time.sleep(3)
    assert not missing, "queries without data:\n  " + "\n  ".join(missing)


def _expected_annotations(alert: str, labels: dict[str, str]) -> dict[str, str]:
    rule = next(r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"] if r["alert"] == alert)
    out = {}
    for key, text in rule["annotations"].items():
        for name, value in labels.items():
            text = text.replace("{{ $labels." + name + " }}", value)
        out[key] = re.sub(r"\{\{ \$labels\.\w+ \}\}", "", text)  # a label the series lacks renders empty
    return out


def test_drift_alerts_fire_on_drift_only(tmp_path: Path) -> None:
    """``promtool test rules``: raw ECE past 0.15 for 30 min fires ForesightRawConfidenceDrift; world-model
    fidelity (30-minute mean) falling below 90% of the previous day's for 15 min fires
    ForesightWorldModelFidelityDropped — not a smaller dip; neither fires while the world stays as learnt
    (the search world's drift, docs/search-world.md)."""
    promtool = _need("promtool")
    labels = {"instance": "a:8000", "domain": "search"}
    sel = '{instance="a:8000",domain="search"}'
    dip = '{instance="a:8000",domain="dip"}'
    by_model = {"instance": "a:8000", "model": "format-only", "domain": "nr"}
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m",
             "input_series": [
                 {"series": 'foresight_confidence_ece{instance="a:8000",domain="search",confidence="raw"}',
                  "values": "0.04x60 0.31x60"},
                 {"series": 'foresight_confidence_ece{instance="a:8000",domain="search",confidence="calibrated"}',
                  "values": "0.03x120"}],
             "alert_rule_test": [
                 {"eval_time": "55m", "alertname": "ForesightRawConfidenceDrift", "exp_alerts": []},
                 {"eval_time": "80m", "alertname": "ForesightRawConfidenceDrift", "exp_alerts": []},  # pending
                 {"eval_time": "100m", "alertname": "ForesightRawConfidenceDrift",
                  "exp_alerts": [{"exp_labels": {**labels, "severity": "warning"},
                                  "exp_annotations": _expected_annotations("ForesightRawConfidenceDrift", labels)}]},
                 {"eval_time": "100m", "alertname": "ForesightCalibrationDrift", "exp_alerts": []}]},
            # 8 observations a minute: fidelity 0.9 for a day and a half, then 0.75 (search: fires) or 0.85
            # (dip: 94% of the day before, quiet)
            {"interval": "5m",
             "input_series": [
                 {"series": f"foresight_world_model_fidelity_count{sel}", "values": "0+40x500"},
                 {"series": f"foresight_world_model_fidelity_sum{sel}", "values": "0+36x432 15552+30x68"},
                 {"series": f"foresight_world_model_fidelity_count{dip}", "values": "0+40x500"},
                 {"series": f"foresight_world_model_fidelity_sum{dip}", "values": "0+36x432 15552+34x68"}],
             "alert_rule_test": [
                 {"eval_time": "35h", "alertname": "ForesightWorldModelFidelityDropped", "exp_alerts": []},
                 {"eval_time": "37h", "alertname": "ForesightWorldModelFidelityDropped",
                  "exp_alerts": [{"exp_labels": {**labels, "severity": "warning"},
                                  "exp_annotations": _expected_annotations("ForesightWorldModelFidelityDropped",
                                                                           labels)}]}]},
            # two adapters of one base in one domain: only the format-only one's raw ECE is past 0.15
            {"interval": "1m",
             "input_series": [
                 {"series": 'foresight_confidence_ece{instance="a:8000",model="format-only",domain="nr",'
                            'confidence="raw"}', "values": "0.31x60"},
                 {"series": 'foresight_confidence_ece{instance="a:8000",model="foresight",domain="nr",'
                            'confidence="raw"}', "values": "0.04x60"}],
             "alert_rule_test": [
                 {"eval_time": "50m", "alertname": "ForesightRawConfidenceDrift",
                  "exp_alerts": [{"exp_labels": {**by_model, "severity": "warning"},
                                  "exp_annotations": _expected_annotations("ForesightRawConfidenceDrift",
                                                                           by_model)}]}]},
        ],
    }
    path = tmp_path / "drift.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    out = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr
