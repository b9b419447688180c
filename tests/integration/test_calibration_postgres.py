"""The learning-feedback behaviours of tests/unit/test_calibration_store.py, rerun on PostgreSQL as the application
role (fixtures from test_store_postgres.py: a fresh migrated schema per test). The isolation matrix of
test_rls_postgres.py covers band_calibrations too."""

from __future__ import annotations

import pytest

from tests.integration.test_store_postgres import (  # noqa: F401  # fixtures, used by name
    PgDatabase,
    pg,
    pg_available,
)
from tests.unit.test_calibration_store import *  # noqa: F403  # the shared behaviours, collected again here


@pytest.fixture
def store_url(pg: PgDatabase) -> str:  # noqa: F811  # replaces the SQLite fixture of the shared tests
    return pg.app_url
