"""The Helm chart rendered and linted by Helm itself (Helm v4's Go library through helm-python-sdk, no
binary), every manifest checked against Kubernetes' own schemas (kubernetes-validate), for the setups
people deploy: defaults, GPUs with tensor parallel, multi-node (Ray, pipeline parallel), Redis, the
router, autoscaling.

Exceptions, each checked another way:
- the SDK's offline render cannot declare API capabilities, so the ServiceMonitor (rendered only where
  the Prometheus operator's CRD exists) is rendered with ``serviceMonitor.alwaysRender`` and checked
  structurally: kubernetes-validate has no CRD schemas;
- the HAProxy config in the router's ConfigMap is checked by HAProxy itself (``haproxy -c``), and the
  router's flags against the real ``vllm-router --help``;
- ``helm lint`` says one thing, at INFO: "icon is recommended" (the chart ships no icon: there is no
  hosted image to point at, and an icon changes nothing that is deployed).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

helm = pytest.importorskip("helm_python", reason="the test extra installs helm-python-sdk")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

CHART = REPO / "helm" / "foresight-serve"
KUBE = "1.30"  # the oldest minor we support; also checked against the newest the validator ships
SECRET = {"secret": {"existingSecret": "foresight-secrets"}}

SETUPS: dict[str, dict[str, Any]] = {
    "defaults": SECRET,
    "chart-made secret": {"secret": {"authSecret": "0123456789abcdef", "databaseUrl": "postgresql://u:p@db/f"}},
    "gpu tensor parallel": {**SECRET, "gpus": 4},
    "multi-node": {**SECRET, "gpus": 8, "multiNode": {"enabled": True, "pipelineParallelSize": 2}},
    "redis": {**SECRET, "replicaCount": 3, "redis": {"enabled": True}},
    "router": {**SECRET, "replicaCount": 2, "router": {"enabled": True}, "redis": {"enabled": True}},
    "autoscaling": {**SECRET, "autoscaling": {"enabled": True}, "redis": {"url": "redis://cache:6379/0"}},
    "service monitor": {**SECRET, "serviceMonitor": {"alwaysRender": True}, "router": {"enabled": True},
                        "redis": {"enabled": True}},
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name="fs", namespace="serving")
    return [d for path, text in sorted(files.items()) if path.endswith(".yaml")
            for d in yaml.safe_load_all(text) if d]


def by_kind(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, (kind, suffix, [d["metadata"]["name"] for d in found])
    return found[0]


def server_env(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = by_kind(docs, "Deployment", "foresight-serve")["spec"]["template"]["spec"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}


@pytest.mark.parametrize("setup", list(SETUPS))
def test_helm_lints_and_renders_valid_manifests(setup: str) -> None:
    values = SETUPS[setup]
    lint = helm.lint(str(CHART), values, strict=True, namespace="serving", kube_version=f"v{KUBE}.0")
    assert lint["errors"] == [], lint
    assert [m["error"] for m in lint["messages"]] == ["icon is recommended"]  # INFO (module docstring)
    docs = render(values)
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= {d["kind"] for d in docs}
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            continue  # no CRD schema: test_service_monitor_is_rendered_when_asked
        for version in (KUBE, "1.37"):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{setup}: {doc['kind']} {doc['metadata']['name']}: "
                            f"{'.'.join(map(str, exc.path))}: {exc.message}")


def test_a_missing_secret_is_named_by_helm() -> None:
    with pytest.raises(Exception, match=r"secret.authSecret \(or secret.existingSecret\) is required"):
        render({})


def test_gpus_set_tensor_parallel_and_multi_node_sets_ray() -> None:
    docs = render(SETUPS["gpu tensor parallel"])
    env = server_env(docs)
    assert env["FORESIGHT_TENSOR_PARALLEL_SIZE"] == "4"
    limits = by_kind(docs, "Deployment", "foresight-serve")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert limits["limits"]["nvidia.com/gpu"] == 4
    multi = server_env(render(SETUPS["multi-node"]))
    assert multi["FORESIGHT_PIPELINE_PARALLEL_SIZE"] == "2" and multi["FORESIGHT_DISTRIBUTED_EXECUTOR_BACKEND"] == "ray"
    assert multi["RAY_ADDRESS"] and "FORESIGHT_REDIS_URL" not in multi


def test_redis_in_the_release_or_outside_it() -> None:
    docs = render(SETUPS["redis"])
    service = by_kind(docs, "Service", "-redis")
    assert server_env(docs)["FORESIGHT_REDIS_URL"] == f"redis://{service['metadata']['name']}:6379/0"
    redis_pod = by_kind(docs, "Deployment", "-redis")["spec"]["template"]
    assert service["spec"]["selector"] == redis_pod["metadata"]["labels"]
    outside = render(SETUPS["autoscaling"])
    assert server_env(outside)["FORESIGHT_REDIS_URL"] == "redis://cache:6379/0"
    assert not [d for d in outside if d["metadata"]["name"].endswith("-redis")]
    assert "replicas" not in by_kind(outside, "Deployment", "foresight-serve")["spec"]  # the HPA owns it
    assert by_kind(outside, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 4


def test_the_router_finds_the_replicas_and_its_edge_config_is_valid(tmp_path: Any) -> None:
    docs = render(SETUPS["router"])
    server_labels = by_kind(docs, "Deployment", "foresight-serve")["spec"]["template"]["metadata"]["labels"]
    router = by_kind(docs, "Deployment", "-router")
    pod = router["spec"]["template"]
    assert not set(pod["metadata"]["labels"].items()) >= set(server_labels.items()), \
        "the router's pods must not look like replicas (the server Service would send traffic to them)"
    edge, vr = pod["spec"]["containers"]
    cmd = vr["command"]
    selector = cmd[cmd.index("--selector") + 1:cmd.index("--service-discovery-port")]
    assert dict(s.split("=", 1) for s in selector) == server_labels
    assert cmd[cmd.index("--health-check-endpoint") + 1] == "/ready"
    binary = shutil.which("vllm-router") or str(REPO / ".venv" / "bin" / "vllm-router")
    usage = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60).stdout
    unknown = [flag for flag in cmd if flag.startswith("--") and flag not in usage]
    assert not unknown, f"flags vllm-router does not have: {unknown}"
    headless = by_kind(docs, "Service", "-replicas")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["selector"] == server_labels
    cfg = by_kind(docs, "ConfigMap", "-edge")["data"]["haproxy.cfg"]
    assert f"{headless['metadata']['name']}.serving.svc.cluster.local:8000" in cfg
    mount = edge["volumeMounts"][0]["mountPath"]
    assert edge["command"][-1] == f"{mount}/haproxy.cfg"
    role = by_kind(docs, "Role", "-router")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    assert by_kind(docs, "Service", "-router")["spec"]["selector"] == pod["metadata"]["labels"]
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy not installed (scripts/test-services.sh installs it)")
    (tmp_path / "edge.cfg").write_text(cfg)
    checked = subprocess.run([haproxy, "-c", "-f", str(tmp_path / "edge.cfg")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    shared = (REPO / "docker" / "router" / "haproxy.cfg").read_text()
    for rule in ("retry-on conn-failure empty-response 503", "balance hdr(x-session-id)", "hash-type consistent",
                 "option httpchk GET /ready", "acl openai_generation path /v1/chat/completions /v1/completions",
                 "option httpchk GET /liveness"):
        assert rule in cfg and rule in shared, f"compose's and the chart's edge disagree on {rule!r}"


def test_service_monitor_is_rendered_when_asked() -> None:
    assert not [d for d in render(SECRET) if d["kind"] == "ServiceMonitor"], "no CRD detected: not rendered"
    docs = render(SETUPS["service monitor"])
    monitor = by_kind(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = by_kind(docs, "Service", "foresight-serve")
    selected = [d["metadata"]["name"] for d in docs if d["kind"] == "Service"
                and monitor["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()]
    assert selected == [service["metadata"]["name"]], "only the replicas' Service, not the router's or Redis's"
    assert monitor["spec"]["endpoints"] == [{"port": service["spec"]["ports"][0]["name"], "path": "/metrics",
                                             "interval": "15s"}]
