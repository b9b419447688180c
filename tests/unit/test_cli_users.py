"""`chimera user add | list | rotate | revoke | token` on a fresh state directory (SQLite)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from chimera.access.credentials import CREDENTIALS_ENV, USER_KEY_ENV
from chimera.cli.app import app

runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHIMERA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CHIMERA_DATABASE_URL", raising=False)
    monkeypatch.delenv(USER_KEY_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/chimera/credentials.json of the machine's
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def user(*args: str, as_: Path | None = None) -> Result:
    env = {CREDENTIALS_ENV: str(as_)} if as_ else {}
    return runner.invoke(app, ["user", *args], env=env)


def test_a_directory_is_bootstrapped_then_run_by_its_administrators(state: Path) -> None:
    root = state / "root.json"
    made = user("add", "root", "--tenant", "*", "--role", "administrator", "--bootstrap", "--out", str(root))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(root.stat().st_mode) == 0o600 and json.loads(root.read_text())["role"] == "administrator"
    again = user("add", "root2", "--tenant", "*", "--role", "administrator", "--bootstrap", "--out", str(state / "x"))
    assert again.exit_code == 1 and "only for the first user" in again.output

    maya_file = state / "maya.json"
    assert (
        user(
            "add", "maya", "--tenant", "acme", "--role", "campaign_manager", "--out", str(maya_file), as_=root
        ).exit_code
        == 0
    )
    refused = user(
        "add", "eve", "--tenant", "acme", "--role", "administrator", "--out", str(state / "e"), as_=maya_file
    )
    assert refused.exit_code == 1 and "maya is a campaign_manager: user.manage needs an administrator" in refused.output
    bad = user("add", "Bad Name", "--tenant", "acme", "--role", "administrator", as_=root)
    assert bad.exit_code == 2 and "not valid" in bad.output
    role = user("add", "zed", "--tenant", "acme", "--role", "owner", as_=root)
    assert role.exit_code == 2 and "unknown role 'owner'" in role.output

    listed = user("list", "--json", as_=root)
    assert listed.exit_code == 0, listed.output
    assert {(u["name"], u["tenant_id"], u["role"]) for u in json.loads(listed.stdout)} == {
        ("root", "*", "administrator"),
        ("maya", "acme", "campaign_manager"),
    }

    old_key = json.loads(maya_file.read_text())["key_id"]
    rotated = user("rotate", "maya", "--out", str(maya_file), as_=maya_file)  # her own key
    assert rotated.exit_code == 0 and json.loads(maya_file.read_text())["key_id"] != old_key
    assert user("revoke", "maya", as_=root).exit_code == 0
    gone = user("list", as_=maya_file)
    assert gone.exit_code == 1 and "user maya was revoked" in gone.output

    token = user("token", "--ttl", "60", as_=root)
    assert token.exit_code == 0 and token.stdout.count(".") == 1
    tenant_token = user("token", as_=maya_file)
    assert tenant_token.exit_code == 1


def test_without_credentials_the_cli_says_where_it_looked(state: Path) -> None:
    result = user("list")
    assert result.exit_code == 2
    assert "no user credentials" in result.output and "local-admin.json" in result.output
