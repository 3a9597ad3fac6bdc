"""``foresight keys``: roles, domains, expiry, rotation and the event log from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def keys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FORESIGHT_STORE_PATH": str(tmp_path / "s.db"), "FORESIGHT_AUTH_SECRET_FILE":
           str(tmp_path / "secret")}
    return subprocess.run([sys.executable, "-m", "foresight", "keys", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_create_rotate_revoke_and_the_log(tmp_path: Path) -> None:
    made = keys(tmp_path, "create", "--name", "billing-app", "--domains", "billing,refunds", "--expires", "30d")
    assert made.returncode == 0, made.stderr
    assert keys(tmp_path, "create", "--name", "ops", "--role", "admin").returncode == 0
    listing = keys(tmp_path, "list").stdout
    assert "billing,refunds" in listing and "admin" in listing and made.stdout.strip() not in listing
    rotated = keys(tmp_path, "rotate", "--name", "billing-app", "--grace", "0")
    assert rotated.returncode == 0 and rotated.stdout.strip().startswith("fsk-")
    assert rotated.stdout.strip() != made.stdout.strip()
    assert keys(tmp_path, "revoke", "--name", "billing-app").returncode == 0
    log = keys(tmp_path, "events").stdout.splitlines()
    assert [line.split()[2:4] for line in log] == [["created", "billing-app"], ["created", "ops"],
                                                   ["rotated", "billing-app"], ["revoked", "billing-app"]]


@pytest.mark.parametrize(("args", "says"), [
    (("--domains", "a b"), "not a domain list"),
    (("--expires", "soon"), "not a duration"),
    (("--role", "root"), "invalid choice"),
])
def test_bad_flags_are_named(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    r = keys(tmp_path, "create", "--name", "x", *args)
    assert r.returncode == 2 and says in r.stderr
