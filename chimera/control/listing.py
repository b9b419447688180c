"""Listings from Temporal visibility: pages, page tokens, counts, and the optional per-row check.

A listing reads search attributes only, so it costs one visibility call per page whatever the number
of workflows and needs no worker. The dev server's SQL visibility has no ORDER BY: its own order is
open workflows first, then the newest start; each listing says how it orders. Visibility lags about
a second behind the workflows; `--check` asks each listed workflow (bounded, with short timeouts).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Generic, TypeVar

from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecution, WorkflowFailureError, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from chimera.control.connection import NO_ANSWER, visibility_error
from chimera.control.errors import InvalidRequest

T = TypeVar("T")
RowT = TypeVar("RowT", bound=BaseModel)
M = TypeVar("M")

PAGE_SIZE = 50  # rows a page shows by default
MAX_PAGE_SIZE = 1000  # the server's own cap on a visibility page
CHECK_TIMEOUT = 5.0  # seconds a `--check` query waits for a worker
CHECK_CONCURRENCY = 16  # queries in flight at once: each may make a worker replay a whole history


class Page(BaseModel, Generic[RowT]):
    """One page of a listing: its rows, the token of the next page, and how many match in all."""

    rows: list[RowT]
    offset: int = Field(0, description="rows on the pages before this one")
    next_page: str | None = Field(None, description="pass to --page for the next rows; null on the last page")
    total: int | None = Field(None, description="rows matching the filters, over all pages (visibility's count)")
    order: str = Field(description="how rows are ordered, within and across pages")


# --- page tokens ------------------------------------------------------------------------------


def encode_token(kind: str, raw: bytes) -> str:
    """A token to print: `kind` (which listing made it), then URL-safe base64, so a shell passes it as is."""
    return kind + "." + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(kind: str, token: str, command: str, parse: Callable[[bytes], M]) -> M:
    """`parse` of the bytes of a token made by `encode_token(kind, ...)`; `InvalidRequest` for anything else."""
    prefix, _, body = token.strip().partition(".")
    try:
        if prefix != kind or not body:
            raise ValueError(token)
        return parse(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error) as exc:  # pydantic's ValidationError is a ValueError
        raise InvalidRequest(f"'{token}' is not a page token of `{command}`: use one its last page printed") from exc


# --- visibility calls ------------------------------------------------------------------------------


async def list_page(
    client: Client, query: str, page_size: int, token: bytes | None = None
) -> tuple[list[WorkflowExecution], bytes | None]:
    """One visibility page (at most MAX_PAGE_SIZE rows) and the server's token for the next one."""
    pages = client.list_workflows(query, page_size=min(page_size, MAX_PAGE_SIZE), next_page_token=token)
    try:
        await pages.fetch_next_page()
    except RPCError as exc:
        raise visibility_error(exc) from exc
    return list(pages.current_page or []), pages.next_page_token


async def count(client: Client, query: str) -> int:
    try:
        return (await client.count_workflows(query)).count
    except RPCError as exc:
        raise visibility_error(exc) from exc


# --- `--check`: asking each listed workflow ------------------------------------------------------


async def bounded(
    items: Sequence[T], work: Callable[[T], Awaitable[RowT]], limit: int = CHECK_CONCURRENCY
) -> list[RowT]:
    """`work` on every item, at most `limit` at once, results in the items' order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> RowT:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def idle_task_queues(client: Client, queues: set[str]) -> set[str]:
    """The workflow task queues no worker has polled lately: a query there can only time out.

    Saves CHECK_TIMEOUT per row when no worker runs at all; a queue with pollers is still asked, and
    a worker that just stopped is reported by the query's own timeout.
    """

    async def idle(queue: str) -> bool:
        try:
            resp = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                ),
                timeout=timedelta(seconds=CHECK_TIMEOUT),
            )
        except RPCError:
            return False  # cannot tell: let the query itself say what happens
        return not resp.pollers

    names = sorted(queues)
    found = await asyncio.gather(*(idle(name) for name in names))
    return {name for name, is_idle in zip(names, found, strict=True) if is_idle}


def no_worker_message(queue: str, role: str) -> str:
    return f"no worker polls task queue '{queue}': `chimera worker --role {role}`"


def check_failure(exc: Exception, timeout: float) -> str:
    """Why a `--check` query got no answer, in a campaign manager's words."""
    if isinstance(exc, RPCError):
        if exc.status in NO_ANSWER:
            return f"no worker answered within {timeout:g} s"
        if exc.status == RPCStatusCode.NOT_FOUND:
            return "the workflow is gone (past its retention)"
        return f"Temporal refused the query: {exc.message}"
    if isinstance(exc, WorkflowQueryFailedError):
        return f"the workflow could not answer: {exc}"
    if isinstance(exc, WorkflowFailureError):
        return f"its result could not be read: {exc}"
    return f"{type(exc).__name__}: {exc}"


CHECK_ERRORS = (RPCError, WorkflowQueryFailedError, WorkflowFailureError)
