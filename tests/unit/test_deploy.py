"""docker/ and helm/: structure, and settings names that cannot drift from the settings model."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from server.config import ENV_PREFIX, Settings
from tests.conftest import REPO

DOCKER = REPO / "docker"
CHART = REPO / "helm" / "foresight-serve"
SETTINGS = set(Settings.model_fields)
# FORESIGHT_-prefixed names read by a CLI rather than the server's settings
CLI_ENV = {"QUANTIZE_PYTHON"}


def env_names(text: str) -> set[str]:
    return set(re.findall(rf"\b{ENV_PREFIX}([A-Z0-9_]+)", text))


def assert_known(names: set[str], where: str) -> None:
    unknown = {n for n in names if n.lower() not in SETTINGS and n not in CLI_ENV}
    assert not unknown, f"{where} uses settings that do not exist: {sorted(unknown)}"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def test_compose_services_are_complete() -> None:
    c = compose()
    services = c["services"]
    assert {"server", "server-cpu", "postgres", "prometheus", "grafana"} <= set(services)
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        if {"quantize", "quantize-cpu"} & set(svc.get("profiles", [])):  # a job that runs to completion
            assert svc.get("restart") == "no", name
        else:
            assert "healthcheck" in svc, name
            assert svc.get("restart") == "unless-stopped", name
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in c["volumes"], f"{name}: named volume {source} not declared"
            elif source.startswith("./"):
                assert (DOCKER / source).exists(), f"{name}: {source} missing"
    gpu = services["server"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert services["server-cpu"]["profiles"] == ["cpu"]
    for name in ("server", "server-cpu"):
        svc = services[name]
        assert any(v.endswith(":/models/model:ro") for v in svc["volumes"]), "model mounted read-only"
        assert "/ready" in " ".join(svc["healthcheck"]["test"])
        assert svc["env_file"] == ".env"


def test_compose_and_images_use_real_settings() -> None:
    for path in (DOCKER / "docker-compose.yml", DOCKER / ".env.example", DOCKER / "Dockerfile.gpu",
                 DOCKER / "Dockerfile.cpu", DOCKER / "Dockerfile.quantize", DOCKER / "Dockerfile.quantize-cpu",
                 DOCKER / "compose.test.yml", *CHART.rglob("*.yaml"),
                 CHART / "templates" / "NOTES.txt"):
        assert_known(env_names(path.read_text()), str(path.relative_to(REPO)))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert_known({k.upper() for k in values["settings"]}, "helm values.settings")


def test_secrets_stay_out_of_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=REPO)
    assert ignored.returncode == 0, "docker/.env must be git-ignored"
    example = (DOCKER / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=" in example and "FORESIGHT_AUTH_SECRET=" in example


@pytest.mark.parametrize("name", ["Dockerfile.gpu", "Dockerfile.cpu"])
def test_images_run_as_non_root_with_a_ready_check_and_no_downloads(name: str) -> None:
    text = (DOCKER / name).read_text()
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text and "/ready" in text
    assert "HF_HUB_OFFLINE=1" in text and "FORESIGHT_MODEL=/models/model" in text


def stages(text: str) -> list[str]:
    """A Dockerfile's stages, each from its FROM line on."""
    return [chunk for chunk in re.split(r"^(?=FROM )", text, flags=re.M) if chunk.startswith("FROM ")]


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.quantize-cpu"])
def test_cpu_images_take_their_base_and_keep_build_inputs_out_of_the_image(name: str) -> None:
    """scripts/compose-test.sh builds them on a local Debian with this machine's CA bundle and wheels:
    those reach the builder stage only, so none of them is a layer of the image."""
    text = (DOCKER / name).read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.M)
    deps, builder, final = stages(text)
    # dependencies (from pyproject.toml alone), our packages on them, the image from both
    assert deps.startswith("FROM ${BASE_IMAGE} AS deps") and builder.startswith("FROM deps AS builder")
    assert final.startswith("FROM ${BASE_IMAGE}\n")
    assert "docker/build-inputs/" in deps and "build-inputs" not in builder + final
    assert re.findall(r"^COPY --from=(\w+)", final, re.M) and set(re.findall(r"^COPY --from=(\w+)", final, re.M)) \
        <= {"deps", "builder"}
    assert re.search(r"^USER (?!root)\w+", final, re.M) and "HF_HUB_OFFLINE=1" in final
    for package in (p.parent.name for p in REPO.glob("*/__init__.py")):
        if package not in ("tests", "models"):
            assert f"COPY {package} ./{package}" in builder, f"{name} leaves out the {package} package"


