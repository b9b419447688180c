"""The sandbox wallet MCP server, except that after a transfer is broadcast (and mined) it hangs while a flag file
exists: a chain that took the payment whose answer never reached the worker, so a test can kill the worker at
exactly that moment. Same tools and definitions as mcp_servers.wallet, so the same pin applies."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from chimera.secrets.env import EnvSecrets
from mcp_servers.common import sandbox_dir_from_env
from mcp_servers.wallet.sandbox import RPC_URL_ENV, SCRYPT_N_ENV, SandboxWallet
from mcp_servers.wallet.server import build_server

HANG_FILE_ENV = "CHIMERA_TEST_HANG_FILE"


class HangingWallet(SandboxWallet):
    def transfer(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        sent = super().transfer(*args, **kwargs)  # signed, in the ledger, broadcast and mined
        flag = Path(os.environ[HANG_FILE_ENV])
        while flag.exists():
            time.sleep(0.05)
        return sent


def hanging_wallet() -> HangingWallet:
    scrypt = os.environ.get(SCRYPT_N_ENV)
    wallet_dir = sandbox_dir_from_env() / "wallet"
    return HangingWallet(
        os.environ.get(RPC_URL_ENV), wallet_dir, EnvSecrets(), scrypt_n=int(scrypt) if scrypt else None
    )


if __name__ == "__main__":
    build_server(hanging_wallet()).run()
