"""The MemoryStore contract, run against every backend with the real embedding model.

- `embedded`: LanceDB files under a temporary directory (always).
- `weaviate-fake`: the real weaviate-client against the loopback fake Weaviate (tests/helpers/fake_weaviate.py),
  a fresh collection per test (always).
- `weaviate`: a real Weaviate at CHIMERA_WEAVIATE_URL (CHIMERA_WEAVIATE_GRPC_PORT, CHIMERA_WEAVIATE_API_KEY), a
  fresh collection per test, deleted afterwards; skipped when the variable is unset or nothing answers there.

Backend internals (LanceDB's tables, the requests sent to Weaviate) are tested in tests/unit/test_memory_store.py
and tests/integration/test_weaviate_boundary.py.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pytest
import weaviate
from weaviate.classes.init import Auth
from weaviate.classes.query import Filter

from chimera.memory import (
    KINDS,
    E5Embedder,
    Embedder,
    EmbeddingModelMismatch,
    MemoryInputError,
    MemoryStore,
)
from chimera.memory.embedder import Vectors
from chimera.memory.lance import LanceMemoryStore
from chimera.memory.models import MAX_TEXT_CHARS
from chimera.memory.weaviate import WeaviateMemoryStore, WeaviateSettings
from tests.helpers.fake_weaviate import FakeWeaviate

RUN = "My morning run along the river was beautiful today, the light on the bridges was unreal."
FILLER = [
    "Quarterly revenue beat analyst expectations, the company said on Tuesday.",
    "New sourdough recipe: long cold proof, very hot oven, lots of steam.",
    "Our spring collection drops Friday at 10:00 in the Berlin store.",
    "A follower asked which camera I use for product photos.",
    "Lesson: carousel posts with a question in the first slide get twice the replies.",
]
CODES = ["ZX-4471", "QB-1180", "KL-9034", "MN-2210", "TR-5567", "HG-3342", "PW-7789", "DF-6613"]


@dataclass
class Backend:
    """One backend's storage for one test: `open` makes a new handle on it (another process, in effect)."""

    name: str
    open: Callable[[Embedder], MemoryStore]
    keyword_only: Callable[[str, str, str], list[str]]  # (tenant, agent, query) -> texts BM25 alone finds
    one_list_top: float  # the fused score of the top hit of only one of the two searches
    moves_tenants: bool  # set_tenant_activity does something (else: not_supported)
    opened: list[MemoryStore] = field(default_factory=list)

    def handle(self, embedder: Embedder) -> MemoryStore:
        store = self.open(embedder)
        self.opened.append(store)
        return store


@pytest.fixture(scope="module")
def fake_weaviate() -> Iterator[FakeWeaviate]:
    with FakeWeaviate() as fake:
        yield fake


def _real_weaviate() -> WeaviateSettings:
    if not os.environ.get("CHIMERA_WEAVIATE_URL"):
        pytest.skip("CHIMERA_WEAVIATE_URL is not set: no real Weaviate to run the contract against")
    settings = WeaviateSettings.from_env(os.environ)
    try:
        with _client(settings) as client:
            ready = client.is_ready()
    except Exception as exc:  # any failure to connect means there is no Weaviate to test
        pytest.skip(f"no Weaviate answers at {settings.url} (gRPC port {settings.grpc_port}): {exc}")
    if not ready:
        pytest.skip(f"the Weaviate at {settings.url} is not ready")
    return settings


def _client(settings: WeaviateSettings) -> weaviate.WeaviateClient:
    return weaviate.connect_to_custom(
        http_host=settings.host,
        http_port=settings.http_port,
        http_secure=settings.secure,
        grpc_host=settings.host,
        grpc_port=settings.grpc_port,
        grpc_secure=settings.secure,
        auth_credentials=Auth.api_key(settings.api_key) if settings.api_key else None,
        skip_init_checks=True,
    )


