"""Process settings: CHIMERA_* environment variables and `.env`, with offline defaults.

The Temporal side (address, queues, timeouts, retries, judge defaults) lives in temporal.yaml;
see chimera/temporal_config.py.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.models import ModelPrice


class McpServerConfig(BaseModel):
    """One allowlisted MCP server. Only servers named here are ever started or contacted."""

    transport: Literal["stdio", "http"] = "stdio"
    command: str | None = Field(None, description="stdio: the program to start")
    args: list[str] = Field(default_factory=list, description="stdio: its arguments")
    env: dict[str, str] = Field(default_factory=dict, description="stdio: extra environment for the child")
    pass_env: list[str] = Field(
        default_factory=list,
        description="stdio: names of this process's environment variables the child also gets (values never in config)",
    )
    url: str | None = Field(None, description="http: the streamable HTTP endpoint, e.g. http://127.0.0.1:8000/mcp")
    timeout_seconds: float | None = Field(None, gt=0, description="per-call timeout; default mcp_timeout_seconds")
    # Tools that act in public. They are never offered to the model; only the publish activity calls them,
    # after the Judge (or a human) approved the content.
    publish_tools: list[str] = Field(default_factory=list)
    # Arguments the host fills from the task (tenant_id, agent_id): hidden from the model, never its choice.
    bound_arguments: list[str] = Field(default_factory=list)
    max_sessions: int | None = Field(
        None, ge=1, description="open sessions kept for this server per process; default mcp_max_sessions_per_server"
    )

    @model_validator(mode="after")
    def _endpoint(self) -> McpServerConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio server needs a command")
        if self.transport == "http" and not self.url:
            raise ValueError("an http server needs a url")
        return self


# What selects and reaches the memory backend (chimera/memory/factory.py, weaviate.py).
MEMORY_ENV = (
    "CHIMERA_MEMORY_BACKEND",
    "CHIMERA_MEMORY_DIR",
    "CHIMERA_WEAVIATE_URL",
    "CHIMERA_WEAVIATE_GRPC_PORT",
    "CHIMERA_WEAVIATE_API_KEY",
    "CHIMERA_WEAVIATE_COLLECTION",
)

# What reaches the sandbox chain and the keystore password (mcp_servers/wallet/sandbox.py, chimera/chain/keystore.py).
WALLET_ENV = (
    "CHIMERA_WALLET_RPC_URL",
    "CHIMERA_WALLET_SCRYPT_N",
    "CHIMERA_SECRET_WALLET_KEYSTORE_PASSWORD",
    "CHIMERA_WALLET_BACKEND",
    "CHIMERA_CDP_NETWORK",
    "CHIMERA_CDP_BASE_URL",
    "CHIMERA_SECRET_CDP_API_KEY_ID",
    "CHIMERA_SECRET_CDP_API_KEY_SECRET",
    "CHIMERA_SECRET_CDP_WALLET_SECRET",
)


def _sandbox_server(module: str, **kwargs: Any) -> McpServerConfig:
    return McpServerConfig(command=sys.executable, args=["-m", module], **kwargs)


class WorkerConcurrency(BaseModel):
    """How many activities each role's worker runs at once, and workflow tasks on the planner queue.

    The defaults suit a 2-core machine: activities mostly wait on MCP servers, models and the database,
    and the MCP session pool bounds the processes behind them. Synchronous (database) activities share one
    thread pool as large as the roles' limits together."""

    planner: int = Field(32, ge=1, description="observe, plan, budget and audit activities")
    worker: int = Field(16, ge=1, description="execute_task, publish")
    judge: int = Field(
        16, ge=1, description="judge_result, record_verdict, record_review, commit_result, record_outcome"
    )
    workflow_tasks: int = Field(50, ge=1, description="concurrent workflow tasks on the planner queue")
    # Each cached campaign holds its state and sandbox (~0.6 MB measured); an evicted one replays its
    # (short, continued-as-new) history when its next timer or signal arrives. At least workflow_tasks.
    cached_workflows: int = Field(200, ge=1, description="workflows the planner worker keeps in memory")


