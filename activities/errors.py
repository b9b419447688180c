"""Error types activities raise to workflows; temporal.yaml names the non-retryable ones."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError


def non_retryable(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def retry_after(kind: str, message: str, seconds: float) -> ApplicationError:
    """A retryable failure whose next attempt waits as long as the service asked (a durable wait)."""
    return ApplicationError(message, type=kind, next_retry_delay=timedelta(seconds=max(seconds, 1.0)))
