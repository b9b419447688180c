"""The codec server: Temporal's remote codec protocol, so operators can read encrypted payloads in the Web UI
and the `temporal` CLI (specs/codec.md).

`POST .../encode` and `POST .../decode` take and answer `{"payloads": [...]}`, the protobuf JSON of
`temporalio.api.common.v1.Payloads`; only the last part of the path counts (the protocol lets endpoints sit
under any prefix). Every request carries `Authorization: Bearer <token>`; `authenticate` turns the token into
an operator identity (or None), and each decode is logged with that identity, never with the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from chimera import http_serving
from chimera.codec.errors import CodecError
from chimera.codec.loading import codec_for

if TYPE_CHECKING:  # an annotation only
    from chimera.settings import Settings

Authenticate = Callable[[str], Awaitable[str | None]]
"""A bearer token -> the operator it belongs to, or None when it is not valid."""

MAX_BODY_BYTES = 32 * 1024 * 1024  # a history page of payloads; Temporal caps one payload at 2 MB
# What the Web UI sends: Authorization (the signed-in user's access token), Authorization-Extras (the ID token).
ALLOWED_HEADERS = ["Authorization", "Authorization-Extras", "Content-Type", "X-Namespace"]
logger = logging.getLogger("chimera.codec")


def token_authenticator(tokens: Mapping[str, str]) -> Authenticate:
    """Tokens known in advance (token -> operator), compared in constant time: for tests and small setups
    until a user registry verifies tokens."""
    known = list(tokens.items())

    async def authenticate(token: str) -> str | None:
        found = None
        for candidate, operator in known:  # no early exit: the time taken does not tell which token was near
            if hmac.compare_digest(candidate.encode(), token.encode()):
                found = operator
        return found

    return authenticate


def build_app(codec: PayloadCodec, authenticate: Authenticate, *, cors_origins: Sequence[str]) -> Starlette:
    async def encode(request: Request) -> Response:
        return await _handle(request, "encode")

    async def decode(request: Request) -> Response:
        return await _handle(request, "decode")

    async def _handle(request: Request, operation: Literal["encode", "decode"]) -> Response:
        operator = await _operator(request, authenticate)
        if isinstance(operator, Response):
            return operator
        namespace = request.headers.get("x-namespace", "")
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            return _refuse(400, f'the body must be protobuf JSON of Payloads {{"payloads": [...]}}: {exc}')
        try:
            coded = await (codec.encode if operation == "encode" else codec.decode)(payloads.payloads)
        except CodecError as exc:
            logger.warning("%s by %s (namespace %r) failed: %s", operation, operator, namespace, exc)
            return _refuse(422, str(exc))
        logger.info("%s %sd %d payloads (namespace %r)", operator, operation, len(coded), namespace)
        body = json_format.MessageToJson(Payloads(payloads=coded), indent=None)
        return Response(body, media_type="application/json")

    routes = [
        Route(path, endpoint, methods=["POST"])
        for name, endpoint in (("encode", encode), ("decode", decode))
        for path in (f"/{name}", f"/{{prefix:path}}/{name}")
    ]
    cors = Middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_methods=["POST"],
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=True,
        # A UI on a public origin (e.g. Temporal Cloud's) calling a codec server on this machine or a private
        # network: Chrome asks first (Private Network Access).
        allow_private_network=True,
    )
    return Starlette(routes=routes, middleware=[cors], max_body_size=MAX_BODY_BYTES)


async def _operator(request: Request, authenticate: Authenticate) -> str | Response:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _refuse(401, "an operator's bearer token is required: Authorization: Bearer <token>")
    try:
        operator = await authenticate(token)
    except Exception as exc:  # the registry is down: say so, and never echo the token
        logger.warning("could not verify a codec server token: %s", type(exc).__name__)
        return _refuse(503, "the operator's token could not be verified now; try again")
    if operator is None:
        logger.warning("refused a codec request with an unknown or expired token from %s", _client(request))
        return _refuse(401, "the bearer token is not valid (unknown or expired)")
    return operator


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _refuse(status: int, reason: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


@contextlib.asynccontextmanager
async def serving(app: Starlette, *, host: str, port: int) -> AsyncIterator[str]:
    """Serve `app` with uvicorn until the block ends; yields its base URL (port 0: a free one)."""
    async with http_serving.serving(app, host=host, port=port, what="the codec server", error=CodecError) as url:
        yield url


async def serve(
    settings: Settings,
    authenticate: Authenticate,
    *,
    codec: PayloadCodec | None = None,
    host: str | None = None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the codec server until `stop` is set (default: until cancelled): the settings' key ring, host, port
    and CORS origins unless given here."""
    codec = codec or codec_for(settings)
    if codec is None:
        raise CodecError(
            f"the codec server needs the codec key ring, but payload_encryption is '{settings.payload_encryption}'"
            f" and the secret '{settings.codec_keys_secret}' is not set (specs/codec.md)"
        )
    app = build_app(codec, authenticate, cors_origins=settings.codec_cors_origins)
    host = host or settings.codec_server_host
    port = settings.codec_server_port if port is None else port
    async with serving(app, host=host, port=port) as url:
        logger.info("codec server listening on %s (POST /encode, /decode)", url)
        await (stop or asyncio.Event()).wait()
