"""AwsSecretsManager against moto's real server on loopback: secrets created with a real boto3 client, read
back through the source Chimera uses."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from chimera.secrets import SecretsError, require, secret_source
from chimera.secrets.aws import AwsSecretsManager
from chimera.settings import Settings
from tests.helpers.moto_server import REGION, MotoServer, fake_aws_credentials, moto_server
from tests.helpers.servers import free_port


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    fake_aws_credentials(monkeypatch)
    for name in ("CHIMERA_SECRET_CODEC_KEYS", "CHIMERA_SECRET_PLATFORM_TWITTER_MIRA"):
        monkeypatch.delenv(name, raising=False)
    moto.reset()
    return moto


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(
    aws: MotoServer, *, cache_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic
) -> AwsSecretsManager:
    return AwsSecretsManager(
        region=REGION, prefix="chimera/", endpoint_url=aws.endpoint, cache_seconds=cache_seconds, clock=clock
    )


def test_a_string_secret_under_the_prefix(aws: MotoServer) -> None:
    aws.client("secretsmanager").create_secret(Name="chimera/platform/twitter/mira", SecretString="tok-123")
    assert source(aws).get("platform/twitter/mira") == "tok-123"


def test_a_missing_secret_is_none(aws: MotoServer) -> None:
    aws.client("secretsmanager").create_secret(Name="other/codec-keys", SecretString="not under our prefix")
    assert source(aws).get("codec-keys") is None


def test_a_binary_secret_is_decoded_as_utf8(aws: MotoServer) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="chimera/codec-keys", SecretBinary='{"ring": "é"}'.encode())
    sm.create_secret(Name="chimera/blob", SecretBinary=b"\xff\xfe")
    assert source(aws).get("codec-keys") == '{"ring": "é"}'
    with pytest.raises(SecretsError, match="'blob' is binary, not UTF-8"):
        source(aws).get("blob")


def test_answers_are_cached_for_the_ttl(aws: MotoServer) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="chimera/api-key", SecretString="v1")
    clock = Clock()
    cached = source(aws, cache_seconds=300.0, clock=clock)
    assert cached.get("api-key") == "v1"
    assert cached.get("later") is None
    sm.put_secret_value(SecretId="chimera/api-key", SecretString="v2")
    sm.create_secret(Name="chimera/later", SecretString="now here")
    clock.now += 299
    assert cached.get("api-key") == "v1"  # within the TTL: AWS is not asked again
    assert cached.get("later") is None  # absence is cached too
    clock.now += 2
    assert cached.get("api-key") == "v2"
    assert cached.get("later") == "now here"


def test_a_secret_marked_for_deletion_is_an_error_naming_the_code(aws: MotoServer) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="chimera/old-token", SecretString="s3cr3t-value")
    sm.delete_secret(SecretId="chimera/old-token", RecoveryWindowInDays=7)
    with pytest.raises(SecretsError) as caught:
        source(aws).get("old-token")
    message = str(caught.value)
    assert "InvalidRequestException" in message and "'old-token'" in message
    assert "s3cr3t-value" not in message


def test_an_unreachable_endpoint_is_an_error(aws: MotoServer) -> None:
    dead = AwsSecretsManager(region=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SecretsError, match="cannot read secret 'x' from AWS Secrets Manager"):
        dead.get("x")


def test_secret_source_reads_aws_after_env_and_files(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    aws.client("secretsmanager").create_secret(Name="chimera/codec-keys", SecretString="from-aws")
    settings = Settings(aws_secrets_region=REGION, aws_secrets_prefix="chimera/", aws_secrets_endpoint_url=aws.endpoint)
    chain = secret_source(settings)
    assert repr(chain) == "ChainedSecrets(env, aws)"
    assert require(chain, "codec-keys") == "from-aws"
    monkeypatch.setenv("CHIMERA_SECRET_CODEC_KEYS", "from-env")
    assert chain.get("codec-keys") == "from-env"
    with pytest.raises(SecretsError, match="'nope' is not set"):
        require(chain, "nope")
