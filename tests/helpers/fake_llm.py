"""Loopback stand-ins for the two LLM vendors, in the shapes they document, to be driven through the real SDKs:

- `FakeAnthropic`: the Anthropic Messages API, `POST /v1/messages`
  (https://platform.claude.com/docs/en/api/messages, errors: https://platform.claude.com/docs/en/api/errors).
- `FakeGemini`: the Gemini API, `POST /{version}/models/{model}:generateContent`
  (https://ai.google.dev/api/generate-content; errors are google.rpc.Status with the standard details).

Both record every request (`requests`), check the credentials header the way the vendor does, and answer from a
FIFO `script` of `Reply`s, then from an optional `responder(body) -> Reply`, else a 500 in the vendor's error
shape. A request refused for its path, key, headers or body is recorded but does not consume the script. A
`Reply.delay_seconds` makes the handler wait before answering (for timeout tests); the wait ends early when the
fake closes, so no handler thread outlives the `with` block by more than a moment.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import ThreadingHTTPServer
from typing import Any, Literal, TypedDict, Unpack
from urllib.parse import parse_qs, urlsplit

from tests.helpers.fake_http import JsonHandler

ANTHROPIC_API_KEY = "sk-ant-test-0123456789"
GEMINI_API_KEY = "gemini-test-key-0123456789"
MESSAGES_PATH = "/v1/messages"
GENERATE_CONTENT_PATH = re.compile(r"^/(?P<version>[^/]+)/models/(?P<model>[^/:]+):generateContent$")

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
GEMINI_ERROR_STATUSES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class Reply:
    """One scripted answer: the HTTP status, the JSON body, extra response headers, and how long to wait first."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0

    def delayed(self, seconds: float) -> Reply:
        return replace(self, delay_seconds=seconds)


@dataclass
class RecordedRequest:
    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]  # names lowercased
    json: Any  # the decoded body; None when it was not JSON
    model: str | None = None  # FakeGemini: the model segment of the path ("gemini-3-flash")
    api_version: str | None = None  # FakeGemini: the version segment of the path ("v1beta")


Responder = Callable[[dict[str, Any]], Reply]


def _token(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


class _ScriptedFake:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self.script: list[Reply] = []
        self.responder: Responder | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def queue(self, *replies: Reply) -> None:
        """Append replies to the script (thread-safe; assigning `script` before the first request is fine too)."""
        with self._lock:
            self.script.extend(replies)

    @property
    def last(self) -> RecordedRequest:
        with self._lock:
            return self.requests[-1]

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.json for r in self.requests]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, body: dict[str, Any]) -> Reply | None:
        with self._lock:
            if self.script:
                return self.script.pop(0)
            responder = self.responder
        return None if responder is None else responder(body)  # outside the lock: it may read `requests`

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        raise NotImplementedError


class FakeAnthropic(_ScriptedFake):
    """`POST /v1/messages`. Refuses (without consuming the script) a wrong path (404), a request whose key is not
    `api_key` (401 authentication_error), a missing `anthropic-version` header or a body without model/max_tokens/
    messages (400 invalid_request_error). The key is accepted from `x-api-key: KEY` (what the docs and curl
    examples use) or `Authorization: Bearer KEY` (what anthropic 2.15's `api_key=` sends)."""

    def __init__(self, api_key: str = ANTHROPIC_API_KEY) -> None:
        super().__init__(api_key)

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        self._record(RecordedRequest("POST", path, headers, body))
        if urlsplit(path).path != MESSAGES_PATH:
            return anthropic_error(404, "not_found_error", f"Not found: {urlsplit(path).path}")
        if self.api_key not in (headers.get("x-api-key"), _bearer(headers)):
            return anthropic_error(401, "authentication_error", "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return anthropic_error(400, "invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body, dict):
            return anthropic_error(400, "invalid_request_error", "The request body is not valid JSON.")
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return anthropic_error(400, "invalid_request_error", f"{name}: Field required")
        try:
            reply = self._next_reply(body)
        except Exception as e:  # a broken responder is the test's bug: say so in the answer
            return anthropic_error(500, "api_error", f"FakeAnthropic responder raised {e!r}")
        return reply or anthropic_error(500, "api_error", "FakeAnthropic has no scripted reply and no responder")


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class FakeGemini(_ScriptedFake):
    """`POST /{version}/models/{model}:generateContent`. Refuses (without consuming the script) another path
    (404 NOT_FOUND), no API key (403 PERMISSION_DENIED), a key other than `api_key` in `x-goog-api-key` or `?key=`
    (400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID, as Google answers), and a body without `contents`
    (400 INVALID_ARGUMENT)."""

    def __init__(self, api_key: str = GEMINI_API_KEY) -> None:
        super().__init__(api_key)

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        url = urlsplit(path)
        match = GENERATE_CONTENT_PATH.match(url.path)
        model = match["model"] if match else None
        self._record(
            RecordedRequest("POST", path, headers, body, model=model, api_version=match["version"] if match else None)
        )
        if match is None:
            return gemini_error(404, "NOT_FOUND", f"The requested URL {url.path} was not found on this server.")
        key = headers.get("x-goog-api-key") or next(iter(parse_qs(url.query).get("key", [])), None)
        if key is None:
            return gemini_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            return _gemini_invalid_key()
        if not isinstance(body, dict) or not body.get("contents"):
            return gemini_error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
        try:
            reply = self._next_reply(body)
        except Exception as e:
            return gemini_error(500, "INTERNAL", f"FakeGemini responder raised {e!r}")
        return reply or gemini_error(500, "INTERNAL", "FakeGemini has no scripted reply and no responder")


