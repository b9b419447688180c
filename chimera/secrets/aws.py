"""Secrets from AWS Secrets Manager, through boto3 (credentials from its usual chain: env, profile, role).

Answers, including "no such secret", are cached for `cache_seconds`, so hot paths do not call AWS each time;
a changed or new secret shows after at most that long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chimera.secrets.base import SecretsError

NOT_FOUND = "ResourceNotFoundException"


class AwsSecretsManager:
    kind = "aws"

    def __init__(
        self,
        *,
        region: str | None = None,
        prefix: str = "",
        endpoint_url: str | None = None,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.region, self.prefix, self.endpoint_url = region, prefix, endpoint_url
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._client: Any = None  # made on first use: building the chain never touches AWS
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()
        self._client_lock = threading.Lock()

    def get(self, name: str) -> str | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and now < cached[0]:
            return cached[1]
        value = self._fetch(name)
        with self._lock:
            self._cache[name] = (now + self.cache_seconds, value)
        return value

    def _fetch(self, name: str) -> str | None:
        secret_id = self.prefix + name
        try:
            answer = self._secretsmanager().get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "unknown")
            if code == NOT_FOUND:
                return None
            raise SecretsError(
                f"AWS Secrets Manager refused secret '{name}' (id {secret_id!r}): {code}: {error.get('Message', '')}"
            ) from None
        except BotoCoreError as exc:  # no credentials, no region, endpoint unreachable
            raise SecretsError(f"cannot read secret '{name}' from AWS Secrets Manager: {exc}") from None
        if "SecretString" in answer:
            return str(answer["SecretString"])
        try:
            return bytes(answer["SecretBinary"]).decode("utf-8")
        except UnicodeDecodeError:
            raise SecretsError(f"AWS secret '{name}' is binary, not UTF-8 text") from None

    def _secretsmanager(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> Any:
        try:
            # A session of its own: boto3's default session is not safe to share across threads.
            return boto3.session.Session().client(
                "secretsmanager",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10),
            )
        except BotoCoreError as exc:
            hint = "set aws_secrets_region or AWS_REGION"
            raise SecretsError(f"cannot use AWS Secrets Manager: {exc} ({hint})") from None

    def __repr__(self) -> str:
        return f"AwsSecretsManager(region={self.region!r}, prefix={self.prefix!r})"
