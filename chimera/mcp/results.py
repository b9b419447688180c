"""What the host accepts back from a server: size-capped text, JSON only (no NaN or Infinity), values that
match the pinned schemas, and a server's error JSON read into an McpToolError. Results are data, never
instructions; server-supplied text echoed into messages is bounded (`truncate`)."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from mcp.types import TextContent

from chimera.mcp.errors import McpResultInvalid, McpToolError

# Server-supplied text is echoed into exception messages; keep those bounded.
MAX_MESSAGE_CHARS = 2000


def truncate(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "…"


def schema_problem(schema: dict[str, Any], value: Any) -> str | None:
    """The first way `value` breaks `schema`, or None."""
    try:
        error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    except SchemaError as exc:
        return f"the pinned schema itself is invalid: {exc.message}"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"{where}: {truncate(error.message)}"


def check_size(server: str, text: str, max_bytes: int) -> None:
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise McpResultInvalid(server, f"result is {size} bytes, over the {max_bytes}-byte limit")


def single_text(server: str, content: list[Any], *, what: str, max_bytes: int) -> str:
    if len(content) != 1 or not isinstance(content[0], TextContent):
        raise McpResultInvalid(server, f"{what} must return exactly one text block")
    text: str = content[0].text
    check_size(server, text, max_bytes)
    return text


def parse_json(server: str, text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise McpResultInvalid(server, f"result is not valid JSON: {truncate(str(exc))}") from exc


def tool_error(server: str, text: str) -> McpToolError:
    """Read a server's error JSON; anything else (e.g. the SDK's argument errors) becomes "tool_error"."""
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), str):
        return McpToolError(server, "tool_error", truncate(text))
    message = payload.get("message")
    retry_after = payload.get("retry_after_seconds")
    if isinstance(retry_after, bool) or not isinstance(retry_after, int | float) or not retry_after >= 0:
        retry_after = None  # absent, or not a usable delay (NaN is already rejected by the parser)
    return McpToolError(
        server,
        truncate(payload["error"]),
        truncate(message if isinstance(message, str) else ""),
        None if retry_after is None else float(retry_after),
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")
