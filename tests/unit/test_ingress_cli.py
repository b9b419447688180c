"""`chimera sandbox mention` when it cannot deliver: what it says, its exit code, and what it leaves behind.
Delivery that works is tested with the real ingress in tests/integration/test_ingress.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chimera.cli.app import app
from chimera.db import StateStore
from chimera.settings import Settings
from mcp_servers.social.sandbox import SandboxPlatform
from tests.helpers.servers import free_port
from tests.unit.test_store import make_spec


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHIMERA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHIMERA_INGRESS_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("DATABASE_URL", "X_CONSUMER_SECRET", "META_APP_SECRET", "META_VERIFY_TOKEN", "INGRESS_ACCOUNTS"):
        monkeypatch.delenv(f"CHIMERA_{name}", raising=False)
    return tmp_path / "state"


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["sandbox", "mention", *args])


def test_without_a_campaign_handle_it_asks_for_one_and_adds_nothing(state: Path) -> None:
    result = cli("--platform", "twitter", "--author", "ana", "--text", "hi")
    assert result.exit_code == 2, result.output
    assert "--to HANDLE" in result.output
    mentions = SandboxPlatform(state / "sandbox", "twitter").recent_mentions(100)
    assert not [m for m in mentions if m["text"] == "hi"]


def test_with_the_ingress_down_the_mention_is_kept_for_polling(state: Path) -> None:
    store = StateStore.from_settings(Settings(state_dir=state))
    store.ensure_campaign(make_spec())  # the one twitter handle: @ava
    store.close()
    result = cli("--platform", "twitter", "--author", "ana", "--text", "@ava [b]where[/b] is the swap?")
    assert result.exit_code == 5, result.output
    assert "mention tw-m-" in result.output and "to ava added to the sandbox twitter" in result.output
    flat = " ".join(result.output.split())
    assert "the ingress is not reachable" in flat and "next cycle answers it (polling)" in flat
    [newest] = SandboxPlatform(state / "sandbox", "twitter", account="ava").recent_mentions(1)  # the account @ava's
    assert (newest["author"], newest["text"], newest["replied"]) == ("ana", "@ava [b]where[/b] is the swap?", False)


def test_blank_text_is_a_usage_error(state: Path) -> None:
    assert cli("--platform", "instagram", "--author", "ana", "--text", " ", "--to", "ava.ig").exit_code == 2