def test_the_build_context_leaves_environments_state_and_caches_out() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".venv", ".venv-*", "var", "runs", "**/__pycache__", ".mypy_cache", "docker/.env", "*.db"} <= ignored
    assert "docker" not in ignored and "docker/build-inputs" not in ignored


def test_the_cpu_quantize_job_needs_no_gpu() -> None:
    job = compose()["services"]["quantize-cpu"]
    assert job["profiles"] == ["quantize-cpu"] and job["build"]["dockerfile"] == "docker/Dockerfile.quantize-cpu"
    assert "deploy" not in job
    assert compose()["services"]["server-cpu"]["shm_size"]  # vLLM's processes share memory
    from quantize.runner import ENV_VAR

    assert f"{ENV_VAR}=/opt/venv-quantize/bin/python" in (DOCKER / "Dockerfile.quantize-cpu").read_text()


def test_quantize_image_and_job() -> None:
    text = (DOCKER / "Dockerfile.quantize").read_text()
    assert re.search(r"^USER (?!root)\w+", text, re.M) and "HF_HUB_OFFLINE=1" in text
    assert 'ENTRYPOINT ["foresight", "quantize"]' in text
    # llm-compressor in its own environment, which the CLI finds through this variable
    from quantize.runner import ENV_VAR

    assert f"{ENV_VAR}=/opt/venv-quantize/bin/python" in text and "venv /opt/venv-quantize" in text
    job = compose()["services"]["quantize"]
    assert job["profiles"] == ["quantize"] and job["build"]["dockerfile"] == "docker/Dockerfile.quantize"
    assert any(v.endswith(":/models/src:ro") for v in job["volumes"])  # the original stays read-only
    assert any(v.endswith(":/models/out") for v in job["volumes"])
    gpu = job["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    # the base images agree on the vLLM release the gpu extra asks for
    gpu_base = re.search(r"ARG VLLM_IMAGE=\S+:v([\d.]+)", (DOCKER / "Dockerfile.gpu").read_text())
    quant_base = re.search(r"ARG VLLM_IMAGE=\S+:v([\d.]+)", text)
    assert gpu_base and quant_base and gpu_base.group(1) == quant_base.group(1)
    floor = re.search(r'"vllm>=([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert floor and tuple(map(int, gpu_base.group(1).split("."))) >= tuple(map(int, floor.group(1).split(".")))


def test_provisioning_files_parse_and_agree() -> None:
    prom = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j["dns_sd_configs"][0] for j in prom["scrape_configs"]}
    assert set(jobs["foresight"]["names"]) == {"server", "replica-a", "replica-b"} <= set(compose()["services"]) | {
        "server"} and jobs["foresight"]["port"] == 8000
    assert jobs["vllm-router"]["names"] == ["router"] and str(jobs["vllm-router"]["port"]) in " ".join(
        compose()["services"]["router"]["command"])
    assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]
    ds = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    dash = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/foresight.yml").read_text())
    assert dash["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    grafana_vols = compose()["services"]["grafana"]["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana_vols


def test_helm_chart_structure() -> None:
    from engine.scripted import ScriptedEngine
    from server.app import create_app
    from tests.unit.server.conftest import settings

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    dep = (CHART / "templates" / "deployment.yaml").read_text()
    routes = {getattr(r, "path", None) for r in create_app(settings(), ScriptedEngine()).routes}
    probes = re.findall(r"httpGet: \{path: (/\w+), port: http\}", dep)
    assert sorted(set(probes)) == ["/health", "/ready"] and set(probes) <= routes
    assert "startupProbe" in dep and "readinessProbe" in dep and "livenessProbe" in dep
    assert "containerPort: {{ .Values.service.port }}" in dep
    assert "targetPort: http" in (CHART / "templates" / "service.yaml").read_text()
    assert "preStop" in dep and "terminationGracePeriodSeconds" in dep
    drain = values["settings"]["drain_timeout_s"]
    assert values["terminationGracePeriodSeconds"] > drain + values["preStopSleepSeconds"]
    assert "nvidia.com/gpu" in dep and "tolerations" in dep and "nodeSelector" in dep
    assert "readOnly: true" in dep and "persistentVolumeClaim" in dep and "initContainers" in dep
    metrics_src = (REPO / "server" / "metrics.py").read_text()
    assert f'"{values["autoscaling"]["metric"]}"' in metrics_src, "the HPA scales on a metric the server exports"
    hpa = (CHART / "templates" / "hpa.yaml").read_text()
    assert "type: Pods" in hpa and "gpu" not in hpa.lower()
    assert "monitoring.coreos.com/v1" in (CHART / "templates" / "servicemonitor.yaml").read_text()
    assert "PodDisruptionBudget" in (CHART / "templates" / "pdb.yaml").read_text()
    assert "port-forward" in (CHART / "templates" / "NOTES.txt").read_text()
    for tpl in CHART.glob("templates/*.yaml"):
        text = tpl.read_text()
        assert text.count("{{") == text.count("}}"), tpl.name
        for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text):
            if ref.startswith("settings."):  # any setting may be given; it must exist
                assert ref.split(".")[1] in SETTINGS, f"{tpl.name}: {ref}"
                continue
            node = values
            for part in ref.split("."):
                assert isinstance(node, dict) and part in node, f"{tpl.name}: .Values.{ref} is not in values.yaml"
                node = node[part]


