"""Webhook notifier: POST an alert as a signed, Slack-compatible JSON body.

Body: `text` (the fallback line Slack shows in notifications), `blocks` (a header, a section with the detail and
the facts, a context line) and the alert itself under `alert`, for receivers that are not Slack.

Signature (the Slack/Stripe scheme, specs/alerts.md):
    X-Chimera-Timestamp: <unix seconds>
    X-Chimera-Signature: v1=<hex HMAC-SHA256 of f"{timestamp}.{body}" under the secret>
    X-Chimera-Alert-Id:  <alert_id>, for receivers' de-duplication (a delivery may be repeated)
Receivers check it with `verify_signature`, on the raw body bytes, before parsing them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx  # the installed httpx2 distribution (its import name is httpx2; see other adapters)

from chimera.alerts.config import WebhookNotifierConfig, origin
from chimera.alerts.errors import InvalidSignature, MissingSignature, NotifierError, StaleTimestamp
from schemas.alerts import Alert

TIMESTAMP_HEADER = "X-Chimera-Timestamp"
SIGNATURE_HEADER = "X-Chimera-Signature"
ALERT_ID_HEADER = "X-Chimera-Alert-Id"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
_SLACK_HEADER_MAX = 150  # Slack's limit for a header block's text
_SLACK_FIELDS_MAX = 10  # and for a section's fields
_SLACK_TEXT_MAX = 3000  # a section's text


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`: "v1=<hex>"."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={mac}"


def verify_signature(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Check a delivery: raises MissingSignature, InvalidSignature or StaleTimestamp; returns None if it verifies.

    `timestamp` and `signature` are the X-Chimera-Timestamp and X-Chimera-Signature headers, `body` the raw
    request body, `now` the receiver's clock (unix seconds). The signature header may list several
    comma-separated "v1=..." values (a sender rotating secrets); one matching is enough.
    """
    if not timestamp or not signature:
        raise MissingSignature(f"the {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} must be unix seconds") from None
    if abs(now - sent) > tolerance_seconds:
        raise StaleTimestamp(f"{TIMESTAMP_HEADER} is {now - sent:.0f} s from now (tolerance {tolerance_seconds:g} s)")
    expected = sign(secret, sent, body).encode()
    given = [part.strip().encode("utf-8", "replace") for part in signature.split(",")]
    # compare_digest on every candidate (no early exit), so timing says nothing about which part matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in given]
    if not any(matches):
        raise InvalidSignature(f"{SIGNATURE_HEADER} does not match the body and timestamp")


def _mrkdwn(text: str, limit: int) -> str:
    """Slack's escaping (&, <, >), so a reason like "<!channel>" is shown, not obeyed; and its length limits."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def slack_body(alert: Alert) -> dict[str, Any]:
    """The JSON a Slack incoming webhook accepts, with the alert itself under `alert`."""
    where = " · ".join(
        f"{label} {value}"
        for label, value in (
            ("tenant", alert.tenant_id),
            ("agent", alert.agent_id),
            ("campaign", alert.campaign_id),
        )
        if value
    )
    facts = [f"*{_mrkdwn(k, 100)}*\n{_mrkdwn(v, 1800)}" for k, v in alert.facts.items()][:_SLACK_FIELDS_MAX]
    text = _mrkdwn(alert.detail or alert.title, _SLACK_TEXT_MAX)
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if facts:
        section["fields"] = [{"type": "mrkdwn", "text": text} for text in facts]
    context = [f"{alert.severity} {alert.kind}", f"scope {alert.scope}", where, alert.raised_at]
    if alert.actor:
        context.append(f"by {alert.actor}")
    return {
        "text": f"{_EMOJI[alert.severity]} [{alert.severity}] {_mrkdwn(alert.title, _SLACK_TEXT_MAX)}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": alert.title[:_SLACK_HEADER_MAX], "emoji": True}},
            section,
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _mrkdwn(" | ".join(c for c in context if c), 2000)}],
            },
        ],
        "alert": alert.model_dump(mode="json"),
    }


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookNotifier:
    """Sends to one webhook. Holds its secret privately: repr() shows only the name and the URL's origin."""

    def __init__(
        self,
        config: WebhookNotifierConfig,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError(f"notifier {config.name!r}: the signing secret is empty")
        self.config = config
        self._secret = secret
        self._clock = clock

    @property
    def name(self) -> str:
        return self.config.name

    def accepts(self, alert: Alert) -> bool:
        return self.config.accepts(alert)

    def signed_request(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the delivery of `alert`, signed now."""
        body = encode(slack_body(alert))
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            ALERT_ID_HEADER: alert.alert_id,
            "User-Agent": "chimera-alerts/1",
        }
        return body, headers

    async def send(self, alert: Alert) -> None:
        """POST the alert; NotifierError (with the HTTP status, if one came) unless the receiver answers 2xx."""
        body, headers = self.signed_request(alert)
        where = origin(self.config.url)
        timeout = self.config.timeout_seconds
        try:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
                response = await client.post(self.config.url, content=body, headers=headers)
        # `from None`: httpx's messages carry the full URL, which may hold a token.
        except httpx.TimeoutException:
            raise NotifierError(self.name, f"no answer from {where} within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise NotifierError(self.name, f"could not deliver to {where}: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise NotifierError(self.name, f"{where} answered HTTP {response.status_code}", status=response.status_code)

    def __repr__(self) -> str:
        return f"WebhookNotifier(name={self.name!r}, url={origin(self.config.url)!r})"
