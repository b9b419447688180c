"""The configured chain of secrets sources: environment, then files, then AWS Secrets Manager."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chimera.secrets.base import SecretSource
from chimera.secrets.chain import ChainedSecrets
from chimera.secrets.env import EnvSecrets
from chimera.secrets.files import FileSecrets

if TYPE_CHECKING:  # an annotation only: chimera.settings may one day read secrets itself
    from chimera.settings import Settings


def secret_source(settings: Settings) -> SecretSource:
    """Environment variables always (an override wins), mounted files when `secrets_dir` is set, AWS Secrets
    Manager when `aws_secrets_prefix` or `aws_secrets_region` is set. Hold on to the result: the AWS
    source caches its answers."""
    sources: list[SecretSource] = [EnvSecrets()]
    if settings.secrets_dir is not None:
        sources.append(FileSecrets(settings.secrets_dir))
    if settings.aws_secrets_prefix is not None or settings.aws_secrets_region is not None:
        from chimera.secrets.aws import AwsSecretsManager  # boto3 is imported only where AWS is configured

        sources.append(
            AwsSecretsManager(
                region=settings.aws_secrets_region,
                prefix=settings.aws_secrets_prefix or "",
                endpoint_url=settings.aws_secrets_endpoint_url,
                cache_seconds=settings.secrets_cache_seconds,
            )
        )
    return ChainedSecrets(sources)
