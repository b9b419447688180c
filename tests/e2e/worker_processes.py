"""The two halves of a kill test: the Worker role in a child `chimera worker` process (its own process group, so a
kill takes its MCP servers too, as a crashed pod), and the other roles in the test process, both on one dev server
and one state dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from temporalio.testing import WorkflowEnvironment

from chimera.settings import McpServerConfig, Settings

ROOT = Path(__file__).resolve().parents[2]
CHIMERA = str(Path(sys.executable).parent / "chimera")


def split_roles(
    env_server: WorkflowEnvironment, tmp_path: Path, servers: dict[str, McpServerConfig]
) -> tuple[Settings, dict[str, str]]:
    """The in-process settings and the child's environment: the same dev server, state dir and allowlist."""
    state = tmp_path / "state"
    config = yaml.safe_load((ROOT / "temporal.yaml").read_text())
    config["address"] = env_server.client.service_client.config.target_host
    (tmp_path / "temporal.yaml").write_text(yaml.safe_dump(config))
    settings = Settings(state_dir=state, temporal_config=tmp_path / "temporal.yaml", mcp_servers=servers)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "CHIMERA_"))}
    child_env.update(
        CHIMERA_STATE_DIR=str(state),
        CHIMERA_TEMPORAL_CONFIG=str(tmp_path / "temporal.yaml"),
        CHIMERA_MCP_SERVERS=json.dumps({k: v.model_dump() for k, v in servers.items()}),
    )
    return settings, child_env


def worker_process(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [CHIMERA, "worker", "--role", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL the process group of a worker still running (no graceful shutdown: a crash)."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
