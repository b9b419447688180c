"""The platform side of a webhook, for the sandbox: what X or Meta would send when a mention arrives.

`push_mention` adds the mention to the receiving account's sandbox SQLite (so polling sees it too, and the reply
has a mention to answer; each account has its own, mcp_servers.social.accounts), then delivers the same signed
webhook the real platform would to the ingress. The sandbox names the receiving account by its handle (the
ingress routes a handle it is given as the account id), so it needs no configuration. `chimera sandbox mention`
and benchmarks/reply_latency.py both use this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx

from chimera.accounts.names import account_name
from chimera.ingress import signatures
from chimera.ingress.credentials import WebhookSecrets
from chimera.settings import Settings
from mcp_servers.social.backend import Platform
from mcp_servers.social.sandbox import SandboxPlatform

WEBHOOK_PATHS: dict[str, str] = {"twitter": "/webhooks/x", "instagram": "/webhooks/meta"}
DELIVERY_TIMEOUT_SECONDS = 10.0


def ingress_url(settings: Settings) -> str:
    """Where the sandbox delivers: CHIMERA_INGRESS_URL, else the ingress's own host and port."""
    if settings.ingress_url:
        return settings.ingress_url.rstrip("/")
    host = "127.0.0.1" if settings.ingress_host in ("0.0.0.0", "::", "") else settings.ingress_host
    return f"http://{host}:{settings.ingress_port}"


def x_payload(account: str, mention: dict[str, Any]) -> dict[str, Any]:
    """An Account Activity API delivery of one @mention (tweet_create_events)."""
    author = str(mention["author"])
    tweet = {
        "created_at": _when(mention).strftime("%a %b %d %H:%M:%S +0000 %Y"),
        "id": int(mention["id"]) if str(mention["id"]).isdigit() else 0,
        "id_str": str(mention["id"]),
        "text": str(mention["text"]),
        "truncated": False,
        "in_reply_to_status_id_str": None,
        "in_reply_to_screen_name": account.lstrip("@"),
        "user": {"id_str": f"sandbox-{author}", "screen_name": author, "name": author},
    }
    return {"for_user_id": account, "user_has_blocked": False, "tweet_create_events": [tweet]}


def meta_payload(account: str, mention: dict[str, Any]) -> dict[str, Any]:
    """An Instagram webhook of one comment (field `comments`)."""
    author = str(mention["author"])
    value = {
        "id": str(mention["id"]),
        "text": str(mention["text"]),
        "from": {"id": f"sandbox-{author}", "username": author},
        "media": {"id": "sandbox-media", "media_product_type": "FEED"},
    }
    entry = {"id": account, "time": int(_when(mention).timestamp()), "changes": [{"field": "comments", "value": value}]}
    return {"object": "instagram", "entry": [entry]}


def signed_delivery(
    platform: str, account: str, mention: dict[str, Any], secrets: WebhookSecrets
) -> tuple[str, dict[str, str], bytes]:
    """(path, headers, body) of the webhook the platform would send for this mention."""
    if platform == "twitter":
        body = json.dumps(x_payload(account, mention)).encode()
        signature = (signatures.X_SIGNATURE_HEADER, signatures.x_signature(secrets.x_consumer_secret, body))
    elif platform == "instagram":
        body = json.dumps(meta_payload(account, mention)).encode()
        signature = (signatures.META_SIGNATURE_HEADER, signatures.meta_signature(secrets.meta_app_secret, body))
    else:
        raise ValueError(f"no webhook for platform {platform!r}")
    return WEBHOOK_PATHS[platform], {"content-type": "application/json", signature[0]: signature[1]}, body


@dataclass(frozen=True)
class DeliveryReport:
    url: str
    status: int | None  # None: the ingress could not be reached
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class PushedReport:
    mention: dict[str, Any]
    account: str
    delivery: DeliveryReport


async def deliver(
    http: httpx.AsyncClient,
    base_url: str,
    platform: str,
    account: str,
    mention: dict[str, Any],
    secrets: WebhookSecrets,
) -> DeliveryReport:
    path, headers, body = signed_delivery(platform, account, mention, secrets)
    url = base_url.rstrip("/") + path
    try:
        response = await http.post(url, content=body, headers=headers, timeout=DELIVERY_TIMEOUT_SECONDS)
    except httpx.TransportError as exc:
        return DeliveryReport(url=url, status=None, error=f"{type(exc).__name__}: {exc}")
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    events = [e for e in answer.get("events", []) if isinstance(e, dict)]
    error = answer.get("error") if response.status_code != 200 else None
    return DeliveryReport(url=url, status=response.status_code, events=events, error=str(error) if error else None)


async def push_mention(
    sandbox: SandboxPlatform,
    account: str,
    author: str,
    text: str,
    *,
    http: httpx.AsyncClient,
    base_url: str,
    secrets: WebhookSecrets,
) -> PushedReport:
    """Add the mention to the receiving account's sandbox (`account`, a handle), then deliver its webhook."""
    name = account_name(account)
    mention = (sandbox if sandbox.account == name else sandbox.for_account(name)).add_mention(author, text)
    report = await deliver(http, base_url, sandbox.platform, account, mention, secrets)
    return PushedReport(mention=mention, account=account, delivery=report)


def sandbox_platform(settings: Settings, platform: Platform) -> SandboxPlatform:
    return SandboxPlatform(settings.sandbox_dir, platform)


def _when(mention: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(mention.get("created_at", "")).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return datetime.now(UTC)
