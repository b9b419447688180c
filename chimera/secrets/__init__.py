"""Where Chimera's secrets come from: environment, mounted files, AWS Secrets Manager (specs/secrets.md).

`secret_source(settings)` builds the configured chain; the AWS source is imported only when configured.
"""

from chimera.secrets.base import SecretsError, SecretSource, StaticSecrets, require
from chimera.secrets.chain import ChainedSecrets
from chimera.secrets.env import EnvSecrets
from chimera.secrets.files import FileSecrets
from chimera.secrets.sources import secret_source

__all__ = [
    "ChainedSecrets",
    "EnvSecrets",
    "FileSecrets",
    "SecretSource",
    "SecretsError",
    "StaticSecrets",
    "require",
    "secret_source",
]
