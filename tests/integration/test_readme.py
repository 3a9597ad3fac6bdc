"""The README's "Talking to it" runs as written: its shell and Python blocks, in order, in one shell
session, against ``foresight serve`` with keys on; then Ctrl+C stops the server with exit 0 and no
traceback. The one liberty taken: the server listens on a free port, which replaces the README's 8000."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.server_process import launch_server, wait_ready

pytestmark = pytest.mark.integration
README = REPO / "README.md"
SECTION = "## Talking to it"


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block in the README's "Talking to it" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def test_the_readme_section_has_shell_and_python_blocks() -> None:
    langs = [lang for lang, _ in readme_blocks()]
    assert langs == ["bash", "python", "bash"], langs


def as_one_shell_session(blocks: list[tuple[str, str]], port: int, tmp: Path) -> str:
    lines = ["set -euo pipefail"]
    for i, (lang, code) in enumerate(blocks):
        code = code.replace("localhost:8000", f"localhost:{port}").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        if lang == "python":
            script = tmp / f"block{i}.py"
            script.write_text(code, encoding="utf-8")
            lines.append(f".venv/bin/python {script}")
        else:
            lines.append(code)
        lines.append(f"echo; echo '--- block {i} done'")  # curl's JSON ends with no newline
    return "\n".join(lines)


def test_the_readme_runs_as_written_and_ctrl_c_stops_the_server(tmp_path: Path) -> None:
    srv = wait_ready(launch_server(REPO / "models" / "foresight-numberreach", tmp_path,
                                   env={"FORESIGHT_AUTH_ENABLED": "true"}, new_session=True))
    try:
        script = as_one_shell_session(readme_blocks(), srv.port, tmp_path)
        env = {k: v for k, v in srv.env.items() if k != "KEY"}  # same settings as the server: same store
        run = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        out = run.stdout
        assert run.returncode == 0, f"stdout:\n{out}\nstderr:\n{run.stderr}"
        assert [line for line in out.splitlines() if line.startswith("--- block")] == [
            "--- block 0 done", "--- block 1 done", "--- block 2 done"]
        assert '"object":"chat.completion"' in out
        assert re.search(r"^3 ", out, flags=re.M)  # the openai client printed its n=4 choices
        plan_id = re.search(r'"plan_id":"(plan-[0-9a-f]+)"', out)
        assert plan_id is not None, out
        assert out.count(plan_id.group(1)) >= 2  # the plan, and the outcome reported on it
        assert '"success":true' in out
    finally:
        os.killpg(srv.proc.pid, signal.SIGINT)  # Ctrl+C in the server's terminal
        code = srv.proc.wait(90)
    log = srv.log_path.read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert "stopped by SIGINT" in log
