"""What a memory is, and the rules every backend enforces before it touches storage.

Ids and subjects are checked against strict patterns, so no backend ever builds a filter from text it has not
validated: tenant and agent ids become filter literals (LanceDB) or tenant names (Weaviate).
Memory text is untrusted data: it is stored and returned verbatim, never interpreted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

# Seed tier 1: posts with their engagement, archived conversations, facts, campaign learnings, SOUL.md sections
# (persona) and brand voice examples.
MemoryKind = Literal["published_post", "interaction", "fact", "lesson", "persona", "voice_example"]
KINDS: tuple[str, ...] = get_args(MemoryKind)
TenantStatus = Literal["active", "inactive", "offloaded"]
TENANT_STATUSES: tuple[str, ...] = get_args(TenantStatus)

# Lowercase slugs: Chimera's tenant and agent ids, valid Weaviate tenant names, and safe as LanceDB table
# names on case-insensitive file systems (where "Acme" and "acme" would share a directory).
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
# Who or what a memory is about: `persona`, `campaign:spring-thrift`, `twitter:@thriftqueen_leeds`. Lowercase, so
# handles compare case-blind; no quote, space or operator, so a subject is safe as a filter literal.
SUBJECT_PATTERN = re.compile(r"^[a-z0-9_-]{1,32}(:@?[a-z0-9_.-]{1,100})?$")
MAX_TEXT_CHARS = 8000
MAX_QUERY_CHARS = 1000
MAX_LIMIT = 50
MAX_METADATA_BYTES = 4096
MAX_METADATA_KEYS = 32

MetadataValue = str | int | float | bool | None


class MemoryInputError(ValueError):
    """A request the store refuses; `code` is machine-readable (the MCP server passes it on)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EmbeddingModelMismatch(RuntimeError):
    """The stored vectors were made by another embedding model; they are not comparable with ours."""


class MemoryUnavailable(RuntimeError):
    """The backend did not answer (a server that is down, unreachable or overloaded): worth retrying later."""


class Memory(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    tenant_id: str
    agent_id: str
    text: str
    kind: MemoryKind
    created_at: str  # ISO 8601, UTC, microseconds: fixed width, so it sorts as text
    metadata: dict[str, MetadataValue]
    subject: str = ""  # who or what it is about (SUBJECT_PATTERN), "" when nobody in particular


class MemoryHit(Memory):
    score: float  # higher is more relevant; comparable within one result list only


class StoreResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    duplicate: bool  # True: a memory with this id was already stored; nothing changed


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise MemoryInputError("invalid_id", f"{what} must match {ID_PATTERN.pattern}")
    return value


def check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise MemoryInputError("empty_text", "text must not be blank")
    if len(text) > MAX_TEXT_CHARS:
        raise MemoryInputError("text_too_long", f"text has {len(text)} characters; at most {MAX_TEXT_CHARS}")
    return text


def check_query(query: str) -> str:
    if not isinstance(query, str) or not query.strip():
        raise MemoryInputError("empty_query", "query must not be blank")
    if len(query) > MAX_QUERY_CHARS:
        raise MemoryInputError("query_too_long", f"query has {len(query)} characters; at most {MAX_QUERY_CHARS}")
    return query


def check_kind(kind: str) -> MemoryKind:
    if kind not in KINDS:
        raise MemoryInputError("unknown_kind", f"kind must be one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]  # narrowed by the membership test


def check_kinds(kinds: Sequence[str] | None) -> tuple[MemoryKind, ...] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str) or not kinds:
        raise MemoryInputError("unknown_kind", f"kinds must be a non-empty list of {', '.join(KINDS)}")
    return tuple(sorted({check_kind(k) for k in kinds}))


def check_subject(subject: str | None) -> str:
    """For storing: None and "" both mean no subject."""
    if subject is None or subject == "":
        return ""
    if not isinstance(subject, str) or not SUBJECT_PATTERN.fullmatch(subject):
        raise MemoryInputError(
            "invalid_subject", f"subject must be empty or match {SUBJECT_PATTERN.pattern} (lowercase), e.g. persona"
        )
    return subject


def check_subject_filter(subject: str | None) -> str | None:
    """For searching: None means any subject; a filter names one."""
    if subject is None:
        return None
    if subject == "":
        raise MemoryInputError("invalid_subject", "to filter by subject, name one; omit subject for all memories")
    return check_subject(subject)


def check_time(value: datetime | str, what: str) -> str:
    """A timezone-aware datetime or ISO 8601 string with an offset, as Memory.created_at stores it (UTC)."""
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is not None and parsed.utcoffset() is not None:
        try:
            return iso_utc(parsed)
        except OverflowError:  # e.g. datetime.min with a positive offset: before year 1 in UTC
            pass
    raise MemoryInputError("invalid_time", f"{what} must be a timezone-aware datetime or ISO 8601 time with an offset")


def check_since(since: datetime | str | None) -> str | None:
    return None if since is None else check_time(since, "since")


def iso_utc(moment: datetime) -> str:
    """The one text form of a time in memory: ISO 8601 in UTC with microseconds (fixed width, sorts as text)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return iso_utc(datetime.now(UTC))


def check_tenant_status(status: str) -> TenantStatus:
    if status not in TENANT_STATUSES:
        raise MemoryInputError("invalid_status", f"status must be one of {', '.join(TENANT_STATUSES)}")
    return status  # type: ignore[return-value]  # narrowed by the membership test


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise MemoryInputError("invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValue]:
    """Flat JSON scalars only, small: metadata is returned with every hit and lands in the model's context."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or len(metadata) > MAX_METADATA_KEYS:
        raise MemoryInputError("invalid_metadata", f"metadata must be an object of at most {MAX_METADATA_KEYS} keys")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str | int | float | bool | type(None)):
            raise MemoryInputError(
                "invalid_metadata", "metadata maps string keys to strings, numbers, booleans or null"
            )
    if len(json.dumps(dict(metadata))) > MAX_METADATA_BYTES:
        raise MemoryInputError("invalid_metadata", f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON")
    return dict(metadata)


def memory_id(tenant_id: str, agent_id: str, kind: str, text: str, idempotency_key: str | None) -> str:
    """Deterministic: the same key (or, without one, the same kind and text) for the same agent is one memory.

    Tenant and agent are part of the hash, so identical text of two tenants never shares an id.
    """
    if idempotency_key is not None and not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        raise MemoryInputError(
            "invalid_idempotency_key", f"idempotency_key must match {IDEMPOTENCY_KEY_PATTERN.pattern}"
        )
    identity = f"key:{idempotency_key}" if idempotency_key is not None else f"text:{kind}:{' '.join(text.split())}"
    digest = hashlib.sha256("\x1f".join([tenant_id, agent_id, identity]).encode("utf-8")).hexdigest()
    return f"mem_{digest[:32]}"