def default_mcp_servers() -> dict[str, McpServerConfig]:
    # `account`: the host binds each social call to the platform account its agent holds (specs/accounts.md).
    return {
        "twitter": _sandbox_server(
            "mcp_servers.twitter", publish_tools=["post_tweet", "reply_to_mention"], bound_arguments=["account"]
        ),
        "instagram": _sandbox_server(
            "mcp_servers.instagram", publish_tools=["post", "reply_to_comment"], bound_arguments=["account"]
        ),
        "news": _sandbox_server("mcp_servers.news"),
        # Above the live backend's 60 s HTTP timeout: a host timeout mid-request could bill an image twice.
        "images": _sandbox_server("mcp_servers.images", timeout_seconds=90.0),
        # Two sessions: each memory server process holds the embedding model and a LanceDB handle (~140 MB).
        "memory": _sandbox_server(
            "mcp_servers.memory",
            bound_arguments=["tenant_id", "agent_id"],
            max_sessions=2,
            pass_env=list(MEMORY_ENV),  # the server reads the memory the workers read (Weaviate or files)
        ),
        # transfer, pay_request and pay_x402 move money: never offered to a model, called only by an approved step.
        "wallet": _sandbox_server(
            "mcp_servers.wallet",
            publish_tools=["transfer", "pay_request", "pay_x402"],
            bound_arguments=["tenant_id", "agent_id"],
            pass_env=list(WALLET_ENV),
        ),
    }