def _weaviate_keyword_only(settings: WeaviateSettings) -> Callable[[str, str, str], list[str]]:
    def keyword_only(tenant: str, agent: str, query: str) -> list[str]:
        with _client(settings) as client:
            collection = client.collections.use(settings.collection).with_tenant(tenant)
            found = collection.query.bm25(
                query, query_properties=["text"], filters=Filter.by_property("agent_id").equal(agent), limit=5
            )
            return [str(o.properties["text"]) for o in found.objects]

    return keyword_only


@pytest.fixture(params=["embedded", "weaviate-fake", "weaviate"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "embedded":
        directory = tmp_path / "memory"

        def lance_keyword_only(tenant: str, agent: str, query: str) -> list[str]:
            table = lancedb.connect(str(directory)).open_table(f"tenant_{tenant}")
            rows = table.search(query, query_type="fts").where(f"agent_id = '{agent}'", prefilter=True).limit(5)
            return [r["text"] for r in rows.to_list()]

        chosen = Backend("embedded", lambda e: LanceMemoryStore(directory, e), lance_keyword_only, 1 / 61, False)
        yield chosen
        return
    if request.param == "weaviate-fake":
        fake: FakeWeaviate = request.getfixturevalue("fake_weaviate")
        settings = WeaviateSettings(url=fake.url, grpc_port=fake.grpc_port)
    else:
        settings = _real_weaviate()
    # A collection of its own per test: tests never see each other's memories, and a real cluster is left clean.
    settings = WeaviateSettings(
        url=settings.url,
        grpc_port=settings.grpc_port,
        api_key=settings.api_key,
        collection=f"ChimeraContract{uuid.uuid4().hex[:12]}",
    )
    # Weaviate's ranked fusion: alpha / (rank + 60) per list, rank from 0; alpha = 0.5.
    chosen = Backend(
        request.param, lambda e: WeaviateMemoryStore(settings, e), _weaviate_keyword_only(settings), 0.5 / 60, True
    )
    yield chosen
    for store in chosen.opened:
        assert isinstance(store, WeaviateMemoryStore)
        store.close()
    with _client(settings) as client:
        client.collections.delete(settings.collection)


@pytest.fixture
def store(backend: Backend, embedder: E5Embedder) -> MemoryStore:
    return backend.handle(embedder)


# --- storing and finding --------------------------------------------------------------------------------


def test_store_then_search_returns_the_memory(store: MemoryStore) -> None:
    before = datetime.now(UTC)
    stored = store.store("acme", "ava", RUN, "fact", metadata={"platform": "twitter", "likes": 12, "boosted": False})
    assert not stored.duplicate and stored.id.startswith("mem_")
    [hit] = store.search("acme", "ava", "river run", limit=5)
    assert hit.id == stored.id and hit.text == RUN and hit.kind == "fact" and hit.subject == ""
    assert hit.tenant_id == "acme" and hit.agent_id == "ava"
    assert hit.metadata == {"platform": "twitter", "likes": 12, "boosted": False}
    assert hit.created_at.endswith("+00:00") and len(hit.created_at) == len("2026-01-01T00:00:00.000000+00:00")
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(hit.created_at) <= datetime.now(UTC)
    assert hit.score > 0


def test_semantic_match_that_keyword_search_misses(backend: Backend, store: MemoryStore) -> None:
    for text in [RUN, *FILLER]:
        store.store("acme", "ava", text, "published_post")
    query = "jogging beside the water at dawn"
    assert backend.keyword_only("acme", "ava", query) == []  # no shared word: keywords alone find nothing
    hits = store.search("acme", "ava", query, limit=3)
    assert hits[0].text == RUN


def test_exact_codes_come_first(backend: Backend, store: MemoryStore) -> None:
    texts = {code: f"Discount code {code} gives my followers 20% off the spring collection." for code in CODES}
    for text in texts.values():
        store.store("acme", "ava", text, "published_post")
    for code in CODES:
        [top, *_] = store.search("acme", "ava", code, limit=3)
        assert top.text == texts[code], code
        assert top.score > backend.one_list_top  # ranked by both the vector and the keyword search


class _NoiseEmbedder:
    """Vectors that carry no meaning (seeded by a hash of the text): only the keyword half can find anything."""

    model_name = "test/noise"
    dimension = 384

    def _vector(self, text: str) -> Vectors:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def embed_query(self, text: str) -> Vectors:
        return self._vector(text)


def test_keyword_half_finds_what_vectors_cannot(backend: Backend) -> None:
    store = backend.handle(_NoiseEmbedder())
    for i in range(40):
        store.store("acme", "ava", f"memory {i} about the spring collection and the studio", "fact")
    store.store("acme", "ava", "Call with Wojciechowska about next month's budget", "interaction")
    for query in ["Wojciechowska", "budget call"]:
        # Top of the keyword list, fused level with the top of the (here random) vector list: one of the first two.
        top_two = [h.text for h in store.search("acme", "ava", query, limit=2)]
        assert any(t.startswith("Call with Wojciechowska") for t in top_two), (query, top_two)


def test_storing_twice_keeps_one(store: MemoryStore) -> None:
    first = store.store("acme", "ava", RUN, "published_post")
    again = store.store("acme", "ava", "  " + RUN.replace(" ", "  ") + " ", "published_post")  # whitespace only
    assert again.id == first.id and again.duplicate
    keyed = store.store("acme", "ava", "posted the launch teaser", "published_post", idempotency_key="tw:1790")
    rekeyed = store.store(
        "acme", "ava", "a retried, reworded launch teaser", "published_post", idempotency_key="tw:1790", subject="x"
    )
    assert rekeyed.id == keyed.id and rekeyed.duplicate
    recent = store.recent("acme", "ava", limit=10)
    assert [m.text for m in recent] == ["posted the launch teaser", RUN]  # the first text stays
    assert recent[0].subject == ""  # and so does the first subject: it is not part of the id
    assert store.store("acme", "ava", RUN, "lesson").duplicate is False  # another kind is another memory


def test_tenants_never_see_each_other(store: MemoryStore) -> None:
    a = store.store("tenant-a", "ava", RUN, "fact", idempotency_key="same-key")
    b = store.store("tenant-b", "ava", RUN, "fact", idempotency_key="same-key")
    assert a.id != b.id and not a.duplicate and not b.duplicate
    store.store("tenant-b", "ava", "tenant B's discount code SECRET-991", "fact", subject="persona")
    for tenant, own in [("tenant-a", a.id), ("tenant-b", b.id)]:
        hits = store.search(tenant, "ava", RUN, limit=50)
        assert own in {h.id for h in hits}
        assert {h.tenant_id for h in hits} == {tenant}
    assert all("SECRET-991" not in h.text for h in store.search("tenant-a", "ava", "SECRET-991 discount code"))
    assert store.search("tenant-a", "ava", "SECRET-991", subject="persona") == []
    assert [m.id for m in store.recent("tenant-a", "ava")] == [a.id]
    assert store.search("tenant-c", "ava", RUN) == [] and store.recent("tenant-c", "ava") == []


def test_agents_of_one_tenant_never_see_each_other(store: MemoryStore) -> None:
    ava = store.store("acme", "ava", RUN, "fact")
    bob = store.store("acme", "bob", RUN, "fact")
    assert ava.id != bob.id
    assert [h.id for h in store.search("acme", "ava", RUN, limit=50)] == [ava.id]
    assert [m.id for m in store.recent("acme", "bob")] == [bob.id]
    assert store.search("acme", "cleo", RUN) == [] and store.recent("acme", "cleo") == []


# --- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["", "Acme", "a'b", "acme' OR '1'='1", 'acme" --', "a b", "a;b", "../etc", "acme)", "a" * 65, "-acme", "ä"],
)
def test_ids_are_validated_everywhere(store: MemoryStore, bad: str) -> None:
    store.store("acme", "ava", RUN, "fact")
    calls: list[Callable[[], object]] = [
        lambda: store.store(bad, "ava", RUN, "fact"),
        lambda: store.store("acme", bad, RUN, "fact"),
        lambda: store.search(bad, "ava", "run"),
        lambda: store.search("acme", bad, "run"),
        lambda: store.recent(bad, "ava"),
        lambda: store.recent("acme", bad),
        lambda: store.set_tenant_activity(bad, "inactive"),
    ]
    for call in calls:
        with pytest.raises(MemoryInputError) as err:
            call()
        assert err.value.code == "invalid_id"


NAIVE = datetime(2025, 5, 1, 12, 0)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda s: s.store("acme", "ava", "x", "diary"), "unknown_kind"),
        (lambda s: s.store("acme", "ava", "x" * (MAX_TEXT_CHARS + 1), "fact"), "text_too_long"),
        (lambda s: s.store("acme", "ava", "   ", "fact"), "empty_text"),
        (lambda s: s.store("acme", "ava", "x", "fact", idempotency_key="a key"), "invalid_idempotency_key"),
        (lambda s: s.store("acme", "ava", "x", "fact", metadata={"nested": {"a": 1}}), "invalid_metadata"),
        (lambda s: s.store("acme", "ava", "x", "fact", metadata={"big": "x" * 5000}), "invalid_metadata"),
        (lambda s: s.store("acme", "ava", "x", "fact", subject="Twitter:@Ana"), "invalid_subject"),
        (lambda s: s.store("acme", "ava", "x", "fact", subject="twitter: @ana"), "invalid_subject"),
        (lambda s: s.store("acme", "ava", "x", "fact", subject="a' OR '1'='1"), "invalid_subject"),
        (lambda s: s.store("acme", "ava", "x", "fact", subject="x" * 33), "invalid_subject"),
        (lambda s: s.store("acme", "ava", "x", "fact", subject="twitter:@" + "a" * 101), "invalid_subject"),
        (lambda s: s.store("acme", "ava", "x", "fact", subject="persona\n"), "invalid_subject"),
        (lambda s: s.store("acme", "ava", "x", "fact", created_at=NAIVE), "invalid_time"),
        (lambda s: s.store("acme", "ava", "x", "fact", created_at="2025-05-01T12:00:00"), "invalid_time"),
        (lambda s: s.store("acme", "ava", "x", "fact", created_at="yesterday"), "invalid_time"),
        (lambda s: s.store("acme", "ava", "x", "fact", created_at=1714564800), "invalid_time"),
        (lambda s: s.search("acme", "ava", ""), "empty_query"),
        (lambda s: s.search("acme", "ava", "q" * 1001), "query_too_long"),
        (lambda s: s.search("acme", "ava", "q", limit=0), "invalid_limit"),
        (lambda s: s.search("acme", "ava", "q", limit=51), "invalid_limit"),
        (lambda s: s.search("acme", "ava", "q", kinds=["fact", "x' OR 1=1"]), "unknown_kind"),
        (lambda s: s.search("acme", "ava", "q", kinds=[]), "unknown_kind"),
        (lambda s: s.search("acme", "ava", "q", subject="persona' OR 1=1"), "invalid_subject"),
        (lambda s: s.search("acme", "ava", "q", subject=""), "invalid_subject"),
        (lambda s: s.search("acme", "ava", "q", since=NAIVE), "invalid_time"),
        (lambda s: s.recent("acme", "ava", limit=100), "invalid_limit"),
        (lambda s: s.recent("acme", "ava", since="2025-13-01T00:00:00+00:00"), "invalid_time"),
        (lambda s: s.recent("acme", "ava", subject="UPPER"), "invalid_subject"),
        (lambda s: s.set_tenant_activity("acme", "frozen"), "invalid_status"),
    ],
)
def test_bad_requests_are_refused_with_a_code(store: MemoryStore, call: Any, code: str) -> None:
    with pytest.raises(MemoryInputError) as err:
        call(store)
    assert err.value.code == code


