"""SMTP notifier: an alert as a plain-text email (stdlib smtplib, run in a thread from async code).

Subject "[Chimera <severity>] <title>"; the body lists the detail and the facts. The Message-ID is derived from
the alert id, so a repeated delivery (at least once) is recognizable by mail clients and receivers.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from chimera.alerts.config import SmtpNotifierConfig
from chimera.alerts.errors import NotifierError
from schemas.alerts import Alert

log = logging.getLogger(__name__)


def _one_line(value: str) -> str:
    """Header values may not contain line breaks (header injection); fold them into spaces."""
    return " ".join(value.split())


def subject(alert: Alert) -> str:
    return _one_line(f"[Chimera {alert.severity}] {alert.title}")


def text_body(alert: Alert) -> str:
    lines = [alert.title, ""]
    if alert.detail:
        lines += [alert.detail, ""]
    about = {
        "kind": alert.kind,
        "severity": alert.severity,
        "scope": alert.scope,
        "tenant": alert.tenant_id,
        "agent": alert.agent_id,
        "campaign": alert.campaign_id,
    }
    rows = [(k, v) for k, v in about.items() if v] + list(alert.facts.items())
    rows += [
        (k, v) for k, v in (("by", alert.actor), ("raised at", alert.raised_at), ("alert id", alert.alert_id)) if v
    ]
    width = max(len(k) for k, _ in rows)
    lines += [f"{k + ':':<{width + 1}} {v}" for k, v in rows]
    return "\n".join(lines) + "\n"


# Lines up to RFC 5322's hard limit: the 78-column fold turns "Subject: [Chimera ...]" into a folded line whose
# unfolded value starts with a space.
_POLICY = email.policy.default.clone(max_line_length=998)


def build_message(config: SmtpNotifierConfig, alert: Alert) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = subject(alert)
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = format_datetime(datetime.fromisoformat(alert.raised_at))
    domain = parseaddr(config.sender)[1].rpartition("@")[2] or "chimera.invalid"
    message["Message-ID"] = f"<{hashlib.sha256(alert.alert_id.encode()).hexdigest()[:32]}@{domain}>"
    message["X-Chimera-Alert-Id"] = _one_line(alert.alert_id)
    message.set_content(text_body(alert))
    return message


class SmtpNotifier:
    """Sends to one SMTP server. Holds the password privately: repr() shows only the name and the server."""

    def __init__(self, config: SmtpNotifierConfig, password: str | None) -> None:
        if (config.username is None) != (password is None):
            raise ValueError(f"notifier {config.name!r}: a username needs a password, and a password a username")
        self.config = config
        self._password = password

    @property
    def name(self) -> str:
        return self.config.name

    def accepts(self, alert: Alert) -> bool:
        return self.config.accepts(alert)

    async def send(self, alert: Alert) -> None:
        """Deliver the email; NotifierError (with the SMTP reply code, if one came) when the server refuses."""
        await asyncio.to_thread(self._send, build_message(self.config, alert))

    def _send(self, message: EmailMessage) -> None:
        c = self.config
        where = f"{c.host}:{c.port}"
        try:
            context = ssl.create_default_context(cafile=str(c.ca_file) if c.ca_file else None)
            client = (
                smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=context)
                if c.use_ssl
                else smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
            )
            with client:
                if c.starttls:
                    client.starttls(context=context)
                if c.username is not None and self._password is not None:
                    client.login(c.username, self._password)
                refused = client.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifierError(
                self.name, f"{where} refused the login ({exc.smtp_code})", status=exc.smtp_code
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise NotifierError(self.name, f"{where} refused every recipient: {sorted(exc.recipients)}") from None
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise NotifierError(self.name, f"{where} answered {exc.smtp_code} {reply}", status=exc.smtp_code) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, unreachable, timed out, TLS failed
            raise NotifierError(self.name, f"could not deliver through {where}: {type(exc).__name__}: {exc}") from None
        if refused:
            # The others have it; failing would make a retry send it to them again.
            log.warning("notifier %r: %s refused some recipients: %s", self.name, where, sorted(refused))

    def __repr__(self) -> str:
        return f"SmtpNotifier(name={self.name!r}, server={self.config.host}:{self.config.port})"
