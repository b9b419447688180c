"""The errors activities fail with. Whether one retries is the activity table's word, not the raise site's."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from chimera.models.base import ModelError
from chimera.models.chat import ModelCallError
from schemas.activity_table import Failure


def failure(kind: Failure, message: str) -> ApplicationError:
    """An activity failure of a known type; schemas/activity_table.py says which activities never retry it."""
    return ApplicationError(message, type=kind.value)


def retry_after(kind: Failure, message: str, seconds: float) -> ApplicationError:
    """A retryable failure whose next attempt waits as long as the service asked (a durable wait)."""
    return ApplicationError(message, type=kind.value, next_retry_delay=timedelta(seconds=max(seconds, 1.0)))


def model_failure(exc: ModelError, invalid: Failure) -> ApplicationError:
    """A model call's failure as the activity's: retried (after the provider's retry-after) when the provider
    was busy or slow, never when a setting is wrong or the model declined; `invalid` for an unusable answer."""
    message = str(exc)
    kind = exc.kind if isinstance(exc, ModelCallError) else "invalid_output"
    wait = exc.retry_after_seconds if isinstance(exc, ModelCallError) else None
    if kind == "rate_limited":
        return retry_after(Failure.RATE_LIMITED, message, wait if wait is not None else 30.0)
    if kind in ("unavailable", "timeout"):
        if wait is not None:
            return retry_after(Failure.MODEL_UNAVAILABLE, message, wait)
        return failure(Failure.MODEL_UNAVAILABLE, message)
    if kind in ("config", "no_credentials"):
        return failure(Failure.MODEL_MISCONFIGURED, message)
    if kind == "refused":
        return failure(Failure.MODEL_REFUSED, message)
    return failure(invalid, message)
