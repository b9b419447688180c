"""Foundry's anvil as a child process: the local EVM node of the sandbox wallet chain (specs/chain.md).

The binary comes from npm (`make chain` installs the pinned `@foundry-rs/anvil` into tools/chain), or from
the path in CHIMERA_ANVIL_BIN. Anvil listens on 127.0.0.1 only, on a port the OS picks (`--port 0`); the
port is read from anvil's own "Listening on" line, so no other process can take it in between.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

ANVIL_BIN_ENV = "CHIMERA_ANVIL_BIN"
DEFAULT_CHAIN_ID = 31337
REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools" / "chain"
_LISTENING = re.compile(r"Listening on 127\.0\.0\.1:(\d+)")
_NPM_PLATFORMS = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}
_NPM_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class AnvilNotInstalledError(RuntimeError):
    """No anvil binary where Chimera looks for one."""


class AnvilError(RuntimeError):
    """Anvil did not start, or did not answer in time."""


def installed_binary_path() -> Path:
    """Where `npm ci --prefix tools/chain` puts this platform's anvil binary (the package's optional dependency)."""
    system = _NPM_PLATFORMS.get(platform.system(), platform.system().lower())
    arch = _NPM_ARCHES.get(platform.machine(), platform.machine())
    name = "anvil.exe" if system == "win32" else "anvil"
    return TOOLS_DIR / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / name


def find_anvil() -> Path:
    """The anvil binary: CHIMERA_ANVIL_BIN if set, else the npm-installed one; a clear error if neither exists."""
    override = os.environ.get(ANVIL_BIN_ENV)
    path = Path(override) if override else installed_binary_path()
    if not path.is_file() or not os.access(path, os.X_OK):
        where = f"{ANVIL_BIN_ENV}={override}" if override else str(path)
        raise AnvilNotInstalledError(
            f"anvil is not installed (no executable at {where}); run `make chain` "
            f"(npm ci --prefix tools/chain), or set {ANVIL_BIN_ENV} to an anvil binary"
        )
    return path


class Anvil:
    """One anvil node on 127.0.0.1. `with Anvil(state_path=p) as node:` starts it and stops it afterwards.

    With `state_path`, anvil loads the chain from that file when it exists and writes it back on stop
    (`--state`), and also every `state_interval` seconds when that is set (`--state-interval`), so the
    sandbox chain survives a restart, even an unclean one up to the last interval.
    """

    def __init__(
        self,
        *,
        chain_id: int = DEFAULT_CHAIN_ID,
        state_path: Path | None = None,
        state_interval: int | None = None,
        binary: Path | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        if state_interval is not None and state_path is None:
            raise ValueError("state_interval needs a state_path to write to")
        if state_interval is not None and state_interval < 1:
            raise ValueError(f"state_interval must be at least 1 second, got {state_interval}")
        self.chain_id = chain_id
        self.state_path = state_path
        self.state_interval = state_interval
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise AnvilError("anvil is not running")
        return self._port

    @property
    def url(self) -> str:
        """The JSON-RPC endpoint, http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self, binary: Path) -> list[str]:
        args = [str(binary), "--host", "127.0.0.1", "--port", "0", "--chain-id", str(self.chain_id)]
        if self.state_path is not None:
            args += ["--state", str(self.state_path)]
        if self.state_interval is not None:
            args += ["--state-interval", str(self.state_interval)]
        return args

    def start(self) -> None:
        """Start anvil and return once `eth_chainId` answers with the configured chain id."""
        if self._process is not None:
            raise AnvilError("anvil is already running")
        binary = self._binary or find_anvil()
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
        # anvil's banner goes to a private temporary file (it lists anvil's well-known dev keys), read for the port.
        self._log_dir = tempfile.TemporaryDirectory(prefix="chimera-anvil-")
        log_path = Path(self._log_dir.name) / "anvil.log"
        with log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command(binary), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._port = self._wait_for_port(log_path)
            self._wait_for_chain_id()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop anvil (SIGTERM, so it writes `--state` first); kill it if it does not exit within `timeout`."""
        process, self._process, self._port = self._process, None, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None

    def rpc(self, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
        """One JSON-RPC call (e.g. `rpc("anvil_mine", [3])`); the `result`, or AnvilError with anvil's message."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise AnvilError(f"anvil refused {method}: {answer['error'].get('message', answer['error'])}")
        return answer["result"]

    def mine(self, blocks: int = 1) -> None:
        """Mine `blocks` empty blocks now (anvil otherwise mines one block per transaction)."""
        self.rpc("anvil_mine", [hex(blocks)])

    def _wait_for_port(self, log_path: Path) -> int:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            found = _LISTENING.search(text)
            if found:
                return int(found.group(1))
            self._raise_if_exited(text)
            time.sleep(0.02)
        raise AnvilError(f"anvil printed no 'Listening on' line within {self._startup_timeout}s")

    def _wait_for_chain_id(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        last_error = ""
        while time.monotonic() < deadline:
            try:
                chain_id = int(self.rpc("eth_chainId", timeout=1.0), 16)
            except (OSError, urllib.error.URLError, AnvilError) as exc:
                last_error = str(exc)
                self._raise_if_exited("")
                time.sleep(0.02)
                continue
            if chain_id != self.chain_id:
                raise AnvilError(f"anvil answers chain id {chain_id}, expected {self.chain_id}")
            return
        raise AnvilError(f"anvil did not answer eth_chainId within {self._startup_timeout}s: {last_error}")

    def _raise_if_exited(self, log_text: str) -> None:
        if self._process is not None and self._process.poll() is not None:
            tail = "\n".join(log_text.strip().splitlines()[-5:])
            raise AnvilError(f"anvil exited with code {self._process.returncode} at start: {tail}")

    def __enter__(self) -> Anvil:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"Anvil(chain_id={self.chain_id}, {where}, state_path={self.state_path})"
