"""The production memory backend: Weaviate through weaviate-client v4, one Weaviate tenant per Chimera tenant.

One collection (`ChimeraMemory` by default) with multi-tenancy on; a Chimera tenant's memories are its own
Weaviate tenant (tenant name = the validated tenant id, a slug Weaviate accepts as is), so its objects live in
their own shard and can be deactivated or offloaded to cold storage on their own. Every query also filters
on agent_id. Vectors are Chimera's own (the Embedder), so the collection has no vectorizer module; its
description records the embedding model, and a collection labelled with another model is refused.

Queries map one to one: `search` is Weaviate's hybrid query (BM25 over `text` and cosine over the vectors,
fused by rank, as the embedded backend does), `recent` a filtered fetch sorted by created_at. Object UUIDs are
uuid5 of the `mem_` id, so storing a memory again is a no-op. The client is created on first use, one per
store, and is safe to share between threads (httpx and a gRPC channel underneath).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import Filter, FilterReturn, HybridFusion, MetadataQuery, Sort
from weaviate.classes.tenants import Tenant, TenantActivityStatus
from weaviate.collections import Collection
from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateBaseError
from weaviate.util import generate_uuid5

from chimera.memory.embedder import Embedder
from chimera.memory.models import (
    EmbeddingModelMismatch,
    Memory,
    MemoryHit,
    MemoryInputError,
    MemoryUnavailable,
    MetadataValue,
    StoreResult,
    check_id,
    check_kind,
    check_kinds,
    check_limit,
    check_metadata,
    check_query,
    check_since,
    check_subject,
    check_subject_filter,
    check_tenant_status,
    check_text,
    check_time,
    iso_utc,
    memory_id,
    now_iso,
)

log = logging.getLogger(__name__)

URL_ENV = "CHIMERA_WEAVIATE_URL"
GRPC_PORT_ENV = "CHIMERA_WEAVIATE_GRPC_PORT"
API_KEY_ENV = "CHIMERA_WEAVIATE_API_KEY"
COLLECTION_ENV = "CHIMERA_WEAVIATE_COLLECTION"
DEFAULT_COLLECTION = "ChimeraMemory"
DEFAULT_GRPC_PORT = 50051
COLLECTION_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9_]{0,99}$")  # Weaviate class names start upper case
DESCRIPTION_PREFIX = "Chimera long-term memory "

# The hybrid query: keyword and vector halves weighted equally and fused by rank (RRF), as LanceDB does.
ALPHA = 0.5
# Ask for more than the final cut, as the embedded backend does, so the fusion sees enough of both lists.
CANDIDATES_PER_RESULT = 4
MIN_CANDIDATES = 20
RETURNED = ["agent_id", "kind", "subject", "text", "metadata", "created_at", "memory_id"]

# Weaviate's tenant activity statuses as Chimera names them; the transient ones count as where they are going.
_STATUS_OF: dict[TenantActivityStatus, str] = {
    TenantActivityStatus.ACTIVE: "active",
    TenantActivityStatus.HOT: "active",
    TenantActivityStatus.ONLOADING: "active",
    TenantActivityStatus.INACTIVE: "inactive",
    TenantActivityStatus.COLD: "inactive",
    TenantActivityStatus.OFFLOADED: "offloaded",
    TenantActivityStatus.FROZEN: "offloaded",
    TenantActivityStatus.OFFLOADING: "offloaded",
}
_ACTIVITY_FOR = {
    "active": TenantActivityStatus.ACTIVE,
    "inactive": TenantActivityStatus.INACTIVE,
    "offloaded": TenantActivityStatus.OFFLOADED,
}


@dataclass(frozen=True)
class WeaviateSettings:
    """Where Weaviate is. The API key is kept out of repr, so it never reaches a log line."""

    url: str
    grpc_port: int = DEFAULT_GRPC_PORT
    api_key: str | None = field(default=None, repr=False)
    collection: str = DEFAULT_COLLECTION
    timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"{URL_ENV}={self.url!r}: expected http(s)://HOST[:PORT], e.g. http://127.0.0.1:8080")
        if parts.username or parts.password or parts.query:
            raise ValueError(f"{URL_ENV}: no credentials or query in the URL; the API key goes in {API_KEY_ENV}")
        if not 1 <= self.grpc_port <= 65535:
            raise ValueError(f"{GRPC_PORT_ENV}={self.grpc_port}: not a port")
        if self.grpc_port == self.http_port:
            raise ValueError(f"{GRPC_PORT_ENV}={self.grpc_port}: gRPC needs a port of its own, not {URL_ENV}'s")
        if not COLLECTION_PATTERN.fullmatch(self.collection):
            raise ValueError(f"{COLLECTION_ENV}={self.collection!r}: must match {COLLECTION_PATTERN.pattern}")

    @property
    def secure(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host is not None  # checked in __post_init__
        return host

    @property
    def http_port(self) -> int:
        port = urlsplit(self.url).port
        return port if port is not None else (443 if self.secure else 80)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WeaviateSettings:
        url = env.get(URL_ENV, "").strip()
        if not url:
            raise ValueError(
                f"the weaviate memory backend needs {URL_ENV} (e.g. http://127.0.0.1:8080); "
                "or set CHIMERA_MEMORY_BACKEND=embedded"
            )
        port_text = env.get(GRPC_PORT_ENV, "").strip() or str(DEFAULT_GRPC_PORT)
        if not port_text.isdigit():
            raise ValueError(f"{GRPC_PORT_ENV}={port_text!r}: not a port")
        return cls(
            url=url,
            grpc_port=int(port_text),
            api_key=env.get(API_KEY_ENV) or None,
            collection=env.get(COLLECTION_ENV, "").strip() or DEFAULT_COLLECTION,
        )


def description_for(embedder: Embedder) -> str:
    """The collection's description: says which model made its vectors, read back to refuse a mismatch."""
    return DESCRIPTION_PREFIX + json.dumps({"embedding_model": embedder.model_name, "dimension": embedder.dimension})


