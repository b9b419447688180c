"""Gemini through the official SDK (`google-genai`, `generate_content`), behind ChatClient.

The SDK's retries are off (`HttpRetryOptions(attempts=1)`: Temporal retries the activity) and so is its
automatic function calling (Chimera's tool loop calls tools through the guarded MCP host). Structured output
uses `response_json_schema`. The system instruction and tool definitions lead every request unchanged, so
Gemini's implicit prompt caching serves them from cache (`cached_content_token_count`).
Credentials are the SDK's: GEMINI_API_KEY or GOOGLE_API_KEY, or Vertex AI (GOOGLE_GENAI_USE_VERTEXAI with
GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION, and Application Default Credentials); GOOGLE_GEMINI_BASE_URL
if set.
"""

from __future__ import annotations

import math
import re

import httpx2 as httpx
from google import genai
from google.genai import errors, types

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

REFUSALS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"})
_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")
_CONTENT_TOKEN = re.compile(r"\w")


class GeminiChat:
    provider: ProviderName = "gemini"

    def __init__(self, client: genai.Client | None = None) -> None:
        self._client = client

    def has_credentials(self) -> bool:
        return self._client is not None or credentials.present("gemini")

    def credential_source(self) -> str:
        return credentials.source("gemini")

    def _sdk(self, model: str) -> genai.Client:
        if self._client is None:
            if not self.has_credentials():
                raise ModelCallError(
                    "no_credentials", "gemini: GEMINI_API_KEY is not set", provider="gemini", model=model
                )
            options = types.HttpOptions(
                retry_options=types.HttpRetryOptions(attempts=1),
                # httpx, not aiohttp (which the SDK takes whenever it is installed, as web3 installs it): the
                # timeouts and connection errors handled below are httpx's.
                async_client_args={"transport": httpx.AsyncHTTPTransport()},
            )
            self._client = genai.Client(http_options=options)
        return self._client

    async def complete(self, request: ChatRequest) -> ChatReply:
        model = request.model.model
        contents = [_content(turn) for turn in request.turns]
        config = _config(request)
        try:
            response = await self._sdk(model).aio.models.generate_content(model=model, contents=contents, config=config)
        except errors.APIError as exc:
            raise _error(exc, request) from None
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise _make(
                "timeout", f"{_where(request)}: no answer within {request.settings.timeout_seconds:g} s", model
            ) from exc
        except httpx.TransportError as exc:
            raise _make("unavailable", f"{_where(request)}: cannot connect: {exc}", model) from exc
        return _reply(response, request, contents, config)


