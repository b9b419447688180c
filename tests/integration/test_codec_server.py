"""The codec server on a loopback port: Temporal's remote codec protocol, operators' bearer tokens, and CORS
for the Web UI's origin."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from chimera.codec import ENCODING, CodecError, EncryptionCodec, KeyRing
from chimera.codec.server import build_app, serve, serving, token_authenticator
from chimera.settings import Settings
from schemas.campaign_run import CampaignInput
from tests.helpers import scripted
from tests.helpers.campaigns import runtime
from tests.helpers.polling import eventually
from tests.helpers.servers import free_port

UI = "http://localhost:8233"
TOKEN = "operator-token-for-tests"
CODEC = EncryptionCodec(KeyRing(active="k1", keys={"k1": os.urandom(32)}))


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = build_app(CODEC, token_authenticator({TOKEN: "maya@ops"}), cors_origins=[UI, "http://127.0.0.1:8233"])
    async with serving(app, host="127.0.0.1", port=0) as url:
        yield url


async def encrypted_body(*values: object) -> tuple[str, Payloads]:
    plain = await pydantic_data_converter.encode(list(values))
    sealed = Payloads(payloads=await CODEC.encode(plain))
    return json_format.MessageToJson(sealed), Payloads(payloads=plain)


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Namespace": "default", "Content-Type": "application/json"}


async def test_decode_gives_the_plaintext_to_an_operator(server: str, caplog: pytest.LogCaptureFixture) -> None:
    inp = CampaignInput(spec=scripted.spec(), runtime=runtime("q"), max_cycles=1)
    body, plain = await encrypted_body(inp, "second")
    assert "Thrifted" not in body
    caplog.set_level(logging.INFO, logger="chimera.codec")
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{server}/decode", content=body, headers=bearer())
    assert answer.status_code == 200, answer.text
    decoded = json_format.Parse(answer.text, Payloads())
    assert decoded == plain
    assert pydantic_data_converter.payload_converter.from_payloads(decoded.payloads, [CampaignInput, str]) == [
        inp,
        "second",
    ]
    logged = caplog.text
    assert "maya@ops decoded 2 payloads (namespace 'default')" in logged and TOKEN not in logged


async def test_encode_then_decode_under_a_path_prefix(server: str) -> None:
    plain = json_format.MessageToJson(Payloads(payloads=await pydantic_data_converter.encode(["hello"])))
    async with httpx.AsyncClient() as http:
        encoded = await http.post(f"{server}/codec/default/encode", content=plain, headers=bearer())
        assert encoded.status_code == 200, encoded.text
        sealed = json_format.Parse(encoded.text, Payloads())
        assert sealed.payloads[0].metadata["encoding"] == ENCODING
        decoded = await http.post(f"{server}/codec/default/decode", content=encoded.text, headers=bearer())
    assert json_format.Parse(decoded.text, Payloads()) == json_format.Parse(plain, Payloads())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
    ],
    ids=["no header", "wrong token", "not bearer", "empty token"],
)
async def test_refused_without_a_valid_token(server: str, headers: dict[str, str]) -> None:
    body, _ = await encrypted_body("secret plan")
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{server}/decode", content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    reason = answer.json()["error"]
    assert "token" in reason and "secret plan" not in answer.text


async def test_bad_bodies_and_unknown_keys_are_explained(server: str) -> None:
    other = EncryptionCodec(KeyRing(active="k7", keys={"k7": os.urandom(32)}))
    foreign = Payloads(payloads=await other.encode(await pydantic_data_converter.encode(["x"])))
    async with httpx.AsyncClient() as http:
        garbage = await http.post(f"{server}/decode", content="{not json", headers=bearer())
        unknown = await http.post(f"{server}/decode", content=json_format.MessageToJson(foreign), headers=bearer())
        wrong_method = await http.get(f"{server}/decode", headers=bearer())
    assert garbage.status_code == 400 and "protobuf JSON of Payloads" in garbage.json()["error"]
    assert unknown.status_code == 422 and "key 'k7'" in unknown.json()["error"]
    assert wrong_method.status_code == 405


async def test_cors_preflight_from_the_ui_origin(server: str) -> None:
    preflight = {
        "Origin": UI,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    async with httpx.AsyncClient() as http:
        allowed = await http.options(f"{server}/decode", headers=preflight)
        refused = await http.options(f"{server}/decode", headers={**preflight, "Origin": "https://evil.example"})
        body, _ = await encrypted_body("x")
        actual = await http.post(f"{server}/decode", content=body, headers={**bearer(), "Origin": UI})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI
    assert allowed.headers["access-control-allow-credentials"] == "true"
    allowed_headers = allowed.headers["access-control-allow-headers"].lower()
    assert all(h in allowed_headers for h in ("authorization", "x-namespace", "content-type"))
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert actual.status_code == 200 and actual.headers["access-control-allow-origin"] == UI


async def test_a_refusal_is_readable_by_the_ui(server: str) -> None:
    """A 401 carries the CORS headers, so the UI can show why instead of a network error."""
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{server}/decode", content=json.dumps({"payloads": []}), headers={"Origin": UI})
    assert answer.status_code == 401 and answer.headers["access-control-allow-origin"] == UI


async def test_serve_from_settings_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `chimera codec serve` runs: the key ring from the secrets sources, host and port from settings."""
    ring = KeyRing(active="k1", keys=CODEC.ring.keys)
    monkeypatch.setenv("CHIMERA_SECRET_CODEC_KEYS", ring.to_json())
    port = free_port()
    settings = Settings(payload_encryption="on", codec_server_host="127.0.0.1", codec_server_port=port)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, token_authenticator({TOKEN: "maya@ops"}), stop=stop))
    body, plain = await encrypted_body("served")
    async with httpx.AsyncClient() as http:
        answer = await eventually(lambda: _post_when_up(http, f"http://127.0.0.1:{port}/decode", body))
    assert json_format.Parse(answer.text, Payloads()) == plain
    stop.set()
    await asyncio.wait_for(task, 10)


async def _post_when_up(http: httpx.AsyncClient, url: str, body: str) -> httpx.Response | None:
    try:
        return await http.post(url, content=body, headers=bearer())
    except httpx.ConnectError:
        return None


async def test_serve_refuses_without_a_key_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHIMERA_SECRET_CODEC_KEYS", raising=False)
    with pytest.raises(CodecError, match="needs the codec key ring"):
        await serve(Settings(payload_encryption="auto"), token_authenticator({}))
