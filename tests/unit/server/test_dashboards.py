"""Dashboards and alert rules in the repo: valid, complete, and in step with the metrics."""

from __future__ import annotations

import json
import re

import yaml

from tests.conftest import REPO

DASHBOARD = REPO / "docker" / "grafana" / "dashboards" / "foresight.json"
REQUIRED_PANELS = [
    "End-to-end latency percentiles", "Time to first token", "Queue and in-flight", "Tokens per second",
    "KV-cache use", "Plan decisions per second", "Plan depth and candidates (mean)", "Parse problems per second",
    "Calibration error (ECE), raw vs calibrated", "Brier score, raw vs calibrated", "Cost per 1k tokens ($)",
    "Cost per decision ($)", "Energy per token (J/token)",
]


def test_dashboard_is_valid_and_has_the_panels() -> None:
    board = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in board["panels"]]
    for t in REQUIRED_PANELS:
        assert t in titles, t
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "model", "instance"} <= variables
    for p in board["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]


def test_dashboard_json_is_what_the_builder_writes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_dashboard", REPO / "docker/grafana/build_dashboard.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert json.loads(DASHBOARD.read_text()) == mod.build()


def test_alert_rules_have_runbooks_and_known_metrics() -> None:
    rules = [r for g in yaml.safe_load((REPO / "docker/prometheus/alerts.yml").read_text())["groups"]
             for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {"ForesightEngineDown", "ForesightQueueSaturated", "ForesightLatencyP99AboveSLO",
            "ForesightCalibrationDrift", "ForesightCostAboveBudget"} <= names
    source = (REPO / "server" / "metrics.py").read_text()
    for r in rules:
        assert r["annotations"]["runbook"], r["alert"]
        for metric in re.findall(r"\b(foresight_[a-z0-9_]+)", r["expr"]):
            base = re.sub(r"_(total|bucket|sum|count)$", "", metric)
            assert f'"{base}"' in source, f"{r['alert']}: {metric} is not a metric of server/metrics.py"
