"""Worker versioning from settings: a deployment name and build id make every worker a deployment version;
without them workers run unversioned, as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion

from chimera.settings import Settings
from workers.roles import deployment_config


@pytest.fixture(autouse=True)
def unversioned_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHIMERA_WORKER_DEPLOYMENT_NAME", raising=False)
    monkeypatch.delenv("CHIMERA_WORKER_BUILD_ID", raising=False)


def test_unversioned_without_settings(tmp_path: Path) -> None:
    assert deployment_config(Settings(state_dir=tmp_path)) is None


def test_versioned_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIMERA_WORKER_DEPLOYMENT_NAME", "chimera")
    monkeypatch.setenv("CHIMERA_WORKER_BUILD_ID", "0.1.0")
    config = deployment_config(Settings(state_dir=tmp_path))
    assert config is not None
    assert config.version == WorkerDeploymentVersion(deployment_name="chimera", build_id="0.1.0")
    assert config.use_worker_versioning
    # Campaigns run for weeks: they must move to new builds, not stay pinned to one being retired.
    assert config.default_versioning_behavior == VersioningBehavior.AUTO_UPGRADE


@pytest.mark.parametrize(
    "fields",
    [
        {"worker_deployment_name": "chimera"},
        {"worker_build_id": "0.1.0"},
        {"worker_deployment_name": "chimera.prod", "worker_build_id": "0.1.0"},  # the version string's separator
        {"worker_deployment_name": "chimera", "worker_build_id": ""},
    ],
)
def test_half_or_malformed_versioning_is_refused(tmp_path: Path, fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Settings(state_dir=tmp_path, **fields)  # type: ignore[arg-type]