class _Handler(JsonHandler):
    fake: _ScriptedFake

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.fake.handle(self.path, headers, body)
        if reply.delay_seconds > 0 and self.fake._closing.wait(reply.delay_seconds):
            return  # the fake is closing: nobody is waiting for this answer any more
        self._send(reply.status, reply.body, reply.headers)  # tolerates a client that hung up meanwhile


@contextmanager
def _serving(fake: _ScriptedFake) -> Iterator[None]:
    handler = type("Handler", (_Handler,), {"fake": fake})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        fake._closing.set()  # wake handlers sleeping on a delayed reply
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@contextmanager
def fake_anthropic(api_key: str = ANTHROPIC_API_KEY) -> Iterator[FakeAnthropic]:
    """A FakeAnthropic on a free loopback port; pass its `base_url` and `api_key` to `anthropic.AsyncAnthropic`."""
    fake = FakeAnthropic(api_key)
    with _serving(fake):
        yield fake


@contextmanager
def fake_gemini(api_key: str = GEMINI_API_KEY) -> Iterator[FakeGemini]:
    """A FakeGemini on a free loopback port; pass `base_url` in `types.HttpOptions` and `api_key` to `genai.Client`."""
    fake = FakeGemini(api_key)
    with _serving(fake):
        yield fake


# --- Anthropic Messages API shapes ---------------------------------------------------------------------------


class AnthropicOptions(TypedDict, total=False):
    model: str
    input_tokens: int
    output_tokens: int
    cache_read: int  # usage.cache_read_input_tokens
    cache_write: int  # usage.cache_creation_input_tokens (all counted as 5-minute cache writes)
    stop_reason: str
    stop_sequence: str | None
    message_id: str


def anthropic_message(content: list[dict[str, Any]], **options: Unpack[AnthropicOptions]) -> Reply:
    """A 200 Message with the given content blocks."""
    cache_write = options.get("cache_write", 0)
    message_id = options.get("message_id") or _token("msg_01")
    body = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": options.get("model", "claude-sonnet-4-6"),
        "content": content,
        "stop_reason": options.get("stop_reason", "end_turn"),
        "stop_sequence": options.get("stop_sequence"),
        "usage": {
            "input_tokens": options.get("input_tokens", 25),
            "output_tokens": options.get("output_tokens", 12),
            "cache_read_input_tokens": options.get("cache_read", 0),
            "cache_creation_input_tokens": cache_write,
            "cache_creation": {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
        },
    }
    return Reply(200, body, {"request-id": _token("req_011")})


def anthropic_text(text: str, **options: Unpack[AnthropicOptions]) -> Reply:
    return anthropic_message([{"type": "text", "text": text}], **options)


def anthropic_json(obj: Any, **options: Unpack[AnthropicOptions]) -> Reply:
    """Structured outputs (`output_config.format` json_schema) come back as one text block holding the JSON."""
    return anthropic_text(json.dumps(obj), **options)


def anthropic_tool_use(
    name: str,
    input: dict[str, Any],
    *,
    tool_use_id: str | None = None,
    text: str | None = None,
    **options: Unpack[AnthropicOptions],
) -> Reply:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.append({"type": "tool_use", "id": tool_use_id or _token("toolu_01"), "name": name, "input": input})
    options.setdefault("stop_reason", "tool_use")
    return anthropic_message(content, **options)


def anthropic_refusal(text: str | None = None, **options: Unpack[AnthropicOptions]) -> Reply:
    """stop_reason "refusal"; the content is whatever was produced before the classifier stopped it (often none)."""
    content = [{"type": "text", "text": text}] if text else []
    options.setdefault("stop_reason", "refusal")
    return anthropic_message(content, **options)


