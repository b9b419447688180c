"""Signal-then-confirm: how every change reaches a workflow and how its answer comes back.

Signals never fail inside a workflow. Each one records an `Ack` under the sender's request id, so a
change sends a signal, then polls the workflow's `ack` query until it has answered. A workflow that
has ended cannot take signals at all: that is reported as `Refused`, with how it ended.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from chimera.access.credentials import UserCredentials
from chimera.control.connection import NO_ANSWER, WORKER_HINT, query_timeout
from chimera.control.errors import InvalidRequest, NotConfirmed, NotSignedIn, Refused
from schemas.review import Ack, AckQuery

M = TypeVar("M", bound=BaseModel)

ACK_TIMEOUT = 15.0  # seconds to wait for a workflow to acknowledge a signal
ACK_POLL_INTERVAL = 0.2


def signed_in() -> UserCredentials:
    """The CLI user's credentials; `NotSignedIn` (a ControlError) says where it looked."""
    from chimera.access.credentials import NotSignedIn as NoCredentials
    from chimera.access.credentials import load_credentials
    from chimera.settings import Settings

    try:
        return load_credentials(Settings())
    except NoCredentials as exc:
        raise NotSignedIn(str(exc)) from None


def default_actor() -> str:
    """Who the request says it is from: the signed-in user, else $CHIMERA_ACTOR, else the OS user. The workflow
    records the identity the signature proves, whatever this says."""
    from chimera.access.credentials import NotSignedIn as NoCredentials
    from chimera.access.credentials import find_credentials
    from chimera.settings import Settings

    try:
        creds = find_credentials(Settings())
    except NoCredentials:
        creds = None
    if creds is not None:
        return creds.user
    actor = os.environ.get("CHIMERA_ACTOR", "").strip()
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def build_request(model: type[M], **fields: Any) -> M:
    """A signal payload under a fresh request id, validated before anything is sent; errors become
    `InvalidRequest`."""
    try:
        return model.model_validate({"request_id": str(uuid.uuid4()), **fields})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message = str(err["msg"]).removeprefix("Value error, ")
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}: {message}" if where else message)
        raise InvalidRequest("; ".join(problems)) from exc


class Request(Protocol):
    """A signal payload: the workflow files its ack under the request id."""

    @property
    def request_id(self) -> str: ...


@dataclass(frozen=True)
class Recipient:
    """The workflow a signal goes to, how messages name it, and how to say how it ended."""

    handle: WorkflowHandle[Any, Any]
    desc: WorkflowExecutionDescription
    name: str  # "campaign acme/spring", "task acme.spring.c1-post"
    ended: Callable[[WorkflowExecutionDescription], Awaitable[str]]


async def signal_and_wait(
    to: Recipient,
    signal: str | Callable[..., None] | Callable[..., Awaitable[None]],
    request: Request,
    ack_query: Callable[[Any, AckQuery], Ack | None],
    within: float | None = None,
) -> Ack:
    """Send `signal` with `request` to a running workflow, then poll `ack_query` until it has handled it.

    An ended workflow (before, during or after the send) is `Refused` with how it ended; no ack
    within `within` seconds (default ACK_TIMEOUT) from a running one is `NotConfirmed`.
    """
    handle = to.handle
    if to.desc.status != WorkflowExecutionStatus.RUNNING:
        raise Refused(await to.ended(to.desc))
    try:
        await handle.signal(signal, request)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise Refused(await to.ended(await handle.describe())) from exc  # it ended just now
    key = AckQuery(request_id=request.request_id)
    within = ACK_TIMEOUT if within is None else within
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (remaining := deadline - loop.time()) > 0:
        try:
            ack = await handle.query(ack_query, key, rpc_timeout=query_timeout(max(0.1, remaining)))
        except RPCError as exc:
            if exc.status not in NO_ANSWER:
                raise
            ack = None  # no worker picked the query up yet
        if ack is not None:
            return ack
        await asyncio.sleep(ACK_POLL_INTERVAL)
    final = await handle.describe()
    if final.status != WorkflowExecutionStatus.RUNNING:
        raise Refused(await to.ended(final))
    raise NotConfirmed(f"{to.name}: delivered but not confirmed within {within:g}s: {WORKER_HINT}")