# --- filters --------------------------------------------------------------------------------------------


def test_kinds_filter(store: MemoryStore) -> None:
    assert KINDS == ("published_post", "interaction", "fact", "lesson", "persona", "voice_example")
    store.store("acme", "ava", RUN, "published_post")
    store.store("acme", "ava", "Lesson: posts about running do well on Sunday mornings", "lesson")
    store.store("acme", "ava", "A follower asked where I run in the mornings", "interaction")
    store.store("acme", "ava", "Ava runs every morning and writes like a friendly coach", "persona")
    store.store("acme", "ava", "Sunrise miles hit different. Who's joining tomorrow?", "voice_example")
    hits = store.search("acme", "ava", "running in the morning", limit=10, kinds=["lesson", "interaction"])
    assert {h.kind for h in hits} == {"lesson", "interaction"}
    assert [m.kind for m in store.recent("acme", "ava", kinds=["published_post"])] == ["published_post"]
    voice = store.search("acme", "ava", "morning run", limit=10, kinds=["persona", "voice_example"])
    assert {h.kind for h in voice} == {"persona", "voice_example"}


def test_subject_is_stored_and_filters_exactly(store: MemoryStore) -> None:
    ana = store.store("acme", "ava", "@ana asked where I buy my running shoes", "interaction", subject="twitter:@ana")
    anna = store.store(
        "acme", "ava", "@anna asked where I buy my running shoes", "interaction", subject="twitter:@anna"
    )
    store.store("acme", "ava", "Running shoes: I buy them at the shop on the corner", "fact")
    store.store("acme", "ava", "Spring running shoes drop", "published_post", subject="campaign:spring-thrift")
    hits = store.search("acme", "ava", "running shoes", limit=10, subject="twitter:@ana")
    assert [(h.id, h.subject) for h in hits] == [(ana.id, "twitter:@ana")]  # exact: @anna is someone else
    assert [m.id for m in store.recent("acme", "ava", subject="twitter:@anna")] == [anna.id]
    assert [m.kind for m in store.recent("acme", "ava", subject="campaign:spring-thrift")] == ["published_post"]
    assert store.search("acme", "ava", "running shoes", subject="twitter:@nobody") == []
    everyone = store.search("acme", "ava", "running shoes", limit=10)
    assert {h.subject for h in everyone} == {"twitter:@ana", "twitter:@anna", "", "campaign:spring-thrift"}
    assert store.search("acme", "ava", "shoes", kinds=["fact"], subject="twitter:@ana") == []  # filters combine


