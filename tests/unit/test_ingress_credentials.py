"""Webhook secrets: the environment first, else one 0600 file generated once in the state directory."""

from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chimera.ingress.credentials import NAMES, load_secrets, secrets_path
from chimera.settings import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(f"CHIMERA_{name.upper()}", raising=False)


def test_without_configuration_secrets_are_generated_once_into_a_private_file(tmp_path: Path, clean_env: None) -> None:
    settings = Settings(state_dir=tmp_path)
    first = load_secrets(settings)
    path = secrets_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.from_file == NAMES
    assert len({first.x_consumer_secret, first.meta_app_secret, first.meta_verify_token}) == 3
    assert len(first.x_consumer_secret) >= 40
    again = load_secrets(Settings(state_dir=tmp_path))  # another process: the same secrets
    assert (again.x_consumer_secret, again.meta_app_secret) == (first.x_consumer_secret, first.meta_app_secret)
    assert first.x_consumer_secret not in repr(first) and first.meta_verify_token not in repr(first)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_processes_starting_together_agree_on_one_file(tmp_path: Path, clean_env: None) -> None:
    with ThreadPoolExecutor(8) as pool:
        loaded = list(pool.map(lambda _: load_secrets(Settings(state_dir=tmp_path)), range(16)))
    assert len({s.meta_app_secret for s in loaded}) == 1


def test_the_environment_wins_and_only_the_rest_comes_from_the_file(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHIMERA_X_CONSUMER_SECRET", "from-env")
    secrets = load_secrets(Settings(state_dir=tmp_path))
    assert secrets.x_consumer_secret == "from-env"
    assert secrets.from_file == ("meta_app_secret", "meta_verify_token")
    for name in NAMES:
        monkeypatch.setenv(f"CHIMERA_{name.upper()}", f"env-{name}")
    every = load_secrets(Settings(state_dir=tmp_path / "fresh"))
    assert every.from_file == () and every.meta_verify_token == "env-meta_verify_token"
    assert not (tmp_path / "fresh").exists()  # nothing generated when nothing is missing


def test_a_file_readable_by_others_is_restricted_and_a_partial_one_replaced(tmp_path: Path, clean_env: None) -> None:
    settings = Settings(state_dir=tmp_path)
    path = secrets_path(settings)
    path.write_text(json.dumps({name: f"kept-{name}" for name in NAMES}))
    path.chmod(0o644)
    assert load_secrets(settings).x_consumer_secret == "kept-x_consumer_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text(json.dumps({"x_consumer_secret": "only-one"}))
    replaced = load_secrets(settings)
    assert replaced.x_consumer_secret != "only-one" and replaced.meta_app_secret
