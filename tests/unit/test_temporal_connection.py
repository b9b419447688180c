"""Connecting to a Temporal cluster or Temporal Cloud: temporal.yaml's address and namespace, overridden by
Temporal's own environment configuration, which carries the API key or the mTLS client certificate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from chimera.temporal_config import TemporalConfig

YAML = TemporalConfig(address="temporal.internal:7233", namespace="chimera")


@pytest.fixture(autouse=True)
def no_temporal_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no TEMPORAL_* from the machine, no user profile file."""
    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "temporal.toml"
    empty.write_text("")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(empty))


def test_temporal_yaml_without_environment() -> None:
    assert YAML.connection() == ("temporal.internal:7233", "chimera", {})


def test_temporal_cloud_with_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "us-east-1.aws.api.temporal.io:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "chimera-prod.a1b2c")
    monkeypatch.setenv("TEMPORAL_API_KEY", "test-key")
    address, namespace, extra = YAML.connection()
    assert (address, namespace) == ("us-east-1.aws.api.temporal.io:7233", "chimera-prod.a1b2c")
    assert extra == {"api_key": "test-key", "tls": True}  # an API key implies TLS


def test_mtls_client_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "client.pem").write_bytes(b"CERT")
    (tmp_path / "client.key").write_bytes(b"KEY")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "chimera-prod.a1b2c.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "client.pem"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "client.key"))
    address, namespace, extra = YAML.connection()
    assert (address, namespace) == ("chimera-prod.a1b2c.tmprl.cloud:7233", "chimera")
    tls = extra["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key) == (b"CERT", b"KEY")
    assert "api_key" not in extra


def test_tls_without_client_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_TLS", "true")
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "temporal.internal")
    _, _, extra = YAML.connection()
    assert isinstance(extra["tls"], TLSConfig) and extra["tls"].domain == "temporal.internal"