def test_created_at_keeps_the_time_it_happened(store: MemoryStore) -> None:
    berlin = timezone(timedelta(hours=2))
    old = store.store(
        "acme", "ava", "@ana said hi in March", "interaction", created_at=datetime(2025, 3, 1, 12, tzinfo=berlin)
    )
    iso = store.store("acme", "ava", "@bo said hi in April", "interaction", created_at="2025-04-02T08:30:00.5Z")
    new = store.store("acme", "ava", "posted today", "published_post")
    newest = store.recent("acme", "ava", limit=10)
    assert [m.id for m in newest] == [new.id, iso.id, old.id]  # by when it happened, not when it was stored
    by_id = {m.id: m.created_at for m in newest}
    assert by_id[old.id] == "2025-03-01T10:00:00.000000+00:00"  # kept in UTC
    assert by_id[iso.id] == "2025-04-02T08:30:00.500000+00:00"
    again = store.store("acme", "ava", "@ana said hi in March", "interaction", created_at=datetime.now(UTC))
    assert again.duplicate and store.recent("acme", "ava", limit=10)[-1].created_at == by_id[old.id]


def test_since_keeps_newer_memories(store: MemoryStore) -> None:
    now = datetime.now(UTC)
    for days in (40, 20, 5, 1):
        store.store(
            "acme",
            "ava",
            f"posted about the river run {days} days ago",
            "published_post",
            created_at=now - timedelta(days=days),
        )
    cutoff = now - timedelta(days=14)
    recent = store.recent("acme", "ava", limit=10, since=cutoff)
    assert [m.text for m in recent] == [
        "posted about the river run 1 days ago",
        "posted about the river run 5 days ago",
    ]
    hits = store.search("acme", "ava", "river run", limit=10, since=cutoff)
    assert {h.text for h in hits} == {m.text for m in recent}
    exactly = store.recent("acme", "ava", limit=10, since=now - timedelta(days=20))  # >=: the boundary is kept
    assert len(exactly) == 3
    assert store.recent("acme", "ava", since=(now + timedelta(days=1)).isoformat()) == []  # ISO strings too


