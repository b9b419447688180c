"""Claude through the official SDK (`anthropic`, Messages API), behind ChatClient.

The SDK's retries are off (Temporal retries the activity). The system prompt is one text block marked
`cache_control`, so the stable prefix (tool definitions, then the system prompt) is cached. Structured
output uses `output_config.format` with the schema made strict by the SDK's own `transform_schema`.
Credentials are the SDK's: ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN), and ANTHROPIC_BASE_URL if set.
"""

from __future__ import annotations

import base64
from typing import Any

import anthropic
from anthropic import AsyncAnthropic

from chimera.models import credentials
from chimera.models.chat import (
    ChatReply,
    ChatRequest,
    ErrorKind,
    ModelCallError,
    Stop,
    ToolRequest,
    Turn,
    without_image_bytes,
)
from chimera.retry_after import retry_after_header
from schemas.models import ProviderName, TokenUsage

_STOPS: dict[str, Stop] = {"tool_use": "tool_use", "max_tokens": "max_tokens", "refusal": "refusal"}


class AnthropicChat:
    provider: ProviderName = "anthropic"

    def __init__(self, client: AsyncAnthropic | None = None) -> None:
        self._client = client

    def has_credentials(self) -> bool:
        return self._client is not None or credentials.present("anthropic")

    def credential_source(self) -> str:
        return credentials.source("anthropic")

    def _sdk(self, model: str) -> AsyncAnthropic:
        if self._client is None:
            if not self.has_credentials():
                raise ModelCallError(
                    "no_credentials", "anthropic: ANTHROPIC_API_KEY is not set", provider="anthropic", model=model
                )
            self._client = AsyncAnthropic(max_retries=0)
        return self._client

    async def complete(self, request: ChatRequest) -> ChatReply:
        model = request.model.model
        params = _params(request)
        try:
            message = await self._sdk(model).messages.create(**params, timeout=request.settings.timeout_seconds)
        except anthropic.APIError as exc:
            raise _error(exc, request) from None
        text = "".join(b.text for b in message.content if b.type == "text")
        calls = tuple(
            ToolRequest(id=b.id, name=b.name, arguments=dict(b.input)) for b in message.content if b.type == "tool_use"
        )
        usage = message.usage
        tokens = TokenUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cache_read_input_tokens or 0,
            cache_write_tokens=usage.cache_creation_input_tokens or 0,
        )
        native = [b.model_dump(mode="json", exclude_none=True) for b in message.content]
        return ChatReply(
            text=text,
            tool_requests=calls,
            stop=_STOPS.get(message.stop_reason or "", "end"),
            tokens=tokens,
            native=native,
            model_version=message.model,
            exchange={
                "request": without_image_bytes(params),
                "response": message.model_dump(mode="json", exclude_none=True),
            },
        )


def _params(request: ChatRequest) -> dict[str, Any]:
    settings = request.settings
    params: dict[str, Any] = {
        "model": request.model.model,
        "max_tokens": settings.max_tokens,
        # The last stable block carries the cache breakpoint: tools and system prompt are cached together.
        "system": [{"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}],
        "messages": [_message(turn) for turn in request.turns],
    }
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
        ]
    output: dict[str, Any] = {}
    if request.schema is not None:
        output["format"] = {"type": "json_schema", "schema": anthropic.transform_schema(request.schema)}
    if settings.effort is not None:
        output["effort"] = settings.effort
    if output:
        params["output_config"] = output
    if settings.temperature is not None:
        params["temperature"] = settings.temperature
    return params


def _message(turn: Turn) -> dict[str, Any]:
    if turn.role == "assistant":
        content = turn.native if turn.native is not None else [{"type": "text", "text": turn.text}]
        return {"role": "assistant", "content": content}
    if turn.role == "tool_results":
        blocks = [
            {"type": "tool_result", "tool_use_id": o.id, "content": o.content, "is_error": o.is_error}
            for o in turn.tool_outcomes
        ]
        return {"role": "user", "content": blocks}
    images = [
        {"type": "image", "source": {"type": "base64", "media_type": i.mime_type, "data": _b64(i.data)}}
        for i in turn.images
    ]
    return {"role": "user", "content": [*images, {"type": "text", "text": turn.text}]}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _error(exc: anthropic.APIError, request: ChatRequest) -> ModelCallError:
    model = request.model.model
    where = f"anthropic model {model} ({request.tier} tier)"
    if isinstance(exc, anthropic.APITimeoutError):
        return _make("timeout", f"{where}: no answer within {request.settings.timeout_seconds:g} s", model)
    if isinstance(exc, anthropic.APIConnectionError):
        return _make("unavailable", f"{where}: cannot connect: {exc.message}", model)
    if not isinstance(exc, anthropic.APIStatusError):
        return _make("unavailable", f"{where}: {exc.message}", model)
    status, detail, wait = exc.status_code, _detail(exc), retry_after_header(exc.response.headers.get("retry-after"))
    if isinstance(exc, anthropic.RateLimitError):
        return _make("rate_limited", f"{where}: rate limited: {detail}", model, wait, status)
    if status >= 500 or status in (408, 409):  # 529 is overloaded_error
        return _make("unavailable", f"{where}: unavailable ({status}): {detail}", model, wait, status)
    if isinstance(exc, anthropic.AuthenticationError):
        text = f"{where}: the credentials were refused ({detail}); check ANTHROPIC_API_KEY"
    elif isinstance(exc, anthropic.PermissionDeniedError):
        text = f"{where}: this API key may not use the model ({detail}); check ANTHROPIC_API_KEY or the model id"
    elif isinstance(exc, anthropic.NotFoundError):
        text = f"{where}: unknown model ({detail}); set models.{request.tier} to a current Claude model id"
    else:
        text = f"{where}: request refused ({status}): {detail}; check models.{request.tier}"
    return _make("config", text, model, None, status)


def _detail(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else None
    message = error.get("message") if error else None
    return str(message or exc.message)[:300]


def _make(
    kind: ErrorKind, message: str, model: str, retry_after: float | None = None, status: int | None = None
) -> ModelCallError:
    return ModelCallError(
        kind, message, provider="anthropic", model=model, retry_after_seconds=retry_after, status=status
    )
