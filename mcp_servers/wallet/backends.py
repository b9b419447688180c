"""Which wallet backend a server process runs: CHIMERA_WALLET_BACKEND is `sandbox` (the default) or `cdp`.

Each backend module is imported only when chosen (the CDP SDK takes seconds to import).
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp_servers.wallet.backend import WalletBackend

BACKEND_ENV = "CHIMERA_WALLET_BACKEND"
BACKENDS = ("sandbox", "cdp")


def wallet_backend_from_env(sandbox_dir: Path) -> WalletBackend:
    """The configured backend; an unknown name is a startup error, not a silent sandbox."""
    choice = (os.environ.get(BACKEND_ENV) or "sandbox").strip().lower()
    if choice == "sandbox":
        from mcp_servers.wallet.sandbox import sandbox_wallet_from_env

        return sandbox_wallet_from_env(sandbox_dir)
    if choice == "cdp":
        from mcp_servers.wallet.cdp_backend import cdp_wallet_from_env

        return cdp_wallet_from_env(sandbox_dir)
    raise ValueError(f"{BACKEND_ENV} is one of {', '.join(BACKENDS)}, not {choice!r}")
