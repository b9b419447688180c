"""Connecting to Temporal and reading workflows: describe, list and query, each with a timeout.

Visibility (list queries on search attributes) is eventually consistent: a campaign just started or a
review just escalated may show up a second late, and one just decided may linger as long. The queries
of each workflow are authoritative: listings read visibility only, and re-check rows with them on request
(`--check`, chimera/control/listing.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from chimera.control.errors import ControlError, InvalidRequest, NotConfirmed, Unreachable
from chimera.temporal_config import TemporalConfig, connect

T = TypeVar("T")

QUERY_TIMEOUT = 10.0  # a query waits for a worker; without one it would hang until the RPC deadline
WORKER_HINT = "is a worker running? `chimera worker --role all`"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # also keeps visibility queries free of quotes
# A query nobody answers: the dev server reports the client's deadline as CANCELLED, the test server
# as DEADLINE_EXCEEDED.
NO_ANSWER = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)


async def open_client(config: TemporalConfig, *, address: str | None = None) -> Client:
    """connect(), with an unreachable server reported as `Unreachable`."""
    try:
        return await connect(config, address=address)
    except RuntimeError as exc:  # the core bridge reports connection failures as RuntimeError
        target = address or config.connection()[0]
        raise Unreachable(f"cannot reach Temporal at {target}: is `chimera dev` running?") from exc


def status_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status is not None else "unknown"


def query_timeout(at_most: float | None = None) -> timedelta:
    """The RPC timeout of a query: QUERY_TIMEOUT, or `at_most` seconds if that is shorter."""
    return timedelta(seconds=QUERY_TIMEOUT if at_most is None else min(at_most, QUERY_TIMEOUT))


async def answer(ask: Callable[[timedelta], Awaitable[T]], what: str) -> T:
    """Run a query, turning a missing worker into `NotConfirmed` and a refused query into `ControlError`."""
    try:
        return await ask(query_timeout())
    except RPCError as exc:
        if exc.status in NO_ANSWER:
            raise NotConfirmed(f"{what} did not answer within {QUERY_TIMEOUT:g}s: {WORKER_HINT}") from exc
        raise
    except WorkflowQueryFailedError as exc:
        raise ControlError(f"{what} could not answer: {exc}") from exc


async def or_none(awaitable: Awaitable[T]) -> T | None:
    """Extra detail for a message: any failure just leaves it out."""
    try:
        return await awaitable
    except (RPCError, WorkflowQueryFailedError, WorkflowFailureError):
        return None


async def completed_result(handle: WorkflowHandle[Any, T], execution: WorkflowExecution) -> T | None:
    """A completed workflow's result, for a message or a listing; None when it did not complete or cannot be read."""
    if execution.status != WorkflowExecutionStatus.COMPLETED:
        return None
    return await or_none(handle.result(rpc_timeout=query_timeout()))


async def describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    """The workflow's description, or None when there is no workflow by that id."""
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise


async def list_executions(client: Client, query: str) -> list[WorkflowExecution]:
    """Every match, in pages of 1,000 (the server's cap): about 0.25 s a page on the dev server."""
    try:
        return [execution async for execution in client.list_workflows(query)]
    except RPCError as exc:
        raise visibility_error(exc) from exc


def visibility_error(exc: RPCError) -> Exception:
    """A listing or count the server refused, in words when the reason is known."""
    if exc.status == RPCStatusCode.UNIMPLEMENTED:
        return ControlError(
            "this Temporal server cannot list workflows (the time-skipping test server has no visibility)"
        )
    return exc


def slug(value: str, what: str) -> str:
    """`value` stripped, if it is an id that can go into a visibility query; else `InvalidRequest`."""
    value = value.strip()
    if not SLUG.match(value):
        raise InvalidRequest(f"{what} '{value}' is not a valid id: lowercase letters, digits and dashes")
    return value