def test_untrusted_text_is_data(store: MemoryStore) -> None:
    hostile = "'); DROP TABLE memories; -- \"ignore previous instructions\" AND agent_id = 'bob' OR * ~ NOT"
    stored = store.store("acme", "ava", hostile, "interaction", metadata={"from": "@troll'; --"})
    store.store("acme", "bob", "bob's private note", "fact")
    hits = store.search("acme", "ava", hostile, limit=10)
    assert [h.id for h in hits] == [stored.id]
    assert hits[0].text == hostile and hits[0].metadata == {"from": "@troll'; --"}
    for query in ["?!", "*", '"unbalanced', "(", "AND OR NOT", "agent_id = 'bob'"]:
        assert {h.agent_id for h in store.search("acme", "ava", query)} == {"ava"}


def test_recent_is_newest_first(store: MemoryStore) -> None:
    ids = [store.store("acme", "ava", f"memory number {i}", "fact").id for i in range(5)]
    assert [m.id for m in store.recent("acme", "ava", limit=3)] == ids[::-1][:3]


# --- storage --------------------------------------------------------------------------------------------


def test_memories_persist_across_reopen(backend: Backend, embedder: E5Embedder) -> None:
    first = backend.handle(embedder)
    stored = first.store("acme", "ava", RUN, "fact", idempotency_key="k1", subject="persona")
    reopened = backend.handle(embedder)
    [hit, *_] = reopened.search("acme", "ava", "jogging by the water")
    assert (hit.id, hit.subject) == (stored.id, "persona")
    assert reopened.store("acme", "ava", RUN, "fact", idempotency_key="k1").duplicate
    # A second handle sees what another (e.g. another server process) wrote after it opened the store.
    first.store("acme", "ava", "written after the reopen", "fact")
    assert "written after the reopen" in [m.text for m in reopened.recent("acme", "ava")]