def anthropic_error(
    status: int,
    error_type: str | None = None,
    message: str = "",
    *,
    retry_after: float | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """The documented error body; `error_type` defaults from the status (ANTHROPIC_ERROR_TYPES)."""
    request_id = _token("req_011")
    out = {"request-id": request_id, **(headers or {})}
    if retry_after is not None:
        out["retry-after"] = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
    kind = error_type or ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": message or kind}, "request_id": request_id}
    return Reply(status, body, out)


# --- Gemini generateContent shapes ---------------------------------------------------------------------------


class GeminiOptions(TypedDict, total=False):
    prompt_tokens: int
    candidates_tokens: int
    cached_tokens: int  # part of prompt_tokens, as Google counts it
    thoughts_tokens: int
    finish_reason: str
    avg_logprobs: float | None  # computed from `logprobs` when those are given and this is not
    logprobs: Sequence[tuple[str, float]] | None  # the chosen token and its log probability, per step
    model_version: str
    response_id: str


def _usage(prompt: int, candidates: int, cached: int = 0, thoughts: int = 0) -> dict[str, Any]:
    # proto3 JSON leaves out zero counts, so cachedContentTokenCount/thoughtsTokenCount appear only when non-zero
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def gemini_response(parts: list[dict[str, Any]], **options: Unpack[GeminiOptions]) -> Reply:
    """A 200 GenerateContentResponse with one candidate holding the given parts."""
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": parts},
        "finishReason": options.get("finish_reason", "STOP"),
        "index": 0,
    }
    logprobs = options.get("logprobs")
    avg = options.get("avg_logprobs")
    if avg is None and logprobs:
        avg = sum(lp for _, lp in logprobs) / len(logprobs)
    if avg is not None:
        candidate["avgLogprobs"] = avg
    if logprobs is not None:
        chosen = [{"token": token, "logProbability": lp} for token, lp in logprobs]
        candidate["logprobsResult"] = {
            "topCandidates": [{"candidates": [c]} for c in chosen],
            "chosenCandidates": chosen,
        }
    body = {
        "candidates": [candidate],
        "usageMetadata": _usage(
            options.get("prompt_tokens", 20),
            options.get("candidates_tokens", 10),
            options.get("cached_tokens", 0),
            options.get("thoughts_tokens", 0),
        ),
        "modelVersion": options.get("model_version", "gemini-3-flash"),
        "responseId": options.get("response_id") or _token("", 22),
    }
    return Reply(200, body)


def gemini_text(text: str, **options: Unpack[GeminiOptions]) -> Reply:
    return gemini_response([{"text": text}], **options)


def gemini_json(obj: Any, **options: Unpack[GeminiOptions]) -> Reply:
    """`responseMimeType: application/json` answers are one text part holding the JSON."""
    return gemini_text(json.dumps(obj), **options)


def gemini_function_call(
    name: str,
    args: dict[str, Any],
    *,
    thought_signature: bytes | str | None = None,
    text: str | None = None,
    **options: Unpack[GeminiOptions],
) -> Reply:
    """`thought_signature` bytes are base64-encoded; a str is sent as is (it should already be base64)."""
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
    if thought_signature is not None:
        part["thoughtSignature"] = (
            base64.b64encode(thought_signature).decode() if isinstance(thought_signature, bytes) else thought_signature
        )
    parts.append(part)
    return gemini_response(parts, **options)


def _safety_ratings(blocked_category: str = "HARM_CATEGORY_DANGEROUS_CONTENT") -> list[dict[str, Any]]:
    ratings: list[dict[str, Any]] = [
        {"category": c, "probability": "NEGLIGIBLE"}
        for c in ("HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_SEXUALLY_EXPLICIT")
    ]
    ratings.append({"category": blocked_category, "probability": "HIGH", "blocked": True})
    return ratings


def gemini_blocked(
    reason: str = "SAFETY",
    *,
    kind: Literal["candidate", "prompt"] = "candidate",
    prompt_tokens: int = 20,
    model_version: str = "gemini-3-flash",
) -> Reply:
    """kind="candidate": the answer was stopped (finishReason `reason`, no content, safetyRatings);
    kind="prompt": the prompt was refused (no candidates, promptFeedback.blockReason `reason`)."""
    body: dict[str, Any] = {"modelVersion": model_version, "responseId": _token("", 22)}
    if kind == "candidate":
        body["candidates"] = [{"finishReason": reason, "index": 0, "safetyRatings": _safety_ratings()}]
        body["usageMetadata"] = _usage(prompt_tokens, 0)
    else:
        body["promptFeedback"] = {"blockReason": reason, "safetyRatings": _safety_ratings()}
        body["usageMetadata"] = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
    return Reply(200, body)


def _duration(seconds: float) -> str:
    """google.protobuf.Duration in JSON: "17s", "0.5s"."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds}s"


def gemini_error(
    code: int,
    status: str | None = None,
    message: str = "",
    *,
    retry_delay_seconds: float | None = None,
    details: list[dict[str, Any]] | None = None,
) -> Reply:
    """A google.rpc.Status error body; `status` defaults from the code (GEMINI_ERROR_STATUSES). A 429 carries a
    QuotaFailure detail; `retry_delay_seconds` adds a RetryInfo detail ("retryDelay": "17s"). Google leaves
    `details` out when there are none, and so does this."""
    status = status or GEMINI_ERROR_STATUSES.get(code, "UNKNOWN")
    all_details = list(details or [])
    if code == 429:
        all_details.append(
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": "gemini-3-flash"},
                        "quotaValue": "10",
                    }
                ],
            }
        )
    if retry_delay_seconds is not None:
        all_details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": _duration(retry_delay_seconds)}
        )
    error: dict[str, Any] = {"code": code, "message": message or status, "status": status}
    if all_details:
        error["details"] = all_details
    return Reply(code, {"error": error})


def _gemini_invalid_key() -> Reply:
    message = "API key not valid. Please pass a valid API key."
    return gemini_error(
        400,
        "INVALID_ARGUMENT",
        message,
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message},
        ],
    )