def _labelled_model(description: str | None) -> str | None:
    if not description or not description.startswith(DESCRIPTION_PREFIX):
        return None
    try:
        label = json.loads(description.removeprefix(DESCRIPTION_PREFIX))
    except ValueError:
        return None
    model = label.get("embedding_model") if isinstance(label, dict) else None
    return model if isinstance(model, str) else None


def _properties() -> list[Property]:
    def keyword(name: str) -> Property:
        # A whole-value token for exact filters; never part of the keyword search or of any vectorization.
        return Property(
            name=name,
            data_type=DataType.TEXT,
            tokenization=Tokenization.FIELD,
            index_filterable=True,
            index_searchable=False,
            skip_vectorization=True,
        )

    return [
        keyword("agent_id"),
        keyword("kind"),
        keyword("subject"),
        keyword("memory_id"),
        Property(
            name="text",
            data_type=DataType.TEXT,
            tokenization=Tokenization.WORD,
            index_searchable=True,
            index_filterable=False,
            skip_vectorization=True,
        ),
        Property(
            name="metadata",  # a JSON object, returned verbatim, never searched
            data_type=DataType.TEXT,
            index_filterable=False,
            index_searchable=False,
            skip_vectorization=True,
        ),
        Property(name="created_at", data_type=DataType.DATE, index_filterable=True, index_range_filters=True),
    ]


