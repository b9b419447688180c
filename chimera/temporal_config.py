"""temporal.yaml, and the one way Chimera connects to Temporal.

Precedence for the connection: Temporal's own environment configuration (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_PROFILE and its TOML profiles) over temporal.yaml over defaults.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile

from chimera.codec import EncryptedFailureConverter, codec_for
from chimera.secrets.base import SecretSource
from chimera.settings import Settings
from schemas.activity_table import Activities
from schemas.options import ActivityOptions, RetrySpec, RuntimeOptions, TaskQueues
from schemas.policy import JudgePolicy


class DevServerConfig(BaseModel):
    ui_port: int = 8233
    db_filename: str = "temporal.db"
    suggest_continue_as_new_at: int = 10240


class YamlRetry(RetrySpec):
    """A retry policy as temporal.yaml states it: a misspelt key is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_error_types(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "non_retryable_error_types" in raw:
            raise ValueError(
                "non_retryable_error_types is declared in code, once per activity (schemas/activity_table.py), "
                "not in temporal.yaml"
            )
        return raw


class YamlActivity(ActivityOptions):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retry: YamlRetry = YamlRetry()


class TemporalConfig(BaseModel):
    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    dev_server: DevServerConfig = DevServerConfig()
    task_queues: TaskQueues = TaskQueues()
    search_attributes: dict[str, Literal["Keyword", "Double", "Int", "Bool", "Text", "Datetime"]] = Field(
        default_factory=dict
    )
    activities: dict[str, YamlActivity] = Field(default_factory=dict)
    judge: JudgePolicy = JudgePolicy()
    review_deadline_seconds: int = 72 * 3600

    def runtime_options(self) -> RuntimeOptions:
        unknown = set(self.activities) - Activities.names()
        if unknown:
            raise ValueError(
                f"temporal.yaml names unknown activities: {sorted(unknown)} (known: {sorted(Activities.names())})"
            )
        activities = {name: ActivityOptions.model_validate(o.model_dump()) for name, o in self.activities.items()}
        return RuntimeOptions(task_queues=self.task_queues, activities=activities)

    def connection(self) -> tuple[str, str, dict[str, Any]]:
        """(address, namespace, extra connect kwargs) after Temporal's env config is applied."""
        profile = ClientConfigProfile.load().to_client_connect_config()
        address = profile.get("target_host") or self.address
        namespace = profile.get("namespace") or self.namespace
        extra: dict[str, Any] = {k: v for k, v in profile.items() if k in ("api_key", "tls", "rpc_metadata")}
        return address, namespace, extra


class ConfigError(Exception):
    pass


def load_temporal_config(path: Path) -> TemporalConfig:
    if not path.exists():
        return TemporalConfig(search_attributes=dict(DEFAULT_SEARCH_ATTRIBUTES))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return TemporalConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def data_converter(settings: Settings, source: SecretSource | None = None) -> DataConverter:
    """Pydantic payloads, encrypted by the payload codec when settings turn encryption on (specs/codec.md).

    With encryption on, failure messages and stack traces are encrypted too (chimera/codec/failures.py)."""
    codec = codec_for(settings, source)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=EncryptedFailureConverter,
    )


@functools.cache
def process_data_converter() -> DataConverter:
    """This process's data converter, from its settings and secrets, resolved once (connect()'s default)."""
    return data_converter(Settings())


async def connect(
    config: TemporalConfig, *, address: str | None = None, converter: DataConverter | None = None
) -> Client:
    """A client for temporal.yaml's server; its workers inherit its data converter (process_data_converter()
    unless `converter` is given)."""
    target, namespace, extra = config.connection()
    return await Client.connect(
        address or target,
        namespace=namespace,
        data_converter=converter or process_data_converter(),
        **extra,
    )


DEFAULT_SEARCH_ATTRIBUTES: dict[str, Literal["Keyword", "Double", "Int"]] = {
    "TenantId": "Keyword",
    "AgentId": "Keyword",
    "CampaignId": "Keyword",
    "TaskType": "Keyword",
    "Platform": "Keyword",
    "ReviewState": "Keyword",
    "Confidence": "Double",
    "CampaignState": "Keyword",
    "CampaignCycle": "Int",
}


def registered_search_attributes(config: TemporalConfig) -> dict[str, str]:
    """What to register: the defaults always (the workflows upsert them, and an older temporal.yaml may not
    list the newer ones), plus what temporal.yaml adds."""
    return {**DEFAULT_SEARCH_ATTRIBUTES, **config.search_attributes}


async def ensure_search_attributes(client: Client, config: TemporalConfig) -> list[str]:
    """Register Chimera's search attributes on a server that lacks them; returns those added.

    `chimera dev` registers them at boot; this covers an existing server (and the test server).
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
    from temporalio.service import RPCError

    wanted = registered_search_attributes(config)
    existing: set[str] = set()
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError:
        pass  # the time-skipping test server cannot list; adding is idempotent enough there
    missing = {name: kind for name, kind in wanted.items() if name not in existing}
    if not missing:
        return []
    types = {name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}") for name, kind in missing.items()}
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(namespace=client.namespace, search_attributes=types)
    )
    return sorted(missing)
