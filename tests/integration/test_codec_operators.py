"""The codec server as `chimera codec serve` runs it: it decrypts only for fleet operators whose bearer token
(`chimera user token`) checks out against the real user directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from chimera.access.tokens import directory_authenticator, issue
from chimera.access.users import add_user, revoke
from chimera.codec.server import build_app, serving
from chimera.db import StateStore
from schemas.access import FLEET_SCOPE
from tests.integration.test_codec_server import CODEC, UI, bearer, encrypted_body


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore(f"sqlite:///{tmp_path / 'chimera.db'}")
    s.ensure_schema()
    return s


@pytest.fixture
async def server(store: StateStore) -> AsyncIterator[str]:
    async with serving(
        build_app(CODEC, directory_authenticator(store), cors_origins=[UI]), host="127.0.0.1", port=0
    ) as url:
        yield url


async def test_only_an_active_fleet_operator_sees_plaintext(server: str, store: StateStore) -> None:
    root = add_user(store, "root", FLEET_SCOPE, "administrator", by=None, bootstrap=True)
    ops = add_user(store, "ops-anna", FLEET_SCOPE, "content_reviewer", by=root)
    tenant_admin = add_user(store, "acme-boss", "acme", "administrator", by=root)
    body, _ = await encrypted_body("the brief of a private campaign")

    async def decode(token: str) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(f"{server}/decode", content=body, headers=bearer(token))

    allowed = await decode(issue(ops, timedelta(minutes=5)))
    tenant = await decode(issue(tenant_admin, timedelta(minutes=5)))  # a history holds every tenant's payloads
    stale = await decode(issue(ops, timedelta(seconds=1), now=datetime(2026, 1, 1, tzinfo=UTC)))
    revoke(store, "ops-anna", by=root)
    revoked = await decode(issue(ops, timedelta(minutes=5)))
    assert allowed.status_code == 200, allowed.text
    assert b"private campaign" in json_format.Parse(allowed.text, Payloads()).payloads[0].data
    for refused in (tenant, stale, revoked):
        assert refused.status_code == 401 and "payloads" not in refused.json()