class WeaviateMemoryStore:
    """A MemoryStore on Weaviate. One client per store, created on first use; safe to share between threads.
    Close it (or use it as a context manager) to release the connection."""

    def __init__(self, settings: WeaviateSettings, embedder: Embedder) -> None:
        self.settings = settings
        self._embedder = embedder
        self._client: weaviate.WeaviateClient | None = None
        self._collection: Collection[Any, Any] | None = None
        self._tenants: set[str] = set()  # known to exist in Weaviate (created here or seen)
        self._lock = threading.Lock()

    # --- the MemoryStore protocol ----------------------------------------------------------------

    def store(
        self,
        tenant_id: str,
        agent_id: str,
        text: str,
        kind: str,
        *,
        idempotency_key: str | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        subject: str | None = None,
        created_at: datetime | str | None = None,
    ) -> StoreResult:
        check_id(tenant_id, "tenant_id")
        check_id(agent_id, "agent_id")
        check_text(text)
        valid_kind = check_kind(kind)
        meta = check_metadata(metadata)
        valid_subject = check_subject(subject)
        when = now_iso() if created_at is None else check_time(created_at, "created_at")
        mid = memory_id(tenant_id, agent_id, valid_kind, text, idempotency_key)
        uuid = generate_uuid5(mid)
        with self._answers(tenant_id):
            tenant = self._for_tenant(tenant_id, create=True)
            assert tenant is not None
            if tenant.data.exists(uuid):
                return StoreResult(id=mid, duplicate=True)
            properties: dict[str, Any] = {
                "agent_id": agent_id,
                "kind": valid_kind,
                "subject": valid_subject,
                "text": text,
                "metadata": json.dumps(meta, sort_keys=True),
                "created_at": when,
                "memory_id": mid,
            }
            vector = self._embedder.embed_documents([text])[0].tolist()
            try:
                tenant.data.insert(properties=properties, uuid=uuid, vector=vector)
            except UnexpectedStatusCodeError as exc:
                # Weaviate refuses an existing UUID (422): a concurrent store of the same memory got there first.
                if exc.status_code == 422 and tenant.data.exists(uuid):
                    return StoreResult(id=mid, duplicate=True)
                raise
        return StoreResult(id=mid, duplicate=False)

    def search(
        self,
        tenant_id: str,
        agent_id: str,
        query: str,
        limit: int = 5,
        kinds: Sequence[str] | None = None,
        *,
        subject: str | None = None,
        since: datetime | str | None = None,
    ) -> list[MemoryHit]:
        filters = self._filters(tenant_id, agent_id, kinds, subject, since)
        check_query(query)
        check_limit(limit)
        with self._answers(tenant_id):
            tenant = self._for_tenant(tenant_id, create=False)
            if tenant is None:
                return []
            found = tenant.query.hybrid(
                query=query,  # BM25 takes it as plain terms: operators and quotes in it are just words
                vector=self._embedder.embed_query(query).tolist(),
                query_properties=["text"],
                alpha=ALPHA,
                fusion_type=HybridFusion.RANKED,
                filters=filters,
                limit=max(MIN_CANDIDATES, limit * CANDIDATES_PER_RESULT),
                return_metadata=MetadataQuery(score=True),
                return_properties=RETURNED,
            )
        hits: list[MemoryHit] = []
        for obj in found.objects[:limit]:
            score = obj.metadata.score if obj.metadata.score is not None else 0.0
            hits.append(MemoryHit(**self._memory_fields(tenant_id, obj.properties), score=round(float(score), 6)))
        return hits

    def recent(
        self,
        tenant_id: str,
        agent_id: str,
        limit: int = 10,
        kinds: Sequence[str] | None = None,
        *,
        subject: str | None = None,
        since: datetime | str | None = None,
    ) -> list[Memory]:
        filters = self._filters(tenant_id, agent_id, kinds, subject, since)
        check_limit(limit)
        with self._answers(tenant_id):
            tenant = self._for_tenant(tenant_id, create=False)
            if tenant is None:
                return []
            found = tenant.query.fetch_objects(
                filters=filters,
                sort=Sort.by_property("created_at", ascending=False).by_property("memory_id", ascending=True),
                limit=limit,
                return_properties=RETURNED,
            )
        return [Memory(**self._memory_fields(tenant_id, obj.properties)) for obj in found.objects]

    def tenants(self) -> dict[str, str]:
        """Every Weaviate tenant of the collection and its activity, as active / inactive / offloaded."""
        with self._answers():
            found = self._ready().tenants.get()
        return {name: _STATUS_OF.get(t.activity_status, "inactive") for name, t in sorted(found.items())}

    def set_tenant_activity(self, tenant_id: str, status: str) -> None:
        """ACTIVE serves queries; INACTIVE keeps the shard on local disk, unloaded; OFFLOADED moves it to cold
        storage (the server's offload-s3 module). What Weaviate's configuration cannot do is `refused`."""
        check_id(tenant_id, "tenant_id")
        wanted = check_tenant_status(status)
        with self._answers():
            collection = self._ready()
            if not collection.tenants.exists(tenant_id):
                raise MemoryInputError("unknown_tenant", f"{self.settings.collection} has no tenant {tenant_id}")
            try:
                collection.tenants.update(Tenant(name=tenant_id, activity_status=_ACTIVITY_FOR[wanted]))
            except UnexpectedStatusCodeError as exc:
                if 400 <= exc.status_code < 500 and exc.status_code not in (408, 429):
                    # e.g. offloading without the offload-s3 module: a configuration to fix, not a retry
                    raise MemoryInputError("refused", f"weaviate refused to make {tenant_id} {wanted}: {exc}") from exc
                raise
            log.info("memory tenant %s set to %s in %s", tenant_id, wanted, self.settings.collection)

    # --- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client, self._collection = None, None
            self._tenants.clear()

    def __enter__(self) -> WeaviateMemoryStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _filters(
        tenant_id: str,
        agent_id: str,
        kinds: Sequence[str] | None,
        subject: str | None,
        since: datetime | str | None,
    ) -> FilterReturn:
        """Validated before anything is sent: the agent always, then kinds, subject and time if asked."""
        check_id(tenant_id, "tenant_id")
        where: FilterReturn = Filter.by_property("agent_id").equal(check_id(agent_id, "agent_id"))
        valid_kinds = check_kinds(kinds)
        if valid_kinds:
            where = where & Filter.by_property("kind").contains_any(list(valid_kinds))
        valid_subject = check_subject_filter(subject)
        if valid_subject is not None:
            where = where & Filter.by_property("subject").equal(valid_subject)
        after = check_since(since)
        if after is not None:
            where = where & Filter.by_property("created_at").greater_or_equal(datetime.fromisoformat(after))
        return where

    @staticmethod
    def _memory_fields(tenant_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        created = props["created_at"]
        return {
            "id": props["memory_id"],
            "tenant_id": tenant_id,  # the Weaviate tenant the query named: nothing else can answer
            "agent_id": props["agent_id"],
            "kind": props["kind"],
            "subject": props.get("subject") or "",
            "text": props["text"],
            "metadata": json.loads(props["metadata"]),
            "created_at": iso_utc(created) if isinstance(created, datetime) else check_time(created, "created_at"),
        }

    def _ready(self) -> Collection[Any, Any]:
        """The collection, connecting and creating (or checking) it on first use."""
        with self._lock:
            if self._collection is None:
                client = self._client or self._connect()
                self._client = client
                self._collection = self._ensure_collection(client)
            return self._collection

    def _connect(self) -> weaviate.WeaviateClient:
        s = self.settings
        timeout = Timeout(init=min(s.timeout_seconds, 10.0), query=s.timeout_seconds, insert=s.timeout_seconds)
        # skip_init_checks: the client would otherwise ask pypi.org for its latest version on every start (no
        # internet in production either) and look up OIDC; it still reads /v1/meta and checks the server version.
        client = weaviate.connect_to_custom(
            http_host=s.host,
            http_port=s.http_port,
            http_secure=s.secure,
            grpc_host=s.host,
            grpc_port=s.grpc_port,
            grpc_secure=s.secure,
            auth_credentials=Auth.api_key(s.api_key) if s.api_key else None,
            additional_config=AdditionalConfig(timeout=timeout),
            skip_init_checks=True,
        )
        if not client.is_ready():
            client.close()
            raise MemoryUnavailable(f"weaviate at {s.url} is not ready")
        return client

    def _ensure_collection(self, client: weaviate.WeaviateClient) -> Collection[Any, Any]:
        name = self.settings.collection
        if not client.collections.exists(name):
            try:
                client.collections.create(
                    name,
                    description=description_for(self._embedder),
                    properties=_properties(),
                    # Self-provided vectors (Chimera's Embedder), an exact flat index: an agent's memories are
                    # thousands, and a flat index lives on disk, not in RAM, for every tenant.
                    vector_config=Configure.Vectors.self_provided(
                        vector_index_config=Configure.VectorIndex.flat(distance_metric=VectorDistances.COSINE)
                    ),
                    multi_tenancy_config=Configure.multi_tenancy(
                        enabled=True, auto_tenant_creation=True, auto_tenant_activation=True
                    ),
                )
                log.info("created weaviate collection %s", name)
            except UnexpectedStatusCodeError as exc:
                if exc.status_code != 422 or not client.collections.exists(name):  # 422: another process made it
                    raise
        collection = client.collections.use(name)
        config = collection.config.get()
        stored = _labelled_model(config.description)
        if stored != self._embedder.model_name:
            raise EmbeddingModelMismatch(
                f"weaviate collection {name} holds {stored or 'unlabelled'} vectors; this store embeds with "
                f"{self._embedder.model_name}. Re-embed the memories or set {COLLECTION_ENV} to another collection."
            )
        if not config.multi_tenancy_config.enabled:
            raise EmbeddingModelMismatch(f"weaviate collection {name} is not multi-tenant: not a Chimera memory store")
        return collection

    def _for_tenant(self, tenant_id: str, *, create: bool) -> Collection[Any, Any] | None:
        """The collection bound to the tenant; None for reads of a tenant that has no memories yet."""
        collection = self._ready()
        if tenant_id not in self._tenants:
            if not collection.tenants.exists(tenant_id):
                if not create:
                    return None
                try:
                    collection.tenants.create(Tenant(name=tenant_id))
                except UnexpectedStatusCodeError as exc:  # created by another process meanwhile
                    if exc.status_code != 422 or not collection.tenants.exists(tenant_id):
                        raise
            with self._lock:
                self._tenants.add(tenant_id)
        return collection.with_tenant(tenant_id)

    @contextmanager
    def _answers(self, tenant_id: str | None = None) -> Iterator[None]:
        """Weaviate's failures become MemoryUnavailable (retry later); an offloaded tenant is onloaded first."""
        try:
            yield
        except (MemoryInputError, EmbeddingModelMismatch, MemoryUnavailable):
            raise
        except WeaviateBaseError as exc:
            if tenant_id is not None and self._collection is not None and self._onloading(tenant_id):
                raise MemoryUnavailable(
                    f"tenant {tenant_id}'s memories are offloaded; they are being loaded back: retry in a minute"
                ) from exc
            raise MemoryUnavailable(f"weaviate at {self.settings.url}: {type(exc).__name__}: {exc}") from exc

    def _onloading(self, tenant_id: str) -> bool:
        """After a failed call: if the tenant is offloaded (auto-activation wakes inactive tenants only), ask
        Weaviate to load it back. True when it is offloaded or on its way back."""
        try:
            collection = self._ready()
            tenant = collection.tenants.get_by_name(tenant_id)
            if tenant is None:
                return False
            if tenant.activity_status in (TenantActivityStatus.OFFLOADED, TenantActivityStatus.FROZEN):
                collection.tenants.update(Tenant(name=tenant_id, activity_status=TenantActivityStatus.ACTIVE))
                log.info("memory tenant %s was offloaded: onloading it", tenant_id)
                return True
            return tenant.activity_status in (TenantActivityStatus.ONLOADING, TenantActivityStatus.OFFLOADING)
        except WeaviateBaseError:
            return False