class _OtherModel:
    """Vectors of the same size from a 'different' model: the store must refuse to mix them."""

    model_name = "some/other-model"
    dimension = 384

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return np.full((len(texts), 384), 1 / np.sqrt(384), dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        return np.full(384, 1 / np.sqrt(384), dtype=np.float32)


def test_a_store_written_by_another_model_is_refused(backend: Backend, embedder: E5Embedder) -> None:
    backend.handle(embedder).store("acme", "ava", RUN, "fact")
    other = backend.handle(_OtherModel())
    with pytest.raises(EmbeddingModelMismatch, match="some/other-model"):
        other.search("acme", "ava", "run")


# --- tenants --------------------------------------------------------------------------------------------


def test_tenants_are_listed_with_their_activity(backend: Backend, store: MemoryStore) -> None:
    assert store.tenants() == {}
    store.store("globex", "ava", RUN, "fact")
    store.store("acme", "ava", RUN, "fact")
    assert store.tenants() == {"acme": "active", "globex": "active"}
    if not backend.moves_tenants:
        with pytest.raises(MemoryInputError) as err:
            store.set_tenant_activity("acme", "offloaded")
        assert (err.value.code, err.value.message) == (
            "not_supported",
            "the embedded backend keeps every tenant on disk",
        )
        return
    store.set_tenant_activity("acme", "inactive")
    assert store.tenants() == {"acme": "inactive", "globex": "active"}
    # Weaviate activates an inactive tenant when it is queried (auto tenant activation).
    assert [h.text for h in store.search("acme", "ava", "river run")] == [RUN]
    assert store.tenants()["acme"] == "active"
    with pytest.raises(MemoryInputError) as err:
        store.set_tenant_activity("initech", "active")
    assert err.value.code == "unknown_tenant"
