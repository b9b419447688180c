"""Process settings: CHIMERA_* environment variables and `.env`, with offline defaults.

The Temporal side (address, queues, timeouts, retries, judge defaults) lives in temporal.yaml;
see chimera/temporal_config.py.
"""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class McpServerConfig(BaseModel):
    """One allowlisted MCP server. Only servers named here are ever started or contacted."""

    transport: Literal["stdio"] = "stdio"
    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)


def _sandbox_server(module: str) -> McpServerConfig:
    return McpServerConfig(command=sys.executable, args=["-m", module])


def default_mcp_servers() -> dict[str, McpServerConfig]:
    return {
        "twitter": _sandbox_server("mcp_servers.twitter"),
        "instagram": _sandbox_server("mcp_servers.instagram"),
        "news": _sandbox_server("mcp_servers.news"),
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHIMERA_", env_file=".env", env_nested_delimiter="__", extra="ignore")

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
    model_provider: Literal["offline"] = "offline"
    mcp_servers: dict[str, McpServerConfig] = Field(default_factory=default_mcp_servers)
    mcp_timeout_seconds: float = 30.0
    mcp_max_result_bytes: int = 256 * 1024
    safety_rules: Path | None = Field(None, description="a rules YAML file; default: the embedded rules")
    # Estimated cost per task type, reserved before a task runs (seed section 4.3 cost table).
    cost_estimates_usd: dict[str, float] = Field(default_factory=lambda: {"post": 0.002, "reply": 0.0003})
    default_cost_estimate_usd: float = 0.01

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
