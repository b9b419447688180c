"""Serving a Starlette app with uvicorn inside a process that has more to do: the ingress, the codec server.

The caller's process owns Ctrl-C and SIGTERM (uvicorn's own handlers would swallow them), the socket is bound
before the server starts (port 0 picks a free one, and a busy port is a clear error, not a log line), and the
URL is yielded only once the server listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import uvicorn
from starlette.applications import Starlette


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the host process owns the signals and sets should_exit


def bind(host: str, port: int, what: str, error: Callable[[str], Exception]) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise error(f"{what} cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serving(
    app: Starlette, *, host: str, port: int, what: str, error: Callable[[str], Exception]
) -> AsyncIterator[str]:
    """Serve `app` until the block ends; yields its base URL. `error` builds what a failure to listen raises."""
    sock = bind(host, port, what, error)
    # No access log: request lines may carry what must not be logged; the apps log what matters themselves.
    server = _Server(uvicorn.Config(app, lifespan="off", access_log=False, log_config=None, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # listening before the caller announces the URL
            if task.done():
                task.result()
                raise error(f"{what} stopped while starting")
            await asyncio.sleep(0.02)
        bound = sock.getsockname()[1]
        yield f"http://{f'[{host}]' if ':' in host else host}:{bound}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(task, return_exceptions=True)
        sock.close()