def test_compose_runs_two_replicas_behind_the_edge() -> None:
    from tests.integration.replica_stack import ROUTER_RETRIES

    services = compose()["services"]
    group = {"replica-a", "replica-b", "router", "edge", "redis"}
    assert all(services[n]["profiles"] == ["replicas"] for n in group)
    a, b = services["replica-a"]["environment"], services["replica-b"]["environment"]
    assert a == b and a["FORESIGHT_REDIS_URL"] == "redis://redis:6379/0"  # one store, one secret, one Redis
    assert "@postgres:5432/" in a["FORESIGHT_DATABASE_URL"]
    for name in ("replica-a", "replica-b"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert not services[name]["ports"], "replicas are reached through the edge only"
    cmd = services["router"]["command"]
    workers = cmd[cmd.index("--worker-urls") + 1:cmd.index("--policy")]
    assert workers == ["http://replica-a:8000", "http://replica-b:8000"]
    assert cmd[cmd.index("--health-check-endpoint") + 1] == "/ready"  # a draining replica stops getting work
    assert cmd[cmd.index("--policy") + 1] == "cache_aware"  # measured best (docs/scaling.md)
    flags = " ".join(cmd)
    assert " ".join(ROUTER_RETRIES) in flags, "the retries the loopback test proved"
    edge = services["edge"]
    assert edge["ports"] == ["127.0.0.1:8000:8000"]
    assert edge["environment"]["ROUTER_ADDR"] == f"router:{cmd[cmd.index('--port') + 1]}"
    assert {edge["environment"][k].split(":")[0] for k in ("REPLICA_A", "REPLICA_B")} == {"replica-a", "replica-b"}
    cfg_mount = next(v for v in edge["volumes"] if v.endswith("/etc/haproxy/foresight.cfg:ro"))
    cfg = (DOCKER / cfg_mount.split(":")[0]).read_text()
    assert all(f'"${{{v}}}"' in cfg for v in ("EDGE_BIND", "ROUTER_ADDR", "REPLICA_A", "REPLICA_B"))
    pinned = re.search(r"vllm-router==([\d.]+)", (DOCKER / "Dockerfile.router").read_text())
    assert pinned and f'"vllm-router=={pinned.group(1)}"' in (REPO / "pyproject.toml").read_text()