def _config(request: ChatRequest) -> types.GenerateContentConfig:
    settings = request.settings
    config = types.GenerateContentConfig(
        system_instruction=request.system,
        max_output_tokens=settings.max_tokens,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        http_options=types.HttpOptions(
            timeout=int(settings.timeout_seconds * 1000), retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )
    if request.tools:
        declarations = [
            types.FunctionDeclaration(name=t.name, description=t.description, parameters_json_schema=t.parameters)
            for t in request.tools
        ]
        config.tools = [types.Tool(function_declarations=declarations)]
    if request.schema is not None:
        config.response_mime_type = "application/json"
        config.response_json_schema = request.schema
    if settings.temperature is not None:
        config.temperature = settings.temperature
    if settings.effort is not None:
        config.thinking_config = types.ThinkingConfig(thinking_level=types.ThinkingLevel(settings.effort.upper()))
    if settings.logprobs:
        config.response_logprobs = True
    return config


def _content(turn: Turn) -> types.Content:
    if turn.role == "assistant":
        if isinstance(turn.native, types.Content):
            return turn.native
        return types.Content(role="model", parts=[types.Part(text=turn.text)])
    if turn.role == "tool_results":
        parts = [
            types.Part(
                function_response=types.FunctionResponse(
                    id=o.id if not o.id.startswith("call-") else None,
                    name=o.name,
                    response={"error": o.content} if o.is_error else {"output": o.content},
                )
            )
            for o in turn.tool_outcomes
        ]
        return types.Content(role="user", parts=parts)
    images = [types.Part.from_bytes(data=i.data, mime_type=i.mime_type) for i in turn.images]
    return types.Content(role="user", parts=[*images, types.Part(text=turn.text)])


def _reply(
    response: types.GenerateContentResponse,
    request: ChatRequest,
    contents: list[types.Content],
    config: types.GenerateContentConfig,
) -> ChatReply:
    exchange = {
        "request": {
            "model": request.model.model,
            "contents": [without_image_bytes(c.model_dump(mode="json", exclude_none=True)) for c in contents],
            "config": config.model_dump(mode="json", exclude_none=True, exclude={"http_options"}),
        },
        "response": response.model_dump(mode="json", exclude_none=True),
    }
    meta = response.usage_metadata
    cached = (meta.cached_content_token_count or 0) if meta else 0
    prompt = (meta.prompt_token_count or 0) if meta else 0
    # The prompt count includes the cached tokens, and thinking tokens are billed as output.
    tokens = TokenUsage(
        input_tokens=max(prompt - cached, 0),
        cached_input_tokens=cached,
        output_tokens=((meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)) if meta else 0,
    )
    candidate = response.candidates[0] if response.candidates else None
    finish = candidate.finish_reason.value if candidate and candidate.finish_reason else ""
    if candidate is None or finish in REFUSALS:
        block = response.prompt_feedback.block_reason if response.prompt_feedback else None
        reason = (block.value if block else None) or finish or "no candidate"
        # A refusal's text is its reason (SAFETY, PROHIBITED_CONTENT, ...): there is no answer to read.
        return ChatReply(
            reason, (), "refusal", tokens, None, model_version=response.model_version or "", exchange=exchange
        )
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    calls = tuple(
        ToolRequest(id=fc.id or f"call-{i}", name=fc.name or "", arguments=dict(fc.args or {}))
        for i, fc in enumerate(p.function_call for p in parts if p.function_call)
    )
    stop: Stop = "tool_use" if calls else ("max_tokens" if finish == "MAX_TOKENS" else "end")
    return ChatReply(
        text=text,
        tool_requests=calls,
        stop=stop,
        tokens=tokens,
        native=candidate.content,
        logprob=_mean_logprob(candidate),
        model_version=response.model_version or "",
        exchange=exchange,
    )


def _mean_logprob(candidate: types.Candidate) -> float | None:
    """The mean log-probability of the answer's content tokens: JSON punctuation and whitespace, which the
    schema all but forces, would push any answer towards certainty."""
    result = candidate.logprobs_result
    chosen = result.chosen_candidates if result and result.chosen_candidates else []
    values = [
        c.log_probability
        for c in chosen
        if c.log_probability is not None and c.token and _CONTENT_TOKEN.search(c.token)
    ]
    if values:
        return sum(values) / len(values)
    avg = candidate.avg_logprobs
    return avg if avg is not None and math.isfinite(avg) else None


def _retry_delay(exc: errors.APIError) -> float | None:
    """Google's RetryInfo detail (`"retryDelay": "17s"`), or the response's retry-after header."""
    details = exc.details if isinstance(exc.details, dict) else {}
    error = details.get("error") if isinstance(details.get("error"), dict) else details
    for item in error.get("details", []) if isinstance(error, dict) else []:
        retry_info = isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo")
        if retry_info and (m := _DELAY.match(str(item.get("retryDelay", "")))):
            return float(m.group(1))
    headers = getattr(exc.response, "headers", None)
    return retry_after_header(headers.get("retry-after") if headers is not None else None)


def _where(request: ChatRequest) -> str:
    return f"gemini model {request.model.model} ({request.tier} tier)"


def _error(exc: errors.APIError, request: ChatRequest) -> ModelCallError:
    model, where, code = request.model.model, _where(request), exc.code
    detail = str(exc.message or exc.status or "")[:300]
    if code == 429:
        return _make("rate_limited", f"{where}: rate limited: {detail}", model, _retry_delay(exc), code)
    if code >= 500 or code == 408:
        return _make(
            "unavailable", f"{where}: unavailable ({code} {exc.status}): {detail}", model, _retry_delay(exc), code
        )
    if code == 401 or "API_KEY" in str(exc.details) or "API key" in detail:
        text = f"{where}: the credentials were refused ({detail}); check GEMINI_API_KEY (or the Vertex AI settings)"
    elif code == 403:
        text = f"{where}: permission denied ({detail}); check the key's project and the model id"
    elif code == 404:
        text = f"{where}: unknown model ({detail}); set models.{request.tier} to a current Gemini model id"
    else:
        text = f"{where}: request refused ({code} {exc.status}): {detail}; check models.{request.tier}"
    return _make("config", text, model, None, code)


def _make(
    kind: ErrorKind, message: str, model: str, retry_after: float | None = None, status: int | None = None
) -> ModelCallError:
    return ModelCallError(kind, message, provider="gemini", model=model, retry_after_seconds=retry_after, status=status)
