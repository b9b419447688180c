"""What a control operation can fail with; each message says why, in words for a campaign manager."""

from __future__ import annotations


class ControlError(Exception):
    """An operation could not be done; the message says why, in words for a campaign manager."""


class NotFound(ControlError):
    """No campaign or task by that reference."""


class Refused(ControlError):
    """The campaign or task has ended and takes no more requests."""


class NotConfirmed(ControlError):
    """Temporal has the request but no worker answered in time (usually: no worker running)."""


class CampaignExists(ControlError):
    """A campaign id is used once: its workflow id already exists, running or closed."""


class InvalidRequest(ControlError, ValueError):
    """The request is malformed (e.g. a rejection without a reason); nothing was sent."""


class Unreachable(ControlError):
    """The Temporal server cannot be reached."""


class NotSignedIn(ControlError):
    """No user credentials to sign the request with (the message says where the CLI looked)."""
