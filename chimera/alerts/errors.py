"""Errors of the alerts package. Messages name the notifier, the secret's name or the receiver's answer, never a
secret's value nor a full URL (a Slack webhook URL carries its token in the path)."""

from __future__ import annotations


class AlertsError(Exception):
    """Base of the alerts package's errors."""


class NotifierConfigError(AlertsError):
    """A notifier cannot be built from its configuration (e.g. its secret is missing)."""


class NotifierError(AlertsError):
    """A notifier could not deliver an alert: unreachable, timed out, refused, or answered non-2xx."""

    def __init__(self, notifier: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"notifier {notifier!r}: {message}")
        self.notifier = notifier
        self.reason = message
        self.status = status  # the HTTP status or SMTP reply code, when the receiver answered


class SignatureError(AlertsError):
    """A webhook delivery's signature does not verify (base of the three reasons below)."""


class MissingSignature(SignatureError):
    """The timestamp or signature header is absent or empty."""


class InvalidSignature(SignatureError):
    """The signature does not match the body and timestamp under the secret, or a header is malformed."""


class StaleTimestamp(SignatureError):
    """The signed timestamp is too far from now: a replay, or a badly wrong clock."""
