"""Debian's Prometheus on the repo's alert rules, scaled down to a benchmark's run (for bench/drift.py).

The rules are the repo's (docker/prometheus/alerts.yml) with every ``for`` set to 0 s and the fidelity
alert's windows scaled down (30 min → 1 min; the previous day, 1 day ending an hour ago → 30 min ending a minute
ago), so that alerts a real deployment would raise
after half an hour show within a few minutes; promtool tests the rules as written
(tests/integration/test_prometheus.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
ALERTS = REPO / "docker" / "prometheus" / "alerts.yml"


def scaled_rules(text: str) -> str:
    text = re.sub(r"for: \S+", "for: 0s", text)
    return text.replace("[30m]", "[1m]").replace("[1d]", "[30m]").replace(" offset 1h", " offset 1m")


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    url: str

    @classmethod
    def start(cls, work: Path, server_port: int) -> Prometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            raise SystemExit("prometheus not found (Debian package 'prometheus'; scripts/test-services.sh installs it)")
        from tests.integration.server_process import free_port

        rules = work / "alerts.yml"
        rules.write_text(scaled_rules(ALERTS.read_text()))
        config = {"global": {"scrape_interval": "2s", "evaluation_interval": "2s"}, "rule_files": [str(rules)],
                  "scrape_configs": [{"job_name": "foresight",
                                      "static_configs": [{"targets": [f"127.0.0.1:{server_port}"]}]}]}
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = (work / "prometheus.log").open("wb")
        proc = subprocess.Popen([binary, f"--config.file={work / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    return cls(proc, url)
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        proc.kill()
        raise RuntimeError(f"prometheus did not become ready: {(work / 'prometheus.log').read_text()[-2000:]}")

    def alerts(self) -> list[str]:
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=30).json()
        return sorted(f"{a['labels']['alertname']} {a['state']} domain={a['labels'].get('domain', '-')} "
                      + (f"model={a['labels']['model']} " if "model" in a["labels"] else "")
                      + f"value={float(a.get('value', 'nan')):.3f}" for a in body["data"]["alerts"])

    def query(self, expr: str) -> list[dict]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=30).json()
        return list(body["data"]["result"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
