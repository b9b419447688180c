"""Notifier configuration: where alerts go (Settings.notifiers, e.g. CHIMERA_NOTIFIERS as JSON; specs/alerts.md).

A discriminated union on `kind`. Secrets are named, never held: a webhook's HMAC secret and an SMTP password are
looked up by name in the secrets source when the notifiers are built (chimera.alerts.dispatch.notifiers_from).
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from chimera.alerts.errors import NotifierConfigError
from schemas.alerts import Alert, AlertKind, Severity, severity_at_least

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # fits alert_deliveries.notifier


class _NotifierBase(BaseModel):
    # hide_input_in_errors: a webhook URL may hold a token (Slack's do), so errors never echo what was given.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(pattern=NAME_PATTERN, description="unique; deliveries are recorded under it")
    kinds: list[AlertKind] | None = Field(None, description="the alert kinds sent here; None: every kind")
    min_severity: Severity = Field("info", description="alerts below this severity are not sent here")
    timeout_seconds: float = Field(5.0, gt=0, le=60, description="per delivery: connect, send and answer")

    def accepts(self, alert: Alert) -> bool:
        if self.kinds is not None and alert.kind not in self.kinds:
            return False
        return severity_at_least(alert.severity, self.min_severity)


class WebhookNotifierConfig(_NotifierBase):
    """POST a signed, Slack-compatible JSON body (chimera/alerts/webhook.py)."""

    kind: Literal["webhook"] = "webhook"
    url: str = Field(description="http(s) endpoint, e.g. a Slack incoming webhook or your own receiver")
    secret_name: str = Field(min_length=1, description="the HMAC signing secret's name in the secrets source")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # Name only the scheme and host: the rest of a webhook URL may be a credential.
            raise ValueError(f"a webhook url must be http(s)://host/..., not scheme {parts.scheme!r}")
        return value

    def __repr_args__(self) -> list[tuple[str | None, object]]:
        # The URL's path and query may hold a token (Slack's do): show its origin only.
        return [(k, origin(self.url) if k == "url" else v) for k, v in super().__repr_args__()]


class SmtpNotifierConfig(_NotifierBase):
    """Email through an SMTP server (chimera/alerts/smtp.py)."""

    kind: Literal["smtp"] = "smtp"
    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = Field(True, description="upgrade the plain connection with STARTTLS before login")
    use_ssl: bool = Field(False, description="connect with implicit TLS (SMTPS, usually port 465)")
    username: str | None = Field(None, min_length=1)
    password_secret: str | None = Field(None, min_length=1, description="the password's name in the secrets source")
    ca_file: Path | None = Field(None, description="PEM CA bundle to verify the server by; default: the system's")
    sender: str = Field(description="the From address")
    recipients: list[str] = Field(min_length=1)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        _address(value, "sender")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, values: list[str]) -> list[str]:
        for value in values:
            _address(value, "recipient")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> SmtpNotifierConfig:
        if self.starttls and self.use_ssl:
            raise ValueError(f"notifier {self.name!r}: choose starttls or use_ssl, not both")
        if (self.username is None) != (self.password_secret is None):
            raise ValueError(f"notifier {self.name!r}: set username and password_secret together, or neither")
        return self


def _address(value: str, role: str) -> None:
    _, address = parseaddr(value)
    if "@" not in address or "\n" in value or "\r" in value:
        raise ValueError(f"{role} {value!r} is not an email address")


def origin(url: str) -> str:
    """scheme://host[:port] of a URL: what messages may show of it."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


NotifierConfig = Annotated[WebhookNotifierConfig | SmtpNotifierConfig, Field(discriminator="kind")]


def _unique_names(
    notifiers: list[WebhookNotifierConfig | SmtpNotifierConfig],
) -> list[WebhookNotifierConfig | SmtpNotifierConfig]:
    seen: set[str] = set()
    for notifier in notifiers:
        if notifier.name in seen:
            raise ValueError(f"two notifiers are named {notifier.name!r}: names must be unique")
        seen.add(notifier.name)
    return notifiers


# The type of Settings.notifiers: the union, with unique names (deliveries are recorded per name).
NotifierList = Annotated[list[NotifierConfig], AfterValidator(_unique_names)]


def parse_notifiers(values: Sequence[object]) -> list[WebhookNotifierConfig | SmtpNotifierConfig]:
    """Validate Settings.notifiers (JSON objects, or configs already built) into notifier configs.

    NotifierConfigError lists every problem by position and field, without echoing the values given."""
    try:
        return _NOTIFIERS.validate_python(list(values))
    except ValidationError as exc:
        problems = [
            f"notifiers[{'.'.join(str(p) for p in e['loc']) or '*'}]: {e['msg']}"
            for e in exc.errors(include_input=False)
        ]
        raise NotifierConfigError("invalid notifier configuration: " + "; ".join(problems)) from None


_NOTIFIERS = TypeAdapter(NotifierList, config=ConfigDict(hide_input_in_errors=True))
