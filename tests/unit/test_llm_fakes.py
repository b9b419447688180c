"""The loopback LLM fakes (tests/helpers/fake_llm.py) driven through the real SDKs, anthropic 2.15 and
google-genai 3.6, proving that the shapes they answer with parse the way the vendors' answers do.

What the SDKs do, as found here:

- anthropic: `api_key=` goes out as `Authorization: Bearer KEY` (not `x-api-key`), with
  `anthropic-version: 2026-10-21`, to `POST {base_url}/v1/messages`. 429 -> `anthropic.RateLimitError`, 529 ->
  `anthropic.OverloadedError` (a subclass of `InternalServerError`), 401 -> `AuthenticationError`, every
  `APIStatusError` carrying `.status_code`, `.type` (error.type), `.request_id` (the request-id header) and
  `.response.headers["retry-after"]`. A timeout -> `anthropic.APITimeoutError` (an `APIConnectionError`).
- google-genai: `api_key=` goes out as `x-goog-api-key: KEY` to `POST {base_url}/v1/models/{model}:generateContent`
  (3.6 defaults to API version v1, not v1beta; "models/x" is sent as "x"), plus `x-server-timeout` (whole seconds,
  rounded up) when `HttpOptions.timeout` (milliseconds) is set. 4xx -> `errors.ClientError`, 5xx ->
  `errors.ServerError`, both with `.code`, `.status`, `.message` and `.details`, which is the WHOLE decoded body
  (`{"error": {..., "details": [...]}}`), so RetryInfo is at `e.details["error"]["details"][i]["retryDelay"]`.
  A timeout is NOT wrapped: the transport's `httpx2.ReadTimeout` (an `httpx2.TimeoutException`) escapes as is
  (aiohttp is not installed, so the SDK uses httpx2).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import MessageParam
from google import genai
from google.genai import errors, types

from tests.helpers.fake_llm import (
    ANTHROPIC_API_KEY,
    GEMINI_API_KEY,
    FakeAnthropic,
    FakeGemini,
    Reply,
    anthropic_error,
    anthropic_json,
    anthropic_refusal,
    anthropic_text,
    anthropic_tool_use,
    fake_anthropic,
    fake_gemini,
    gemini_blocked,
    gemini_error,
    gemini_function_call,
    gemini_json,
    gemini_text,
)

CLAUDE = "claude-sonnet-4-6"
GEMINI = "gemini-3-flash"
USER: list[MessageParam] = [{"role": "user", "content": "Write one caption about Berlin flea markets."}]
CAPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"caption": {"type": "string"}, "hashtags": {"type": "array", "items": {"type": "string"}}},
    "required": ["caption", "hashtags"],
    "additionalProperties": False,
}


def _raw_post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# --- Anthropic ---------------------------------------------------------------------------------------------


@pytest.fixture
def claude_api() -> Iterator[FakeAnthropic]:
    with fake_anthropic() as fake:
        yield fake


@pytest.fixture
async def claude(claude_api: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(api_key=claude_api.api_key, base_url=claude_api.base_url, max_retries=0)
    yield client
    await client.close()


async def test_anthropic_text(claude_api: FakeAnthropic, claude: anthropic.AsyncAnthropic) -> None:
    claude_api.queue(anthropic_text("Sunday finds.", input_tokens=31, output_tokens=5))
    message = await claude.messages.create(model=CLAUDE, max_tokens=200, system="You are Mira.", messages=USER)
    assert message.id.startswith("msg_")
    assert message.role == "assistant" and message.model == CLAUDE and message.stop_reason == "end_turn"
    block = message.content[0]
    assert block.type == "text" and block.text == "Sunday finds."
    assert (message.usage.input_tokens, message.usage.output_tokens) == (31, 5)
    assert message.usage.cache_read_input_tokens == 0
    sent = claude_api.last
    assert sent.path == "/v1/messages"
    assert sent.headers["authorization"] == f"Bearer {ANTHROPIC_API_KEY}"
    assert sent.headers["anthropic-version"]
    assert sent.json["system"] == "You are Mira." and sent.json["messages"] == USER
    assert sent.json["model"] == CLAUDE and sent.json["max_tokens"] == 200


async def test_anthropic_structured_output(claude_api: FakeAnthropic, claude: anthropic.AsyncAnthropic) -> None:
    answer = {"caption": "Mended, not new.", "hashtags": ["#berlin", "#vintage"]}
    claude_api.queue(anthropic_json(answer))
    output_config: Any = {"format": {"type": "json_schema", "schema": CAPTION_SCHEMA}}
    message = await claude.messages.create(model=CLAUDE, max_tokens=200, messages=USER, output_config=output_config)
    block = message.content[0]
    assert block.type == "text"
    assert json.loads(block.text) == answer
    assert claude_api.last.json["output_config"] == output_config


async def test_anthropic_tool_use(claude_api: FakeAnthropic, claude: anthropic.AsyncAnthropic) -> None:
    claude_api.queue(
        anthropic_tool_use("search_news", {"query": "Berlin flea market"}, tool_use_id="toolu_01abc", text="Looking.")
    )
    tools: Any = [
        {
            "name": "search_news",
            "description": "Search recent news.",
            "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        }
    ]
    message = await claude.messages.create(model=CLAUDE, max_tokens=200, messages=USER, tools=tools)
    assert message.stop_reason == "tool_use"
    text, call = message.content
    assert text.type == "text" and text.text == "Looking."
    assert call.type == "tool_use"
    assert (call.id, call.name, call.input) == ("toolu_01abc", "search_news", {"query": "Berlin flea market"})
    assert claude_api.last.json["tools"] == tools


async def test_anthropic_refusal(claude_api: FakeAnthropic, claude: anthropic.AsyncAnthropic) -> None:
    claude_api.queue(anthropic_refusal(), anthropic_refusal("I can't help with that."))
    empty = await claude.messages.create(model=CLAUDE, max_tokens=200, messages=USER)
    assert empty.stop_reason == "refusal" and empty.content == []
    partial = await claude.messages.create(model=CLAUDE, max_tokens=200, messages=USER)
    assert partial.stop_reason == "refusal" and partial.content[0].type == "text"


async def test_anthropic_cache_usage(claude_api: FakeAnthropic, claude: anthropic.AsyncAnthropic) -> None:
    claude_api.queue(anthropic_text("ok", input_tokens=12, cache_read=2048, cache_write=512))
    usage = (await claude.messages.create(model=CLAUDE, max_tokens=10, messages=USER)).usage
    assert usage.cache_read_input_tokens == 2048
    assert usage.cache_creation_input_tokens == 512
    assert usage.input_tokens == 12


async def test_anthropic_rate_limit(claude_api: FakeAnthropic, claude: anthropic.AsyncAnthropic) -> None:
    claude_api.queue(anthropic_error(429, "rate_limit_error", "Number of request tokens has exceeded.", retry_after=17))
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    error = caught.value
    assert error.status_code == 429 and error.type == "rate_limit_error"
    assert error.response.headers["retry-after"] == "17"
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert error.api_message == "Number of request tokens has exceeded."


async def test_anthropic_overloaded(claude_api: FakeAnthropic, claude: anthropic.AsyncAnthropic) -> None:
    claude_api.queue(anthropic_error(529, "overloaded_error", "Overloaded"))
    with pytest.raises(anthropic.InternalServerError) as caught:
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert isinstance(caught.value, anthropic.OverloadedError)
    assert caught.value.status_code == 529 and caught.value.type == "overloaded_error"


async def test_anthropic_retry_follows_the_script(claude_api: FakeAnthropic) -> None:
    claude_api.queue(anthropic_error(529, retry_after=0.01), anthropic_text("second time lucky"))
    async with anthropic.AsyncAnthropic(
        api_key=claude_api.api_key, base_url=claude_api.base_url, max_retries=1
    ) as client:
        message = await client.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert message.content[0].type == "text" and message.content[0].text == "second time lucky"
    assert [r.headers["x-stainless-retry-count"] for r in claude_api.requests] == ["0", "1"]


async def test_anthropic_wrong_key(claude_api: FakeAnthropic) -> None:
    claude_api.queue(anthropic_text("never sent"))
    async with anthropic.AsyncAnthropic(api_key="sk-ant-wrong", base_url=claude_api.base_url, max_retries=0) as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert caught.value.status_code == 401 and caught.value.type == "authentication_error"
    assert len(claude_api.script) == 1  # a refused request does not consume the script


def test_anthropic_checks_the_documented_headers(claude_api: FakeAnthropic) -> None:
    url = f"{claude_api.base_url}/v1/messages"
    body = {"model": CLAUDE, "max_tokens": 10, "messages": USER}
    claude_api.queue(anthropic_text("via x-api-key"))
    status, answer = _raw_post(url, body, {"x-api-key": ANTHROPIC_API_KEY, "anthropic-version": "2023-06-01"})
    assert status == 200 and answer["content"][0]["text"] == "via x-api-key"
    status, answer = _raw_post(url, body, {"x-api-key": ANTHROPIC_API_KEY})
    assert status == 400 and answer["error"]["type"] == "invalid_request_error"
    status, answer = _raw_post(url, body, {"anthropic-version": "2023-06-01"})
    assert status == 401 and answer["type"] == "error" and answer["error"]["type"] == "authentication_error"
    assert answer["request_id"].startswith("req_")


async def test_anthropic_timeout(claude_api: FakeAnthropic, claude: anthropic.AsyncAnthropic) -> None:
    claude_api.queue(anthropic_text("too late").delayed(5))
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=USER, timeout=0.5)
    assert time.monotonic() - started < 3


async def test_anthropic_responder_then_nothing(claude_api: FakeAnthropic, claude: anthropic.AsyncAnthropic) -> None:
    def echo(body: dict[str, Any]) -> Reply:
        return anthropic_text(f"you said: {body['messages'][-1]['content']}")

    claude_api.queue(anthropic_text("scripted first"))
    claude_api.responder = echo
    first = await claude.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    second = await claude.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert first.content[0].type == "text" and first.content[0].text == "scripted first"
    assert second.content[0].type == "text" and second.content[0].text.startswith("you said: Write one caption")
    claude_api.responder = None
    with pytest.raises(anthropic.InternalServerError) as caught:
        await claude.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert caught.value.status_code == 500 and caught.value.type == "api_error"


# --- Gemini ------------------------------------------------------------------------------------------------


@pytest.fixture
def gemini_api() -> Iterator[FakeGemini]:
    with fake_gemini() as fake:
        yield fake


def _gemini_client(fake: FakeGemini, *, api_key: str | None = None, timeout_ms: int | None = None) -> genai.Client:
    return genai.Client(
        api_key=api_key or fake.api_key,
        http_options=types.HttpOptions(
            base_url=fake.base_url,
            timeout=timeout_ms,
            retry_options=types.HttpRetryOptions(attempts=1),
            # as chimera/models/gemini_chat.py does: httpx, also when aiohttp is installed
            async_client_args={"transport": httpx2.AsyncHTTPTransport()},
        ),
    )


@pytest.fixture
async def gemini(gemini_api: FakeGemini) -> AsyncIterator[genai.Client]:
    client = _gemini_client(gemini_api)
    yield client
    await client.aio.aclose()
    client.close()


async def test_gemini_text(gemini_api: FakeGemini, gemini: genai.Client) -> None:
    gemini_api.queue(gemini_text("Sunday finds.", prompt_tokens=40, candidates_tokens=4, thoughts_tokens=9))
    response = await gemini.aio.models.generate_content(
        model=GEMINI,
        contents="Write one caption about Berlin flea markets.",
        config=types.GenerateContentConfig(system_instruction="You are Mira.", temperature=0.7, max_output_tokens=200),
    )
    assert response.text == "Sunday finds."
    assert response.candidates is not None and response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == GEMINI and response.response_id
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (40, 4, 9)
    assert usage.total_token_count == 53
    assert usage.cached_content_token_count is None  # proto3 JSON leaves zero counts out
    sent = gemini_api.last
    assert sent.model == GEMINI and sent.api_version == "v1"
    assert sent.path == f"/v1/models/{GEMINI}:generateContent"
    assert sent.headers["x-goog-api-key"] == GEMINI_API_KEY
    assert sent.json["systemInstruction"]["parts"] == [{"text": "You are Mira."}]
    assert sent.json["contents"] == [
        {"role": "user", "parts": [{"text": "Write one caption about Berlin flea markets."}]}
    ]
    assert sent.json["generationConfig"] == {"temperature": 0.7, "maxOutputTokens": 200}


async def test_gemini_json(gemini_api: FakeGemini, gemini: genai.Client) -> None:
    answer = {"caption": "Mended, not new.", "hashtags": ["#berlin"]}
    gemini_api.queue(gemini_json(answer))
    response = await gemini.aio.models.generate_content(
        model=f"models/{GEMINI}",
        contents="caption please",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=CAPTION_SCHEMA),
    )
    assert response.text is not None and json.loads(response.text) == answer
    assert response.parsed == answer
    sent = gemini_api.last
    assert sent.model == GEMINI  # "models/" is part of the path, not the model segment
    assert sent.json["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": CAPTION_SCHEMA,
    }


async def test_gemini_function_call(gemini_api: FakeGemini, gemini: genai.Client) -> None:
    gemini_api.queue(gemini_function_call("search_news", {"query": "Berlin"}, thought_signature=b"\x01sig"))
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="search_news",
                description="Search recent news.",
                parameters_json_schema={"type": "object", "properties": {"query": {"type": "string"}}},
            )
        ]
    )
    response = await gemini.aio.models.generate_content(
        model=GEMINI,
        contents="what's new?",
        config=types.GenerateContentConfig(
            tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
        ),
    )
    assert response.function_calls is not None
    call = response.function_calls[0]
    assert (call.name, call.args) == ("search_news", {"query": "Berlin"})
    assert response.candidates is not None and response.candidates[0].content is not None
    parts = response.candidates[0].content.parts
    assert parts is not None and parts[0].thought_signature == b"\x01sig"
    assert gemini_api.last.json["tools"][0]["functionDeclarations"][0]["name"] == "search_news"


async def test_gemini_cached_usage(gemini_api: FakeGemini, gemini: genai.Client) -> None:
    gemini_api.queue(gemini_text("ok", prompt_tokens=3000, candidates_tokens=2, cached_tokens=2048))
    response = await gemini.aio.models.generate_content(model=GEMINI, contents="hi")
    assert response.usage_metadata is not None
    assert response.usage_metadata.cached_content_token_count == 2048
    assert response.usage_metadata.prompt_token_count == 3000


async def test_gemini_logprobs(gemini_api: FakeGemini, gemini: genai.Client) -> None:
    gemini_api.queue(gemini_text("Yes", logprobs=[("Yes", -0.05), ("!", -1.25)]))
    response = await gemini.aio.models.generate_content(
        model=GEMINI, contents="ok?", config=types.GenerateContentConfig(response_logprobs=True, logprobs=1)
    )
    assert response.candidates is not None
    candidate = response.candidates[0]
    assert candidate.avg_logprobs == pytest.approx(-0.65)
    assert candidate.logprobs_result is not None and candidate.logprobs_result.chosen_candidates is not None
    chosen = candidate.logprobs_result.chosen_candidates
    assert [(c.token, c.log_probability) for c in chosen] == [("Yes", -0.05), ("!", -1.25)]
    top = candidate.logprobs_result.top_candidates
    assert top is not None and top[1].candidates is not None and top[1].candidates[0].token == "!"
    assert gemini_api.last.json["generationConfig"] == {"responseLogprobs": True, "logprobs": 1}


async def test_gemini_blocked(gemini_api: FakeGemini, gemini: genai.Client) -> None:
    gemini_api.queue(gemini_blocked(), gemini_blocked("PROHIBITED_CONTENT", kind="prompt"))
    stopped = await gemini.aio.models.generate_content(model=GEMINI, contents="something bad")
    assert stopped.candidates is not None
    assert stopped.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert stopped.candidates[0].content is None and stopped.text is None
    ratings = stopped.candidates[0].safety_ratings
    assert ratings is not None and any(r.blocked for r in ratings)
    refused = await gemini.aio.models.generate_content(model=GEMINI, contents="something worse")
    assert refused.candidates is None and refused.text is None
    assert refused.prompt_feedback is not None
    assert refused.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


async def test_gemini_rate_limit(gemini_api: FakeGemini, gemini: genai.Client) -> None:
    gemini_api.queue(
        gemini_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", retry_delay_seconds=17)
    )
    with pytest.raises(errors.ClientError) as caught:
        await gemini.aio.models.generate_content(model=GEMINI, contents="hi")
    error = caught.value
    assert error.code == 429 and error.status == "RESOURCE_EXHAUSTED"
    assert error.message == "You exceeded your current quota."
    retry = [d for d in error.details["error"]["details"] if d["@type"].endswith("google.rpc.RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]


async def test_gemini_unavailable(gemini_api: FakeGemini, gemini: genai.Client) -> None:
    gemini_api.queue(gemini_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
    with pytest.raises(errors.ServerError) as caught:
        await gemini.aio.models.generate_content(model=GEMINI, contents="hi")
    assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE"


async def test_gemini_retry_follows_the_script(gemini_api: FakeGemini) -> None:
    gemini_api.queue(gemini_error(503), gemini_text("second time lucky"))
    retry = types.HttpRetryOptions(attempts=2, initial_delay=0.01, max_delay=0.01, jitter=0)
    client = genai.Client(
        api_key=gemini_api.api_key, http_options=types.HttpOptions(base_url=gemini_api.base_url, retry_options=retry)
    )
    try:
        response = await client.aio.models.generate_content(model=GEMINI, contents="hi")
    finally:
        await client.aio.aclose()
        client.close()
    assert response.text == "second time lucky" and len(gemini_api.requests) == 2


async def test_gemini_wrong_key(gemini_api: FakeGemini) -> None:
    gemini_api.queue(gemini_text("never sent"))
    client = _gemini_client(gemini_api, api_key="not-the-key")
    try:
        with pytest.raises(errors.ClientError) as caught:
            await client.aio.models.generate_content(model=GEMINI, contents="hi")
    finally:
        await client.aio.aclose()
        client.close()
    error = caught.value
    assert error.code == 400 and error.status == "INVALID_ARGUMENT"
    assert error.message == "API key not valid. Please pass a valid API key."
    assert error.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert len(gemini_api.script) == 1


def test_gemini_checks_the_key_and_path(gemini_api: FakeGemini) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    gemini_api.queue(gemini_text("via ?key="))
    status, answer = _raw_post(
        f"{gemini_api.base_url}/v1beta/models/{GEMINI}:generateContent?key={GEMINI_API_KEY}", body, {}
    )
    assert status == 200 and answer["candidates"][0]["content"]["parts"] == [{"text": "via ?key="}]
    assert gemini_api.last.api_version == "v1beta"
    status, answer = _raw_post(f"{gemini_api.base_url}/v1beta/models/{GEMINI}:generateContent", body, {})
    assert status == 403 and answer["error"]["status"] == "PERMISSION_DENIED"
    status, answer = _raw_post(f"{gemini_api.base_url}/v1beta/models/{GEMINI}:countTokens", body, {})
    assert status == 404 and answer["error"]["status"] == "NOT_FOUND"
    status, answer = _raw_post(
        f"{gemini_api.base_url}/v1beta/models/{GEMINI}:generateContent", {}, {"x-goog-api-key": GEMINI_API_KEY}
    )
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"


async def test_gemini_timeout(gemini_api: FakeGemini) -> None:
    gemini_api.queue(gemini_text("too late").delayed(5))
    client = _gemini_client(gemini_api, timeout_ms=500)
    started = time.monotonic()
    try:
        with pytest.raises(httpx2.ReadTimeout):
            await client.aio.models.generate_content(model=GEMINI, contents="hi")
    finally:
        await client.aio.aclose()
        client.close()
    assert time.monotonic() - started < 3
    assert gemini_api.last.headers["x-server-timeout"] == "1"  # the SDK tells the server, rounded up to seconds


async def test_gemini_responder_then_nothing(gemini_api: FakeGemini, gemini: genai.Client) -> None:
    gemini_api.responder = lambda body: gemini_text(f"echo: {body['contents'][0]['parts'][0]['text']}")
    response = await gemini.aio.models.generate_content(model=GEMINI, contents="hello")
    assert response.text == "echo: hello"
    gemini_api.responder = None
    with pytest.raises(errors.ServerError) as caught:
        await gemini.aio.models.generate_content(model=GEMINI, contents="hello")
    assert caught.value.code == 500 and caught.value.status == "INTERNAL"


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request" in t.name or "serve_forever" in t.name]


def test_closing_wakes_a_delayed_handler() -> None:
    assert not _server_threads()
    with fake_anthropic() as fake:
        fake.queue(anthropic_text("never read").delayed(30))
        with (
            anthropic.Anthropic(api_key=fake.api_key, base_url=fake.base_url, max_retries=0) as client,
            pytest.raises(anthropic.APITimeoutError),
        ):
            client.messages.create(model=CLAUDE, max_tokens=10, messages=USER, timeout=0.2)
        assert _server_threads()  # the handler is still waiting out its delay
    deadline = time.monotonic() + 2
    while _server_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _server_threads()
