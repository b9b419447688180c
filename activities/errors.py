"""The errors activities fail with. Whether one retries is the activity table's word, not the raise site's."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from schemas.activity_table import Failure


def failure(kind: Failure, message: str) -> ApplicationError:
    """An activity failure of a known type; schemas/activity_table.py says which activities never retry it."""
    return ApplicationError(message, type=kind.value)


def retry_after(kind: Failure, message: str, seconds: float) -> ApplicationError:
    """A retryable failure whose next attempt waits as long as the service asked (a durable wait)."""
    return ApplicationError(message, type=kind.value, next_retry_delay=timedelta(seconds=max(seconds, 1.0)))
