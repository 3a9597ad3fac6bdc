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


def test_update_changes_a_key_in_place_and_logs_it(tmp_path: Path) -> None:
    made = keys(tmp_path, "create", "--name", "reports", "--priority-class", "batch", "--sharing-group", "bi")
    assert made.returncode == 0, made.stderr
    assert "batch" in keys(tmp_path, "list").stdout
    done = keys(tmp_path, "update", "reports", "--share-weight", "2.5", "--own-app", "--domains", "bi,ops")
    assert done.returncode == 0, done.stderr
    row = next(line for line in keys(tmp_path, "list").stdout.splitlines() if line.startswith("reports"))
    assert "batch" in row and "2.5" in row and "bi,ops" in row
    log = keys(tmp_path, "events").stdout.splitlines()
    assert "updated" in log[-1] and "share_weight: 1.0 -> 2.5" in log[-1] and "sharing_group: bi -> None" in log[-1]


@pytest.mark.parametrize(("args", "says"), [
    (("update", "reports"), "nothing to change"),
    (("update", "nobody", "--share-weight", "2"), "no active key named 'nobody'"),
    (("update", "reports", "--share-weight", "0"), "--share-weight must be above 0"),
    (("update", "reports", "--priority-class", "urgent"), "invalid choice"),
    (("update", "reports", "--sharing-group", "x", "--own-app"), "not both"),
    (("create", "--name", "x", "--sharing-group", "a b"), "--sharing-group must be"),
])
def test_bad_updates_are_cli_errors_naming_the_problem(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    assert keys(tmp_path, "create", "--name", "reports").returncode == 0
    out = keys(tmp_path, *args)
    assert out.returncode != 0 and says in out.stderr
