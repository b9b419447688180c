"""The embedded backend's own behaviour (LanceDB tables, compaction, the subject migration) and the factory that
picks a backend. What every backend does is tests/unit/test_memory_contract.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lancedb
import pyarrow as pa
import pytest
from lancedb.index import FTS

from chimera.memory import E5Embedder, memory_backend, memory_dir_from_env, memory_store_from_env
from chimera.memory import lance as lance_module
from chimera.memory.lance import LanceMemoryStore
from chimera.memory.weaviate import WeaviateMemoryStore

RUN = "My morning run along the river was beautiful today, the light on the bridges was unreal."
CODES = ["ZX-4471", "QB-1180", "KL-9034", "MN-2210", "TR-5567", "HG-3342", "PW-7789", "DF-6613"]


@pytest.fixture
def store(tmp_path: Path, embedder: E5Embedder) -> LanceMemoryStore:
    return LanceMemoryStore(tmp_path / "memory", embedder)


def test_compaction_keeps_search_working(store: LanceMemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lance_module, "COMPACT_EVERY_VERSIONS", 3)
    for code in CODES:
        store.store("acme", "ava", f"code {code} for the spring sale", "fact")
    for code in CODES:
        assert code in store.search("acme", "ava", code)[0].text
    assert len(store.recent("acme", "ava", limit=50)) == len(CODES)


def test_metadata_and_subject_are_columns(store: LanceMemoryStore) -> None:
    store.store("acme", "ava", RUN, "fact", metadata={"url": "https://x.example/p/1"}, subject="campaign:spring")
    table = lancedb.connect(str(store.directory)).open_table("tenant_acme")
    [row] = table.search().select(["metadata", "subject", "tenant_id"]).limit(1).to_list()
    assert json.loads(row["metadata"]) == {"url": "https://x.example/p/1"}
    assert (row["subject"], row["tenant_id"]) == ("campaign:spring", "acme")


def _old_table(directory: Path, embedder: E5Embedder) -> None:
    """A tenant table as the store wrote it before memories had a subject (columns, FTS index, model label)."""
    schema = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("tenant_id", pa.string(), nullable=False),
            pa.field("agent_id", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("metadata", pa.string(), nullable=False),
            pa.field("created_at", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), embedder.dimension), nullable=False),
        ],
        metadata={"embedding_model": embedder.model_name},
    )
    table = lancedb.connect(str(directory)).create_table("tenant_acme", schema=schema)
    texts = [RUN, "Lesson: questions in captions get replies"]
    vectors = embedder.embed_documents(texts)
    table.add(
        [
            {
                "id": f"mem_old{i}",
                "tenant_id": "acme",
                "agent_id": "ava",
                "kind": "fact",
                "text": text,
                "metadata": json.dumps({"n": i}),
                "created_at": (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=i)).isoformat(timespec="microseconds"),
                "vector": vectors[i].tolist(),
            }
            for i, text in enumerate(texts)
        ]
    )
    table.create_index("text", config=FTS(), replace=True)


def test_a_table_written_before_subjects_gets_the_column(tmp_path: Path, embedder: E5Embedder) -> None:
    directory = tmp_path / "memory"
    _old_table(directory, embedder)
    assert "subject" not in lancedb.connect(str(directory)).open_table("tenant_acme").schema.names
    store = LanceMemoryStore(directory, embedder)
    [hit, *_] = store.search("acme", "ava", "jogging by the water")  # opening the table migrates it
    assert (hit.id, hit.subject, hit.metadata) == ("mem_old0", "", {"n": 0})
    table = lancedb.connect(str(directory)).open_table("tenant_acme")
    assert "subject" in table.schema.names and table.count_rows() == 2  # the data is kept
    assert (table.schema.metadata or {})[b"embedding_model"] == embedder.model_name.encode()
    new = store.store("acme", "ava", "@ana asked about the river route", "interaction", subject="twitter:@ana")
    assert [m.id for m in store.recent("acme", "ava", subject="twitter:@ana")] == [new.id]
    assert [m.id for m in store.recent("acme", "ava")] == [new.id, "mem_old1", "mem_old0"]
    assert store.search("acme", "ava", "captions", limit=1)[0].id == "mem_old1"  # the old full-text index works
    # Another handle opening the migrated table (or migrating it at the same moment) is fine.
    assert LanceMemoryStore(directory, embedder).recent("acme", "ava", limit=1)[0].id == new.id


def test_tenants_are_the_tables(store: LanceMemoryStore) -> None:
    assert store.tenants() == {}
    for tenant in ("globex", "acme", "initech"):
        store.store(tenant, "ava", RUN, "fact")
    scratch = pa.schema([pa.field("x", pa.int32())])
    lancedb.connect(str(store.directory)).create_table("scratch", schema=scratch)  # a table, not a tenant's
    assert store.tenants() == {"acme": "active", "globex": "active", "initech": "active"}


def test_store_location_from_env(tmp_path: Path, embedder: E5Embedder) -> None:
    assert memory_dir_from_env({"CHIMERA_MEMORY_DIR": "/x/mem", "CHIMERA_SANDBOX_DIR": "/s/sandbox"}) == Path("/x/mem")
    assert memory_dir_from_env({"CHIMERA_SANDBOX_DIR": "/state/sandbox"}) == Path("/state/memory")
    assert memory_dir_from_env({"CHIMERA_STATE_DIR": "/st"}) == Path("/st/memory")
    assert memory_dir_from_env({}) == Path(".chimera/memory")
    store = memory_store_from_env({"CHIMERA_MEMORY_DIR": str(tmp_path / "m")}, embedder)
    store.store("acme", "ava", RUN, "fact")
    assert (tmp_path / "m" / "tenant_acme.lance").is_dir()


def test_the_backend_comes_from_the_environment(tmp_path: Path, embedder: E5Embedder) -> None:
    url = {"CHIMERA_WEAVIATE_URL": "http://127.0.0.1:8080"}
    assert memory_backend({}) == "embedded"
    assert memory_backend(url) == "weaviate"  # the URL alone picks Weaviate
    assert memory_backend({**url, "CHIMERA_MEMORY_BACKEND": "embedded"}) == "embedded"  # an explicit choice wins
    weaviate_store = memory_store_from_env({**url, "CHIMERA_WEAVIATE_GRPC_PORT": "50052"}, embedder)
    assert isinstance(weaviate_store, WeaviateMemoryStore)  # connects on first use, not here
    assert (weaviate_store.settings.host, weaviate_store.settings.http_port) == ("127.0.0.1", 8080)
    assert weaviate_store.settings.grpc_port == 50052 and not weaviate_store.settings.secure
    embedded = memory_store_from_env({**url, "CHIMERA_MEMORY_BACKEND": "embedded", "CHIMERA_MEMORY_DIR": str(tmp_path)})
    assert isinstance(embedded, LanceMemoryStore)
    with pytest.raises(ValueError, match="known backends are embedded, weaviate"):
        memory_store_from_env({"CHIMERA_MEMORY_BACKEND": "pinecone"}, embedder)
    with pytest.raises(ValueError, match="needs CHIMERA_WEAVIATE_URL"):
        memory_store_from_env({"CHIMERA_MEMORY_BACKEND": "weaviate"}, embedder)
    bad: list[tuple[dict[str, str], str]] = [
        ({"CHIMERA_WEAVIATE_URL": "127.0.0.1:8080"}, "expected http"),
        ({"CHIMERA_WEAVIATE_URL": "http://u:p@weaviate:8080"}, "no credentials"),
        ({"CHIMERA_WEAVIATE_URL": "http://weaviate:8080/v1"}, "expected http"),
        ({**url, "CHIMERA_WEAVIATE_GRPC_PORT": "grpc"}, "not a port"),
        ({**url, "CHIMERA_WEAVIATE_GRPC_PORT": "70000"}, "not a port"),
        ({**url, "CHIMERA_WEAVIATE_COLLECTION": "memory"}, "CHIMERA_WEAVIATE_COLLECTION"),
    ]
    for env, message in bad:
        with pytest.raises(ValueError, match=message):
            memory_store_from_env(env, embedder)
