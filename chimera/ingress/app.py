"""The ingress's HTTP endpoints (Starlette): X at /webhooks/x, Meta (Instagram) at /webhooks/meta.

| request | answer |
|---|---|
| GET /webhooks/x?crc_token=T | 200 {"response_token": "sha256=<base64 HMAC>"}; 400 without a token |
| GET /webhooks/meta?hub.mode=subscribe&hub.verify_token=V&hub.challenge=C | 200 C (text/plain); 403 wrong token |
| POST, signature header missing | 401 |
| POST, signature wrong | 403 |
| POST, body not JSON or not the documented shape | 400, saying what is wrong |
| POST, body over 1 MiB | 413 |
| POST, verified | 200 with each event's outcome (signalled, repeat, unroutable, closed, skipped) |
| POST, the store or Temporal failed | 503 (the platform retries; nothing signalled is signalled twice) |

Refusals are logged with the platform, the peer and the body's size: never a secret, never the body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from chimera.ingress import signatures
from chimera.ingress.credentials import WebhookSecrets
from chimera.ingress.intake import Ingress, Unavailable
from chimera.ingress.payloads import Batch, PayloadError, parse_json, parse_meta, parse_x

MAX_BODY_BYTES = 1024 * 1024  # far above any real delivery; refuses a flood before it is read whole
logger = logging.getLogger("chimera.ingress")


class _TooLarge(Exception):
    pass


def build_app(ingress: Ingress, secrets: WebhookSecrets) -> Starlette:
    async def x_webhook(request: Request) -> Response:
        if request.method == "GET":
            token = request.query_params.get("crc_token")
            if not token:
                return _error(400, "a CRC check needs crc_token")
            return JSONResponse(signatures.x_crc_response(secrets.x_consumer_secret, token))
        return await _delivery(
            request,
            "X",
            signatures.X_SIGNATURE_HEADER,
            lambda body, header: signatures.x_signature_ok(secrets.x_consumer_secret, body, header),
            parse_x,
        )

    async def meta_webhook(request: Request) -> Response:
        if request.method == "GET":
            params = request.query_params
            if not signatures.meta_subscription_ok(
                params.get("hub.mode"), params.get("hub.verify_token"), secrets.meta_verify_token
            ):
                logger.warning("refused a Meta subscription check from %s: wrong mode or verify token", _peer(request))
                return _error(403, "hub.mode must be subscribe and hub.verify_token must match")
            challenge = params.get("hub.challenge")
            if not challenge:
                return _error(400, "a subscription check needs hub.challenge")
            return PlainTextResponse(challenge)
        return await _delivery(
            request,
            "Meta",
            signatures.META_SIGNATURE_HEADER,
            lambda body, header: signatures.meta_signature_ok(secrets.meta_app_secret, body, header),
            parse_meta,
        )

    async def _delivery(
        request: Request,
        who: str,
        header_name: str,
        verified: Callable[[bytes, str | None], bool],
        parse: Callable[[dict[str, object]], Batch],
    ) -> Response:
        try:
            body = await _body(request)
        except _TooLarge:
            logger.warning("refused a %s delivery from %s: over %d bytes", who, _peer(request), MAX_BODY_BYTES)
            return _error(413, f"the body is over {MAX_BODY_BYTES} bytes")
        header = request.headers.get(header_name)
        if not header:
            logger.warning(
                "refused a %s delivery from %s: no %s header (%d bytes)", who, _peer(request), header_name, len(body)
            )
            return _error(401, f"missing {header_name} header")
        if not verified(body, header):
            logger.warning("refused a %s delivery from %s: bad signature (%d bytes)", who, _peer(request), len(body))
            return _error(403, "the signature does not match the body")
        try:
            batch = parse(parse_json(body))
        except PayloadError as exc:
            logger.warning("refused a %s delivery from %s: malformed: %s", who, _peer(request), exc)
            return _error(400, f"malformed {who} delivery: {exc}")
        try:
            results = await ingress.receive(batch)
        except Unavailable as exc:
            events = [r.model_dump() for r in exc.results]
            return JSONResponse({"error": f"{exc}; retry later", "events": events}, status_code=503)
        return JSONResponse({"events": [r.model_dump() for r in results]})

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/webhooks/x", x_webhook, methods=["GET", "POST"]),
            Route("/webhooks/meta", meta_webhook, methods=["GET", "POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
