"""The sandbox twitter MCP server, except that after accepting a post it hangs while a flag file exists.

It plays a platform that accepted the post but whose answer never reached the worker, so a test can kill the
worker at exactly that moment. Same tools and definitions as mcp_servers.twitter, so the same pin applies.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mcp_servers.common import sandbox_dir_from_env
from mcp_servers.social.sandbox import SandboxPlatform
from mcp_servers.social.server import build_server

HANG_FILE_ENV = "CHIMERA_TEST_HANG_FILE"


class HangingPlatform(SandboxPlatform):
    def post(self, text: str, idempotency_key: str, media_id: str | None = None) -> dict[str, Any]:
        receipt = super().post(text, idempotency_key, media_id)  # committed: the platform has the post
        flag = Path(os.environ[HANG_FILE_ENV])
        while flag.exists():
            time.sleep(0.05)
        return receipt


if __name__ == "__main__":
    build_server("twitter", HangingPlatform(sandbox_dir_from_env(), "twitter")).run()
