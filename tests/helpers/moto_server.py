"""moto's real server on a loopback port, standing in for AWS (Secrets Manager, S3, ...) over HTTP.

@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server

def test_x(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_aws_credentials(monkeypatch)
    moto.reset()
    moto.client("secretsmanager").create_secret(Name="chimera/x", SecretString="v")
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.helpers.servers import free_port

REGION = "us-east-1"


def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, region: str = REGION) -> None:
    """Credentials moto accepts, so boto3 never reads a real profile, role or key of this machine."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe an instance metadata address


@dataclass(frozen=True)
class MotoServer:
    endpoint: str

    def client(self, service: str, region: str = REGION) -> Any:
        """A real boto3 client for `service` on this server (credentials: call fake_aws_credentials first)."""
        return boto3.session.Session().client(service, region_name=region, endpoint_url=self.endpoint)

    def reset(self) -> None:
        """Forget every resource, so one test's secrets are not another's."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield MotoServer(endpoint=f"http://127.0.0.1:{port}")
    finally:
        server.stop()
