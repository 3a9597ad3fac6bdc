"""Writes docker/grafana/dashboards/foresight.json (run after editing the panels here; the JSON is committed).

    .venv/bin/python docker/grafana/build_dashboard.py
"""

from __future__ import annotations

import json
from pathlib import Path

I = '{instance=~"$instance"}'  # noqa: E741 - our metrics, by scraped instance
M = '{model_name=~"$model"}'  # vLLM's metrics, by model


def sel(extra: str = "") -> str:
    return '{instance=~"$instance"' + (f", {extra}" if extra else "") + "}"


V1 = sel('route=~"/v1/.*"')
COMPLETION = sel('kind="completion"')


# (row, title, unit, [(legend, PromQL)])
PANELS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("Traffic and latency", "Requests per second by route", "reqps", [
        ("{{route}} {{status}}", f"sum by (route, status) (rate(foresight_requests_total{I}[5m]))")]),
    ("Traffic and latency", "End-to-end latency percentiles", "s", [
        (f"p{q}", f"histogram_quantile(0.{q}, sum by (le) (rate(foresight_request_latency_seconds_bucket"
                  f"{V1}[5m])))") for q in (50, 90, 99)]),
    ("Traffic and latency", "Time to first token", "s", [
        (f"p{q}", f"histogram_quantile(0.{q}, sum by (le) (rate(foresight_time_to_first_token_seconds_bucket{I}[5m])))")
        for q in (50, 99)]),
    ("Traffic and latency", "Queue and in-flight", "short", [
        ("queue depth", f"sum(foresight_queue_depth{I})"),
        ("in flight", f"sum(foresight_inflight_requests{I})"),
        ("engine waiting", f"sum(vllm:num_requests_waiting{M})"),
        ("engine running", f"sum(vllm:num_requests_running{M})")]),
    ("Engine", "Tokens per second", "short", [
        ("{{kind}}", f"sum by (kind) (rate(foresight_tokens_total{I}[5m]))"),
        ("engine generated", f"sum(rate(vllm:generation_tokens_total{M}[5m]))")]),
    ("Engine", "KV-cache use", "percentunit", [("KV cache", f"max(vllm:kv_cache_usage_perc{M})")]),
    ("Planner", "Plan decisions per second", "short", [
        ("{{algorithm}} {{decision}}",
         f"sum by (algorithm, decision) (rate(foresight_plan_decisions_total{I}[5m]))")]),
    ("Planner", "Plan depth and candidates (mean)", "short", [
        ("depth", f"sum(rate(foresight_plan_depth_sum{I}[5m])) / sum(rate(foresight_plan_depth_count{I}[5m]))"),
        ("candidates", f"sum(rate(foresight_plan_candidates_sum{I}[5m])) / "
                       f"sum(rate(foresight_plan_candidates_count{I}[5m]))")]),
    ("Planner", "Parse problems per second", "short", [
        ("{{kind}}", f"sum by (kind) (rate(foresight_parse_problems_total{I}[5m]))")]),
    ("Calibration", "Calibration error (ECE), raw vs calibrated", "short", [
        ("{{model}} {{domain}} {{confidence}}", f"max by (model, domain, confidence) (foresight_confidence_ece{I})")]),
    ("Calibration", "Brier score, raw vs calibrated", "short", [
        ("{{model}} {{domain}} {{confidence}}",
         f"max by (model, domain, confidence) (foresight_confidence_brier{I})")]),
    ("Calibration", "World-model fidelity (mean of reported observations)", "short", [
        ("{{model}} {{domain}}", f"sum by (model, domain) (rate(foresight_world_model_fidelity_sum{I}[5m])) / "
                                 f"sum by (model, domain) (rate(foresight_world_model_fidelity_count{I}[5m]))")]),
    ("Calibration", "Outcomes reported", "short", [
        ("{{model}} {{domain}} {{result}}",
         f"sum by (model, domain, result) (increase(foresight_outcomes_total{I}[1h]))")]),
    ("Energy and cost", "Cost per 1k tokens ($)", "currencyUSD", [
        ("$/1k tokens", f"max(foresight_cost_per_1k_tokens_usd{I})")]),
    ("Energy and cost", "Cost per decision ($)", "currencyUSD", [
        ("$/decision", f"max(foresight_cost_per_decision_usd{I})")]),
    ("Energy and cost", "Energy per token (J/token)", "short", [
        ("J/token", f"sum(rate(foresight_energy_joules_total{I}[5m])) / "
                    f"sum(rate(foresight_tokens_total{COMPLETION}[5m]))")]),
    ("Energy and cost", "Cost accrued by component ($/h)", "currencyUSD", [
        ("{{component}}", f"sum by (component) (rate(foresight_cost_usd_total{I}[5m])) * 3600")]),
    ("Energy and cost", "Cost by app ($/h)", "currencyUSD", [
        ("{{key}}", f"sum by (key) (rate(foresight_key_cost_total{I}[5m])) * 3600")]),
    ("Energy and cost", "Tokens by app (/s)", "short", [
        ("{{key}} {{kind}}", f"sum by (key, kind) (rate(foresight_key_tokens_total{I}[5m]))")]),
]


def build() -> dict:
    panels = []
    y = 0
    pid = 1
    current_row = None
    x = 0
    for row, title, unit, queries in PANELS:
        if row != current_row:
            if current_row is not None:
                y += 8
            panels.append({"type": "row", "title": row, "id": pid, "collapsed": False,
                           "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
            pid += 1
            y += 1
            x = 0
            current_row = row
        elif x >= 24:
            x = 0
            y += 8
        panels.append({
            "type": "timeseries", "title": title, "id": pid,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"x": x, "y": y, "w": 8, "h": 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend,
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                        for i, (legend, expr) in enumerate(queries)],
        })
        pid += 1
        x += 8
    var = {"type": "prometheus", "uid": "${datasource}"}
    return {
        "title": "Foresight Serve", "uid": "foresight-serve", "schemaVersion": 39, "version": 1,
        "tags": ["foresight", "vllm"], "timezone": "browser", "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
            {"name": "instance", "label": "Instance", "type": "query", "datasource": var, "multi": True,
             "includeAll": True, "allValue": ".*", "refresh": 2,
             "query": {"query": "label_values(foresight_requests_total, instance)", "refId": "instance"},
             "definition": "label_values(foresight_requests_total, instance)"},
            {"name": "model", "label": "Model", "type": "query", "datasource": var, "multi": True,
             "includeAll": True, "allValue": ".*", "refresh": 2,
             "query": {"query": "label_values(vllm:num_requests_running, model_name)", "refId": "model"},
             "definition": "label_values(vllm:num_requests_running, model_name)"},
        ]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).parent / "dashboards" / "foresight.json"
    out.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {out}")
