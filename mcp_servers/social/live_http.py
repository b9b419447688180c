"""HTTP plumbing the live social backends share: one request, transport failures sorted by what they imply."""

from __future__ import annotations

from typing import Any

# The mcp SDK ships its HTTP client as the `httpx2` distribution; there is no plain `httpx` in the venv.
import httpx2 as httpx

from mcp_servers.common import ToolError
from mcp_servers.social.ledger import OutcomeUnknown

DEFAULT_TIMEOUT_SECONDS = 10.0


def send(client: httpx.Client, method: str, path: str, *, publishing: bool, what: str, **kwargs: Any) -> httpx.Response:
    """Send one request. Failing to connect means nothing reached the platform ("unavailable"); any later
    transport failure of a publishing request means it may have been carried out ("outcome_unknown")."""
    try:
        return client.request(method, path, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ToolError("unavailable", f"{what}: cannot reach the API: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        if publishing:
            raise OutcomeUnknown(f"{what}: no answer ({type(exc).__name__})") from exc
        raise ToolError("unavailable", f"{what}: no answer ({type(exc).__name__})") from exc


def env_float(value: str | None, default: float) -> float:
    return float(value) if value else default