class PaymentSettings(BaseModel):
    """The default daily payment caps (until `chimera payment limit` sets a tenant's or an agent's), and how
    often a sent payment's confirmations are checked (specs/payments.md)."""

    model_config = ConfigDict(frozen=True)

    agent_daily_usdc: Decimal = Field(Decimal(25), ge=0, description="an agent pays at most this much a day")
    tenant_daily_usdc: Decimal = Field(Decimal(100), ge=0, description="a tenant's agents pay at most this a day")
    confirm_poll_seconds: int = Field(2, ge=1, le=600, description="between two looks at a sent payment")


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error never echoes the environment it read (it holds secrets).
    model_config = SettingsConfigDict(
        env_prefix="CHIMERA_", env_file=".env", env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True
    )

    state_dir: Path = Field(Path(".chimera"), description="local state: SQLite files, sandbox data, logs")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL the application connects with (on PostgreSQL: the chimera_app role)"
    )
    migration_database_url: str | None = Field(
        None, description="URL `chimera db upgrade` migrates with (the table owner); default: database_url"
    )
    audit_database_url: str | None = Field(
        None, description="optional URL of the auditor role, for `chimera audit verify` across tenants"
    )
    temporal_config: Path = Field(Path("temporal.yaml"), description="the Temporal-side settings file")
    # auto: the live providers when Anthropic or Gemini credentials are in the environment, else offline.
    model_provider: Literal["auto", "offline", "live"] = "auto"
    model_catalog: Path | None = Field(None, description="a model catalog YAML; default: the embedded one")
    model_tiers: dict[str, Any] = Field(
        default_factory=dict, description='tier changes merged into the catalog, e.g. {"post": {"effort": "low"}}'
    )
    model_prices: list[ModelPrice] = Field(default_factory=list, description="price entries added to the catalog")
    max_tool_calls: int = Field(4, ge=0, le=20, description="tool calls a model may make while writing one draft")
    mcp_servers: dict[str, McpServerConfig] = Field(default_factory=default_mcp_servers)
    mcp_timeout_seconds: float = 30.0
    worker_concurrency: WorkerConcurrency = WorkerConcurrency()
    observe_share_seconds: float = Field(
        5.0, ge=0, description="campaigns of a tenant observing within this long share the platform reads (0: never)"
    )
    mcp_max_sessions_per_server: int = Field(
        4, ge=1, description="open sessions kept per MCP server and process; each stdio session is a child process"
    )
    mcp_session_idle_seconds: float = Field(300.0, gt=0, description="an idle pooled session is closed after this")
    mcp_max_result_bytes: int = Field(256 * 1024, description="a larger tool result is refused")
    mcp_inline_result_bytes: int = Field(
        8 * 1024, description="a larger tool result is kept in the state store and referenced by key"
    )
    safety_rules: Path | None = Field(None, description="a rules YAML file; default: the embedded rules")
    # Estimated cost per task type, reserved before a task runs (seed section 4.3 cost table).
    cost_estimates_usd: dict[str, float] = Field(
        # "review": the Judge's model review of a draft, added to each task's reservation when models are live.
        default_factory=lambda: {"post": 0.002, "reply": 0.0003, "plan": 0.015, "review": 0.012}
    )
    default_cost_estimate_usd: float = 0.01
    # Temporal worker versioning (specs/deploy.md): both set, workers poll as this deployment version;
    # neither set, they run unversioned.
    worker_deployment_name: str | None = Field(
        None, min_length=1, pattern=r"^[^.]+$", description="Temporal worker deployment name (no dots)"
    )
    worker_build_id: str | None = Field(None, min_length=1, description="this build's id, e.g. the image tag")
    # The webhook ingress (specs/ingress.md). Secrets unset: generated once into <state_dir>/ingress-secrets.json.
    ingress_host: str = Field("127.0.0.1", description="where `chimera ingress` listens")
    ingress_port: int = Field(8789, ge=1, le=65535)
    ingress_url: str | None = Field(None, description="where the sandbox delivers webhooks; default host:port above")
    ingress_accounts: dict[str, str] = Field(
        default_factory=dict, description='"platform:account id" -> handle, e.g. {"twitter:2244994945": "@mira"}'
    )
    x_consumer_secret: SecretStr | None = Field(None, description="X app's consumer secret (signs X webhooks)")
    meta_app_secret: SecretStr | None = Field(None, description="Meta app secret (signs Instagram webhooks)")
    meta_verify_token: SecretStr | None = Field(None, description="the token Meta echoes when subscribing")
    # --- secrets sources (chimera/secrets) ---
    # Lookup order (specs/secrets.md): CHIMERA_SECRET_* environment variables, then files, then AWS.
    secrets_dir: Path | None = Field(None, description="mounted secret files, one per key (a Kubernetes volume)")
    aws_secrets_region: str | None = Field(None, description="AWS Secrets Manager region; set it to use AWS")
    aws_secrets_prefix: str | None = Field(None, description='prefix of every AWS secret id, e.g. "chimera/"')
    aws_secrets_endpoint_url: str | None = Field(None, description="AWS endpoint override (VPC endpoint, moto)")
    secrets_cache_seconds: float = Field(300.0, ge=0, description="how long an AWS answer is reused")
    # --- payload codec (chimera/codec) ---
    # auto: encrypt when the key-ring secret exists; on: refuse to start without it (specs/codec.md).
    payload_encryption: Literal["auto", "on", "off"] = "auto"
    codec_keys_secret: str = Field("codec-keys", min_length=1, description="secret holding the codec key ring")
    codec_server_host: str = Field("127.0.0.1", description="where the codec server for the Web UI listens")
    codec_server_port: int = Field(8234, ge=1, le=65535)
    codec_cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8233", "http://127.0.0.1:8233"],
        description="Web UI origins allowed to call the codec server",
    )
    # --- alerts (chimera/alerts) ---
    # Where alerts go (specs/alerts.md), e.g. CHIMERA_NOTIFIERS as a JSON list of chimera.alerts.config.NotifierConfig
    # objects. Validated when the notifiers are built (chimera.alerts.dispatch.notifiers_from), whose errors never
    # echo the input (a webhook URL may hold a token).
    payments: PaymentSettings = PaymentSettings()
    notifiers: list[Any] = Field(default_factory=list, description="webhook and smtp notifiers (unique names)")
    anomaly_factor: float = Field(3.0, gt=1, description="an agent's hour alerts at this multiple of its normal")
    anomaly_min_spend_usd_per_hour: float = Field(1.0, ge=0, description="spend in an hour below this never alerts")
    anomaly_min_rejections: int = Field(3, ge=1, description="fewer rejections in an hour never alert")
    anomaly_history_days: int = Field(7, ge=1, le=90, description="how far back an agent's normal is measured")
    anomaly_min_history_hours: int = Field(24, ge=1, description="an agent seen for less is not judged")
    anomaly_min_active_hours: int = Field(6, ge=1, description="hours with spend needed for a spend normal")
    anomaly_min_judged: int = Field(20, ge=1, description="judged drafts needed for a rejection normal")
    # --- platform accounts (chimera/accounts) ---
    # --- people and request signing (chimera/access) ---

    @model_validator(mode="after")
    def _versioning_pair(self) -> Settings:
        # One without the other would silently run unversioned: refuse it instead.
        if (self.worker_deployment_name is None) != (self.worker_build_id is None):
            raise ValueError("set both worker_deployment_name and worker_build_id, or neither")
        return self

    @cached_property
    def sandbox_dir(self) -> Path:
        return self.state_dir / "sandbox"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'chimera.db').resolve()}"

    def ensure_dirs(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.sandbox_dir.mkdir(parents=True, exist_ok=True)
