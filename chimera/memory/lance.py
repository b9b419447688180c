"""The embedded memory backend: LanceDB files under one directory, hybrid search, no server.

Layout: one table per Chimera tenant (`tenant_<tenant_id>`), the same partitioning as a Weaviate tenant, and
every query also filters on tenant_id and agent_id, so a row of another tenant or agent can never be returned
even if a table were shared. Ids, subjects and times in filters are validated (chimera.memory.models), never raw
input. Tables written before memories had a subject get the column (value '') when first opened.

Search is hybrid: a vector search (cosine over E5 embeddings, exact, no ANN index: an agent's memories are
thousands, not millions) and a full-text BM25 search over the text, fused by reciprocal rank fusion (k=60).
Meaning finds "jogging by the water" for "morning run along the river"; words find a discount code or a
handle that embeddings blur.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa
from lancedb.index import FTS
from lancedb.rerankers import RRFReranker
from lancedb.table import Table

from chimera.memory.embedder import Embedder
from chimera.memory.models import (
    EmbeddingModelMismatch,
    Memory,
    MemoryHit,
    MemoryInputError,
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
    memory_id,
    now_iso,
)

__all__ = ["EmbeddingModelMismatch", "LanceMemoryStore"]

COLUMNS = ["id", "tenant_id", "agent_id", "kind", "subject", "text", "metadata", "created_at"]
TABLE_PREFIX = "tenant_"
# Each write is a new fragment and version; compacting now and then keeps searches fast and folds new rows
# into the full-text index (rows not yet indexed are still searched, by a slower scan). Versions older than
# KEEP_VERSIONS are deleted then: long enough for any reader in another process to finish.
COMPACT_EVERY_VERSIONS = 64
KEEP_VERSIONS = timedelta(hours=1)
# Both searches fetch this many candidates per result asked for, so fusion sees more than the final cut.
CANDIDATES_PER_RESULT = 4
MIN_CANDIDATES = 20


def _schema(embedder: Embedder) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("tenant_id", pa.string(), nullable=False),
            pa.field("agent_id", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("subject", pa.string(), nullable=False),  # "" when the memory is about nobody in particular
            pa.field("text", pa.string(), nullable=False),
            pa.field("metadata", pa.string(), nullable=False),  # a JSON object
            pa.field("created_at", pa.string(), nullable=False),  # ISO 8601 UTC, fixed width: sorts as text
            pa.field("vector", pa.list_(pa.float32(), embedder.dimension), nullable=False),
        ],
        metadata={"embedding_model": embedder.model_name},
    )


class LanceMemoryStore:
    """A MemoryStore on LanceDB under `directory`. Safe to share between threads; several processes may use
    the same directory (LanceDB commits optimistically and retries; reads always see the latest version)."""

    def __init__(self, directory: Path, embedder: Embedder) -> None:
        self.directory = directory
        self._embedder = embedder
        directory.mkdir(parents=True, exist_ok=True)
        self._db = lancedb.connect(str(directory), read_consistency_interval=timedelta(0))
        self._tables: dict[str, Table] = {}
        self._lock = threading.Lock()

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
        row = {
            "id": mid,
            "tenant_id": tenant_id,
            "agent_id": agent_id,
            "kind": valid_kind,
            "subject": valid_subject,
            "text": text,
            "metadata": json.dumps(meta, sort_keys=True),
            "created_at": when,
            "vector": self._embedder.embed_documents([text])[0].tolist(),
        }
        table = self._table(tenant_id, create=True)
        assert table is not None
        # Insert-if-absent by id in one commit: two concurrent stores of the same memory keep one row.
        result = table.merge_insert("id").when_not_matched_insert_all().execute([row])
        if result.version % COMPACT_EVERY_VERSIONS == 0:
            table.optimize(cleanup_older_than=KEEP_VERSIONS)
        return StoreResult(id=mid, duplicate=result.num_inserted_rows == 0)

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
        where = self._where(tenant_id, agent_id, kinds, subject, since)
        check_query(query)
        check_limit(limit)
        table = self._table(tenant_id, create=False)
        if table is None:
            return []
        candidates = max(MIN_CANDIDATES, limit * CANDIDATES_PER_RESULT)
        rows = (
            table.search(query_type="hybrid")
            .vector(self._embedder.embed_query(query).tolist())
            .text(query)  # parsed by LanceDB as plain terms; operators and quotes in it are just words
            .where(where, prefilter=True)
            .rerank(RRFReranker(return_score="relevance"))
            .limit(candidates)
            .to_list()
        )
        return [MemoryHit(**self._memory_fields(r), score=round(float(r["_relevance_score"]), 6)) for r in rows[:limit]]

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
        where = self._where(tenant_id, agent_id, kinds, subject, since)
        check_limit(limit)
        table = self._table(tenant_id, create=False)
        if table is None:
            return []
        # A filtered scan of the agent's rows without vectors, sorted here: fine at thousands of memories.
        found = table.search().where(where).select(["id", "created_at"]).limit(None).to_arrow()
        newest = found.sort_by([("created_at", "descending"), ("id", "ascending")]).slice(0, limit)
        ids = newest.column("id").to_pylist()
        if not ids:
            return []
        id_list = ", ".join(f"'{i}'" for i in ids)  # our own hex ids, read back from the table
        rows = table.search().where(f"{where} AND id IN ({id_list})").select(COLUMNS).limit(len(ids)).to_list()
        by_id = {r["id"]: r for r in rows}
        return [Memory(**self._memory_fields(by_id[i])) for i in ids if i in by_id]

    def tenants(self) -> dict[str, str]:
        """Every tenant table, all "active": the embedded backend keeps every tenant on disk."""
        names: list[str] = []
        token: str | None = None
        while True:
            page = self._db.list_tables(page_token=token)
            names += page.tables
            token = page.page_token
            if not token:
                break
        return {n.removeprefix(TABLE_PREFIX): "active" for n in sorted(names) if n.startswith(TABLE_PREFIX)}

    def set_tenant_activity(self, tenant_id: str, status: str) -> None:
        check_id(tenant_id, "tenant_id")
        check_tenant_status(status)
        raise MemoryInputError("not_supported", "the embedded backend keeps every tenant on disk")

    def _where(
        self,
        tenant_id: str,
        agent_id: str,
        kinds: Sequence[str] | None,
        subject: str | None = None,
        since: datetime | str | None = None,
    ) -> str:
        # Only validated slugs, subjects, fixed kind names and our own ISO times reach the filter string.
        where = f"tenant_id = '{check_id(tenant_id, 'tenant_id')}' AND agent_id = '{check_id(agent_id, 'agent_id')}'"
        valid_kinds = check_kinds(kinds)
        if valid_kinds:
            where += " AND kind IN (" + ", ".join(f"'{k}'" for k in valid_kinds) + ")"
        valid_subject = check_subject_filter(subject)
        if valid_subject is not None:
            where += f" AND subject = '{valid_subject}'"
        after = check_since(since)
        if after is not None:
            where += f" AND created_at >= '{after}'"  # fixed-width UTC ISO text: text order is time order
        return where

    @staticmethod
    def _memory_fields(row: Mapping[str, Any]) -> dict[str, Any]:
        fields = {c: row[c] for c in COLUMNS}
        fields["metadata"] = json.loads(row["metadata"])
        return fields

    def _table(self, tenant_id: str, *, create: bool) -> Table | None:
        name = f"{TABLE_PREFIX}{tenant_id}"
        with self._lock:
            table = self._tables.get(name)
            if table is not None:
                return table
            try:
                table = self._db.open_table(name)
            except ValueError:  # LanceDB's "table not found"
                if not create:
                    return None
                table = self._db.create_table(name, schema=_schema(self._embedder), exist_ok=True)
            self._check_model(table)
            self._add_subject(table)
            if not any(index.index_type == "FTS" for index in table.list_indices()):
                table.create_index("text", config=FTS(), replace=True)
            self._tables[name] = table
            return table

    @staticmethod
    def _add_subject(table: Table) -> None:
        """A table written before memories had a subject gets the column, '' for every row, keeping the data."""
        if "subject" in table.schema.names:
            return
        try:
            table.add_columns({"subject": "''"})
        except ValueError:  # another process added it first ("Column subject already exists")
            if "subject" not in table.schema.names:
                raise

    def _check_model(self, table: Table) -> None:
        stored = (table.schema.metadata or {}).get(b"embedding_model", b"").decode()
        if stored != self._embedder.model_name:
            raise EmbeddingModelMismatch(
                f"{self.directory}/{table.name} holds {stored or 'unlabelled'} vectors; this store embeds with "
                f"{self._embedder.model_name}. Re-embed the memories or use another CHIMERA_MEMORY_DIR."
            )
