"""One model call, provider-neutral: what Chimera asks (ChatRequest) and what it gets back (ChatReply).

The Anthropic and Gemini adapters (anthropic_chat.py, gemini_chat.py) translate these to and from their
SDKs, and translate the SDKs' errors to ModelCallError, whose `kind` says what Temporal should do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chimera.models.base import Image, ModelError
from schemas.models import ModelChoice, ProviderName, TierName, TierSettings, TokenUsage

ErrorKind = Literal[
    "rate_limited",  # 429: retry after the provider's retry-after
    "unavailable",  # overloaded, 5xx, connection failure: retry; the tier's fallback takes over later
    "timeout",  # the tier's timeout passed: retry
    "config",  # 400/401/403/404: a setting is wrong (key, model id, request shape); never retried
    "refused",  # the model declined to answer (a refusal, a safety block); never retried
    "invalid_output",  # the answer did not validate, even after the repair request; never retried
    "no_credentials",  # the provider has no credentials in this process: the fallback, or a clear error
]
RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limited", "unavailable", "timeout"})
Stop = Literal["end", "tool_use", "max_tokens", "refusal"]


class ModelCallError(ModelError):
    """A provider call failed. The message names the provider, the model and, for `config`, the setting to fix;
    it never contains a credential."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        model: str,
        retry_after_seconds: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.provider = provider
        self.model = model
        self.retry_after_seconds = retry_after_seconds
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


@dataclass(frozen=True)
class ChatTool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolRequest:
    """The model asked to call a tool."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolOutcome:
    """A tool call's result (a data block) or its error, as the model will read it."""

    id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class Turn:
    """One message after the system prompt. An assistant turn keeps the provider's own form (`native`), which
    is resent as is: Gemini's thought signatures and Claude's thinking blocks must come back unchanged."""

    role: Literal["user", "assistant", "tool_results"]
    text: str = ""
    tool_requests: tuple[ToolRequest, ...] = ()
    tool_outcomes: tuple[ToolOutcome, ...] = ()
    native: Any = None
    images: tuple[Image, ...] = ()  # a user turn's images, before its text


@dataclass(frozen=True)
class ChatRequest:
    tier: TierName
    model: ModelChoice
    settings: TierSettings
    system: str
    turns: tuple[Turn, ...]
    tools: tuple[ChatTool, ...] = ()
    schema: dict[str, Any] | None = None  # the final answer's JSON schema (structured output)
    schema_name: str = "answer"


@dataclass(frozen=True)
class ChatReply:
    text: str
    tool_requests: tuple[ToolRequest, ...]
    stop: Stop
    tokens: TokenUsage
    native: Any  # the assistant turn in the provider's form, to resend in a tool loop or a repair
    logprob: float | None = None  # mean log-probability of the answer's content tokens, where offered
    model_version: str = ""
    exchange: dict[str, Any] = field(default_factory=dict)  # request and response bodies, for the transcript

    def as_turn(self) -> Turn:
        return Turn(role="assistant", text=self.text, tool_requests=self.tool_requests, native=self.native)


class ChatClient(Protocol):
    """One provider's SDK behind the neutral shapes."""

    provider: ProviderName

    def has_credentials(self) -> bool: ...

    def credential_source(self) -> str:
        """Which setting supplies the credentials (a variable's name, never its value)."""
        ...

    async def complete(self, request: ChatRequest) -> ChatReply: ...


def without_image_bytes(value: Any) -> Any:
    """A request or response body for the kept transcript, with inline image bytes replaced by their digest
    (the image is in the media store; a transcript keeps what was asked, not megabytes of base64)."""
    if isinstance(value, dict):
        if ("media_type" in value or "mime_type" in value) and isinstance(value.get("data"), str | bytes):
            raw = value["data"] if isinstance(value["data"], bytes) else value["data"].encode()
            return {**value, "data": f"sha256:{hashlib.sha256(raw).hexdigest()} ({len(raw)} bytes)"}
        return {k: without_image_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_image_bytes(v) for v in value]
    return value
