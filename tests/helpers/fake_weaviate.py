"""A loopback stand-in for a Weaviate server, for driving the real weaviate-client against it.

It answers the REST calls (`/v1/meta`, `/v1/.well-known/*`, `/v1/schema...`, `/v1/objects...`) and the gRPC
service `weaviate.v1.Weaviate` (Search, TenantsGet) in Weaviate's documented shapes, using the protobuf
modules the installed client ships (`weaviate.proto.v1` picks the subpackage matching the protobuf runtime).
It keeps what a server keeps: collections with the server's defaults filled in, tenants with activity
statuses, objects per tenant; it applies filters, BM25 over word-tokenized text (English stopwords, k1 1.2,
b 0.75), cosine distance over the vectors, and fuses the two by rank as Weaviate does (weight / (rank + 60),
rank from 0). Every call is recorded (`calls`), so a test can assert what a client sent.

Deliberately strict where Weaviate is: an existing object id or tenant is refused with 422, a query needs a
tenant on a multi-tenant collection, an offloaded tenant answers nothing until it is activated, a filter on a
property that is not filterable is an error, an unknown property in an object is an error.
"""

from __future__ import annotations

import json
import math
import re
import struct
import threading
import uuid as uuid_lib
from collections.abc import Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import grpc  # type: ignore[import-untyped]
from weaviate.proto.v1 import (
    base_pb2,
    base_search_pb2,
    properties_pb2,
    search_get_pb2,
    tenants_pb2,
    weaviate_pb2_grpc,
)

from tests.helpers.fake_http import JsonHandler

VERSION = "1.40.3"  # the image deploy/ runs
DEFAULT_LIMIT = 10
RRF_K = 60
BM25_K1, BM25_B = 1.2, 0.75
# Weaviate's "en" stopword preset (Lucene's English list).
STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not"}
    | {"of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was"}
    | {"will", "with"}
)
WORD = re.compile(r"[^\W_]+", re.UNICODE)  # Weaviate's "word" tokenization: alphanumeric runs, lower-cased
STATUSES = ("ACTIVE", "INACTIVE", "OFFLOADED")
_OLD_NAMES = {"HOT": "ACTIVE", "COLD": "INACTIVE", "FROZEN": "OFFLOADED"}
_GRPC_STATUS = {
    "ACTIVE": tenants_pb2.TENANT_ACTIVITY_STATUS_ACTIVE,
    "INACTIVE": tenants_pb2.TENANT_ACTIVITY_STATUS_INACTIVE,
    "OFFLOADED": tenants_pb2.TENANT_ACTIVITY_STATUS_OFFLOADED,
}
Op = base_pb2.Filters


class WeaviateError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Call:
    """One request as the fake received it."""

    transport: Literal["rest", "grpc"]
    method: str  # the HTTP verb, or the gRPC method name ("Search")
    path: str  # the REST path, or "/weaviate.v1.Weaviate/<method>"
    query: dict[str, list[str]] = field(default_factory=dict)
    body: Any = None  # parsed JSON, or the protobuf request
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names (gRPC: the metadata)

    @property
    def tenant(self) -> str | None:
        """The tenant the call names: a query parameter, the object's `tenant`, or the gRPC request's."""
        if self.transport == "grpc":
            return getattr(self.body, "tenant", None) or None
        if "tenant" in self.query:
            return self.query["tenant"][0]
        if isinstance(self.body, dict) and self.body.get("tenant"):
            return str(self.body["tenant"])
        return None

    def mentions(self, text: str) -> bool:
        """Whether `text` appears anywhere in the call: path, query, body (for protobuf: its text form)."""
        body = str(self.body) if self.transport == "grpc" else json.dumps(self.body)
        return text in self.path or text in json.dumps(self.query) or text in body


@dataclass
class StoredObject:
    uuid: str
    properties: dict[str, Any]
    vector: list[float] | None


def tokens(text: str) -> list[str]:
    return [t.lower() for t in WORD.findall(text)]


def rfc3339nano(moment: datetime) -> str:
    """How Go's RFC3339Nano prints a time: UTC as Z, trailing zeros of the fraction dropped."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WeaviateError(422, f"invalid date {value!r}: {exc}") from exc
    if parsed.tzinfo is None:
        raise WeaviateError(422, f"invalid date {value!r}: no time zone")
    return parsed


def _with_server_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A collection as Weaviate returns it: the request, with what the server fills in."""
    out: dict[str, Any] = json.loads(json.dumps(config))
    out["class"] = out["class"][0].upper() + out["class"][1:]
    for prop in out.get("properties", []):
        text = prop["dataType"][0] in ("text", "text[]")
        prop.setdefault("indexFilterable", True)
        prop.setdefault("indexSearchable", text)
        prop.setdefault("indexRangeFilters", False)
        if text:
            prop.setdefault("tokenization", "word")
    out["invertedIndexConfig"] = {
        "bm25": {"b": BM25_B, "k1": BM25_K1},
        "cleanupIntervalSeconds": 60,
        "stopwords": {"preset": "en", "additions": None, "removals": None},
        "indexNullState": False,
        "indexPropertyLength": False,
        "indexTimestamps": False,
        "usingBlockMaxWAND": True,
        **out.get("invertedIndexConfig", {}),
    }
    mt = out.get("multiTenancyConfig") or {}
    out["multiTenancyConfig"] = {
        "enabled": bool(mt.get("enabled")),
        "autoTenantCreation": bool(mt.get("autoTenantCreation")),
        "autoTenantActivation": bool(mt.get("autoTenantActivation")),
    }
    out["replicationConfig"] = {"factor": 1, "asyncEnabled": False, "deletionStrategy": "NoAutomatedResolution"}
    out["shardingConfig"] = {
        "virtualPerPhysical": 128,
        "desiredCount": 1,
        "actualCount": 1,
        "desiredVirtualCount": 128,
        "actualVirtualCount": 128,
        "key": "_id",
        "strategy": "hash",
        "function": "murmur3",
    }
    quantizers = {
        "bq": {"enabled": False, "cache": False, "rescoreLimit": -1},
        "pq": {"enabled": False},
        "sq": {"enabled": False, "rescoreLimit": 20, "trainingLimit": 100000},
        "rq": {"enabled": False, "bits": 8, "rescoreLimit": 20},
    }
    for vector in (out.get("vectorConfig") or {}).values():
        index_type = vector.setdefault("vectorIndexType", "hnsw")
        index = vector.setdefault("vectorIndexConfig", {})
        index.setdefault("distance", "cosine")
        index.setdefault("vectorCacheMaxObjects", 1000000000000)
        for name, default in quantizers.items():
            index.setdefault(name, default)
        if index_type == "hnsw":
            for key, value in {
                "cleanupIntervalSeconds": 300,
                "dynamicEfMin": 100,
                "dynamicEfMax": 500,
                "dynamicEfFactor": 8,
                "ef": -1,
                "efConstruction": 128,
                "flatSearchCutoff": 40000,
                "maxConnections": 32,
                "skip": False,
                "filterStrategy": "acorn",
            }.items():
                index.setdefault(key, value)
    return out


class FakeWeaviate:
    """Start with `with FakeWeaviate() as fake:`; `fake.url` and `fake.grpc_port` are where it listens."""

    def __init__(self, api_key: str | None = None, version: str = VERSION) -> None:
        self.api_key = api_key
        self.version = version
        self.calls: list[Call] = []
        self.classes: dict[str, dict[str, Any]] = {}
        self.tenants: dict[str, dict[str, str]] = {}  # class -> tenant -> status
        self.objects: dict[tuple[str, str], dict[str, StoredObject]] = {}  # (class, tenant or "") -> uuid -> object
        # Fault injection: answer this many existence checks of objects "absent", as a check that raced another
        # process's insert would.
        self.stale_exists = 0
        self.offload_module = True  # False: a server without offload-s3, which refuses to offload
        self._lock = threading.RLock()
        self._http: ThreadingHTTPServer | None = None
        self._grpc: grpc.Server | None = None
        self.url = ""
        self.grpc_port = 0

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeWeaviate:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self))
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="fake-weaviate-rest", daemon=True).start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(_Servicer(self), self._grpc)  # type: ignore[no-untyped-call]
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def __enter__(self) -> FakeWeaviate:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what tests read ---------------------------------------------------------------------------

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def calls_to(self, method: str, path_pattern: str = "") -> list[Call]:
        """Calls of one HTTP verb or gRPC method whose path matches the regex (searched)."""
        with self._lock:
            return [c for c in self.calls if c.method == method and re.search(path_pattern, c.path)]

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def stored(self, collection: str, tenant: str) -> dict[str, StoredObject]:
        with self._lock:
            return dict(self.objects.get((collection, tenant), {}))

    # --- schema ----------------------------------------------------------------------------------

    def _class(self, name: str) -> dict[str, Any]:
        found = self.classes.get(name[:1].upper() + name[1:])
        if found is None:
            raise WeaviateError(404, f"class {name!r} not found")
        return found

    def create_class(self, config: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if not isinstance(config.get("class"), str) or not config["class"]:
                raise WeaviateError(422, "class name is required")
            full = _with_server_defaults(config)
            if full["class"] in self.classes:
                raise WeaviateError(422, f'class name "{full["class"]}" already exists')
            self.classes[full["class"]] = full
            self.tenants[full["class"]] = {}
            return full

    def delete_class(self, name: str) -> None:
        """Idempotent, as Weaviate's is: deleting a class that does not exist succeeds."""
        with self._lock:
            if name[:1].upper() + name[1:] not in self.classes:
                return
            cls = self._class(name)
            del self.classes[cls["class"]]
            self.tenants.pop(cls["class"], None)
            for key in [k for k in self.objects if k[0] == cls["class"]]:
                del self.objects[key]

    # --- tenants ---------------------------------------------------------------------------------

    def add_tenants(self, name: str, items: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
        with self._lock:
            cls = self._class(name)
            if not cls["multiTenancyConfig"]["enabled"]:
                raise WeaviateError(422, f"multi-tenancy is not enabled for class {cls['class']!r}")
            known = self.tenants[cls["class"]]
            for item in items:
                tenant = str(item.get("name", ""))
                if not re.fullmatch(r"[A-Za-z0-9\-_]{1,64}", tenant):
                    raise WeaviateError(422, f"tenant name {tenant!r} is not valid")
                if tenant in known:
                    raise WeaviateError(422, f"tenant {tenant!r} already exists")
                status = _OLD_NAMES.get(item.get("activityStatus") or "ACTIVE", item.get("activityStatus") or "ACTIVE")
                if status not in ("ACTIVE", "INACTIVE"):
                    raise WeaviateError(422, f"a new tenant cannot be {status}")
                known[tenant] = status
            return [{"name": str(i["name"]), "activityStatus": known[str(i["name"])]} for i in items]

    def update_tenants(self, name: str, items: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
        with self._lock:
            cls = self._class(name)
            known = self.tenants[cls["class"]]
            for item in items:
                tenant = str(item.get("name", ""))
                status = _OLD_NAMES.get(item.get("activityStatus", ""), item.get("activityStatus", ""))
                if tenant not in known:
                    raise WeaviateError(422, f"tenant {tenant!r} not found")
                if status not in STATUSES:
                    raise WeaviateError(422, f"invalid activity status {status!r}")
                if status == "OFFLOADED" and not self.offload_module:
                    raise WeaviateError(422, "cannot offload tenants: no offload module (offload-s3) is enabled")
                known[tenant] = status
            return [{"name": str(i["name"]), "activityStatus": known[str(i["name"])]} for i in items]

    def _usable_tenant(self, cls: dict[str, Any], tenant: str | None, *, creating: bool = False) -> str:
        """The tenant a data call may touch, activating it if the collection says so, as Weaviate does."""
        mt = cls["multiTenancyConfig"]
        if not mt["enabled"]:
            if tenant:
                raise WeaviateError(
                    422, f"class {cls['class']} has multi-tenancy disabled, but request was with tenant"
                )
            return ""
        if not tenant:
            raise WeaviateError(422, f"class {cls['class']} has multi-tenancy enabled, but request was without tenant")
        known = self.tenants[cls["class"]]
        if tenant not in known:
            if creating and mt["autoTenantCreation"]:
                known[tenant] = "ACTIVE"
            else:
                raise WeaviateError(422, f'tenant not found: "{tenant}"')
        if known[tenant] == "INACTIVE" and mt["autoTenantActivation"]:
            known[tenant] = "ACTIVE"
        if known[tenant] != "ACTIVE":
            raise WeaviateError(422, f'tenant not active: "{tenant}" is {known[tenant]}')
        return tenant

    # --- objects ---------------------------------------------------------------------------------

    def insert(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            cls = self._class(str(body.get("class", "")))
            tenant = self._usable_tenant(cls, body.get("tenant"), creating=True)
            object_id = str(body.get("id") or uuid_lib.uuid4())
            bucket = self.objects.setdefault((cls["class"], tenant), {})
            if object_id in bucket:
                raise WeaviateError(422, f"id '{object_id}' already exists")
            types = {p["name"]: p["dataType"][0] for p in cls.get("properties", [])}
            props: dict[str, Any] = {}
            for key, value in (body.get("properties") or {}).items():
                if key not in types:
                    raise WeaviateError(422, f"invalid object: no such prop with name '{key}' found in class")
                props[key] = parse_date(value) if types[key] == "date" and value is not None else value
            vector = body.get("vector")
            if vector is None and isinstance(body.get("vectors"), dict) and len(body["vectors"]) == 1:
                vector = next(iter(body["vectors"].values()))
            bucket[object_id] = StoredObject(object_id, props, [float(v) for v in vector] if vector else None)
            return {**body, "id": object_id}

    def exists(self, name: str, object_id: str, tenant: str | None) -> bool:
        with self._lock:
            cls = self._class(name)
            usable = self._usable_tenant(cls, tenant)
            if self.stale_exists:
                self.stale_exists -= 1
                return False
            return object_id in self.objects.get((cls["class"], usable), {})

    # --- search ----------------------------------------------------------------------------------

    def search(self, request: search_get_pb2.SearchRequest) -> search_get_pb2.SearchReply:
        with self._lock:
            cls = self._class(request.collection)
            tenant = self._usable_tenant(cls, request.tenant)
            everything = list(self.objects.get((cls["class"], tenant), {}).values())
            schema = {p["name"]: p for p in cls.get("properties", [])}
            candidates = [
                o for o in everything if not request.HasField("filters") or _matches(o, request.filters, schema)
            ]
            limit = request.limit or DEFAULT_LIMIT
            scored: list[tuple[StoredObject, float | None]]
            if request.HasField("hybrid_search"):
                scored = self._hybrid(request.hybrid_search, candidates, everything, schema, limit)
            elif request.HasField("bm25_search"):
                bm25 = request.bm25_search
                ranked = _bm25(bm25.query, self._searchable(bm25.properties, schema), candidates, everything)
                scored = [(o, s) for o, s in ranked]
            elif request.HasField("near_vector"):
                query = _vector_of(request.near_vector.vector_bytes, request.near_vector.vectors)
                scored = [(o, None) for o, _ in _nearest(query, candidates)]
            elif request.HasField("near_text") or request.HasField("near_object"):
                raise WeaviateError(422, "this collection has no vectorizer module")
            else:
                scored = [(o, None) for o in _sorted(candidates, request.sort_by)]
            page = scored[request.offset : request.offset + limit]
            return search_get_pb2.SearchReply(took=0.001, results=[self._result(cls, request, o, s) for o, s in page])

    def _searchable(self, requested: Sequence[str], schema: dict[str, dict[str, Any]]) -> list[str]:
        names = list(requested) or [n for n, p in schema.items() if p["dataType"][0] == "text" and p["indexSearchable"]]
        for name in names:
            if name not in schema or not schema[name]["indexSearchable"]:
                raise WeaviateError(422, f"property {name!r} is not searchable")
        return names

    def _hybrid(
        self,
        hybrid: base_search_pb2.Hybrid,
        candidates: list[StoredObject],
        everything: list[StoredObject],
        schema: dict[str, dict[str, Any]],
        limit: int,
    ) -> list[tuple[StoredObject, float | None]]:
        alpha = hybrid.alpha_param if hybrid.use_alpha_param else hybrid.alpha
        if hybrid.fusion_type != base_search_pb2.Hybrid.FUSION_TYPE_RANKED:
            raise WeaviateError(422, "this fake fuses by rank only (FUSION_TYPE_RANKED)")
        lists: list[tuple[float, list[StoredObject]]] = []
        if alpha < 1 and hybrid.query:
            keyword = _bm25(hybrid.query, self._searchable(hybrid.properties, schema), candidates, everything)
            lists.append((1 - alpha, [o for o, _ in keyword[:limit]]))
        if alpha > 0:
            vectors = list(hybrid.vectors) or list(hybrid.near_vector.vectors)
            raw = hybrid.vector_bytes or hybrid.near_vector.vector_bytes
            if not raw and not vectors:
                raise WeaviateError(422, "hybrid: no vector given and the collection has no vectorizer")
            query = _vector_of(raw, vectors)
            lists.append((alpha, [o for o, _ in _nearest(query, candidates)[:limit]]))
        fused: dict[str, tuple[StoredObject, float]] = {}
        for weight, ranked in lists:
            for rank, obj in enumerate(ranked):
                previous = fused.get(obj.uuid, (obj, 0.0))[1]
                fused[obj.uuid] = (obj, previous + weight / (rank + RRF_K))
        ordered = sorted(fused.values(), key=lambda pair: (-pair[1], pair[0].uuid))
        return [(o, s) for o, s in ordered]

    def _result(
        self, cls: dict[str, Any], request: search_get_pb2.SearchRequest, obj: StoredObject, score: float | None
    ) -> search_get_pb2.SearchResult:
        wanted = request.properties
        if request.HasField("properties") and not wanted.return_all_nonref_properties:
            names = list(wanted.non_ref_properties)
        else:
            names = [p["name"] for p in cls.get("properties", [])]
        fields = {name: _value(obj.properties.get(name)) for name in names if name in obj.properties}
        metadata = search_get_pb2.MetadataResult(id=obj.uuid, id_as_bytes=uuid_lib.UUID(obj.uuid).bytes)
        if request.metadata.score and score is not None:
            metadata.score = score
            metadata.score_present = True
        return search_get_pb2.SearchResult(
            properties=search_get_pb2.PropertiesResult(
                non_ref_props=properties_pb2.Properties(fields=fields), target_collection=cls["class"]
            ),
            metadata=metadata,
        )

    def tenants_get(self, request: tenants_pb2.TenantsGetRequest) -> tenants_pb2.TenantsGetReply:
        with self._lock:
            cls = self._class(request.collection)
            known = self.tenants[cls["class"]]
            names = list(request.names.values) if request.HasField("names") else sorted(known)
            return tenants_pb2.TenantsGetReply(
                took=0.001,
                tenants=[
                    tenants_pb2.Tenant(name=n, activity_status=_GRPC_STATUS[known[n]]) for n in names if n in known
                ],
            )


# --- search pieces ----------------------------------------------------------------------------------


def _vector_of(raw: bytes, vectors: Sequence[base_pb2.Vectors]) -> list[float]:
    data = raw or (vectors[0].vector_bytes if vectors else b"")
    return list(struct.unpack(f"{len(data) // 4}f", data))


def _nearest(query: list[float], objects: Sequence[StoredObject]) -> list[tuple[StoredObject, float]]:
    """By cosine distance, nearest first (exact, as a flat index searches)."""
    q_norm = math.sqrt(sum(v * v for v in query)) or 1.0
    out = []
    for obj in objects:
        if obj.vector is None or len(obj.vector) != len(query):
            continue
        norm = math.sqrt(sum(v * v for v in obj.vector)) or 1.0
        out.append((obj, 1 - sum(a * b for a, b in zip(query, obj.vector, strict=True)) / (q_norm * norm)))
    return sorted(out, key=lambda pair: (pair[1], pair[0].uuid))


def _bm25(
    query: str, properties: Sequence[str], candidates: Sequence[StoredObject], everything: Sequence[StoredObject]
) -> list[tuple[StoredObject, float]]:
    """BM25F-ish: the query's terms (stopwords dropped) over the properties, statistics from the whole tenant."""
    terms = [t for t in tokens(query) if t not in STOPWORDS]
    if not terms:
        return []

    def doc_tokens(obj: StoredObject) -> list[str]:
        return [t for p in properties for t in tokens(str(obj.properties.get(p) or ""))]

    corpus = {o.uuid: doc_tokens(o) for o in everything}
    total = len(corpus) or 1
    average = sum(len(t) for t in corpus.values()) / total or 1.0
    scored = []
    for obj in candidates:
        words = corpus.get(obj.uuid) or doc_tokens(obj)
        score = 0.0
        for term in set(terms):
            frequency = words.count(term)
            if not frequency:
                continue
            having = sum(1 for t in corpus.values() if term in t)
            idf = math.log(1 + (total - having + 0.5) / (having + 0.5))
            norm = frequency + BM25_K1 * (1 - BM25_B + BM25_B * len(words) / average)
            score += idf * frequency * (BM25_K1 + 1) / norm
        if score > 0:
            scored.append((obj, score))
    return sorted(scored, key=lambda pair: (-pair[1], pair[0].uuid))


def _sorted(objects: list[StoredObject], sort_by: Sequence[search_get_pb2.SortBy]) -> list[StoredObject]:
    """By each sort property in turn (stable sorts, last key first); by id without any."""
    ordered = sorted(objects, key=lambda o: o.uuid)
    for sort in reversed(sort_by):
        name = sort.path[0]

        def key(obj: StoredObject, name: str = name) -> tuple[bool, Any]:
            value = obj.properties.get(name)
            return value is None, value.timestamp() if isinstance(value, datetime) else value

        ordered = sorted(ordered, key=key, reverse=not sort.ascending)
    return ordered


def _value(value: Any) -> properties_pb2.Value:
    if value is None:
        return properties_pb2.Value(null_value="NULL_VALUE")
    if isinstance(value, datetime):
        return properties_pb2.Value(date_value=rfc3339nano(value))
    if isinstance(value, bool):
        return properties_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return properties_pb2.Value(int_value=value)
    if isinstance(value, float):
        return properties_pb2.Value(number_value=value)
    return properties_pb2.Value(text_value=str(value))


def _filter_values(f: base_pb2.Filters) -> list[Any]:
    if f.HasField("value_text_array"):
        return list(f.value_text_array.values)
    if f.HasField("value_int_array"):
        return list(f.value_int_array.values)
    if f.HasField("value_number_array"):
        return list(f.value_number_array.values)
    if f.HasField("value_boolean_array"):
        return list(f.value_boolean_array.values)
    for name in ("value_text", "value_int", "value_number", "value_boolean"):
        if f.HasField(name):
            return [getattr(f, name)]
    raise WeaviateError(422, "filter without a value")


def _matches(obj: StoredObject, f: base_pb2.Filters, schema: dict[str, dict[str, Any]]) -> bool:
    if f.operator == Op.OPERATOR_AND:
        return all(_matches(obj, sub, schema) for sub in f.filters)
    if f.operator == Op.OPERATOR_OR:
        return any(_matches(obj, sub, schema) for sub in f.filters)
    if f.operator == Op.OPERATOR_NOT:
        return not all(_matches(obj, sub, schema) for sub in f.filters)
    prop = f.target.property if f.HasField("target") else (f.on[0] if f.on else "")
    spec = schema.get(prop)
    if spec is None:
        raise WeaviateError(422, f"no such property {prop!r} to filter on")
    if not spec.get("indexFilterable", True) and not spec.get("indexRangeFilters", False):
        raise WeaviateError(422, f"property {prop!r} is not filterable")
    kind = spec["dataType"][0]
    values = [parse_date(v) if kind == "date" else v for v in _filter_values(f)]
    have = obj.properties.get(prop)
    if f.operator == Op.OPERATOR_IS_NULL:
        return (have is None) == bool(values[0])
    if have is None:
        return False
    have_set: set[Any]
    want: list[set[Any]]
    if kind == "text" and spec.get("tokenization") != "field":  # word-tokenized text matches by tokens
        have_set, want = set(tokens(str(have))), [set(tokens(str(v))) for v in values]
    else:
        have_set, want = {have}, [{v} for v in values]
    op = f.operator
    if op == Op.OPERATOR_EQUAL:
        return want[0] <= have_set
    if op == Op.OPERATOR_NOT_EQUAL:
        return not want[0] <= have_set
    if op == Op.OPERATOR_CONTAINS_ANY:
        return any(w <= have_set for w in want)
    if op == Op.OPERATOR_CONTAINS_ALL:
        return all(w <= have_set for w in want)
    if op == Op.OPERATOR_CONTAINS_NONE:
        return not any(w <= have_set for w in want)
    if op == Op.OPERATOR_GREATER_THAN:
        return bool(have > values[0])
    if op == Op.OPERATOR_GREATER_THAN_EQUAL:
        return bool(have >= values[0])
    if op == Op.OPERATOR_LESS_THAN:
        return bool(have < values[0])
    if op == Op.OPERATOR_LESS_THAN_EQUAL:
        return bool(have <= values[0])
    raise WeaviateError(422, f"filter operator {Op.Operator.Name(op)} is not supported by this fake")


# --- transports ------------------------------------------------------------------------------------


class _Servicer(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, fake: FakeWeaviate) -> None:
        self.fake = fake

    def _call(self, name: str, request: Any, context: grpc.ServicerContext) -> None:
        metadata = {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}
        self.fake.record(Call("grpc", name, f"/weaviate.v1.Weaviate/{name}", body=request, headers=metadata))
        if self.fake.api_key and metadata.get("authorization") != f"Bearer {self.fake.api_key}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "unauthenticated: no valid api key")

    def Search(self, request: Any, context: grpc.ServicerContext) -> Any:  # gRPC's method name
        self._call("Search", request, context)
        try:
            return self.fake.search(request)
        except WeaviateError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, f"explorer: {exc.message}")

    def TenantsGet(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._call("TenantsGet", request, context)
        try:
            return self.fake.tenants_get(request)
        except WeaviateError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, exc.message)


def _rest_handler(fake: FakeWeaviate) -> type[JsonHandler]:
    class Handler(JsonHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects of a server

        def do_GET(self) -> None:  # http.server's names
            self._handle("GET")

        def do_HEAD(self) -> None:
            self._handle("HEAD")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            call = Call("rest", method, parts.path, parse_qs(parts.query), body, headers)
            fake.record(call)
            open_paths = ("/v1/.well-known/ready", "/v1/.well-known/live", "/v1/.well-known/openid-configuration")
            if (
                fake.api_key
                and parts.path not in open_paths
                and headers.get("authorization") != f"Bearer {fake.api_key}"
            ):
                self._reply(method, 401, {"code": 401, "message": "anonymous access not enabled"})
                return
            try:
                status, answer = self._route(method, [unquote(p) for p in parts.path.split("/")[1:]], call)
            except WeaviateError as exc:
                status, answer = exc.status, {"error": [{"message": exc.message}]}
            self._reply(method, status, answer)

        def _reply(self, method: str, status: int, answer: Any) -> None:
            if method == "HEAD" or status == 204:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif answer is None:
                self._raw(status, b"", "application/json")
            else:
                self._raw(status, json.dumps(answer).encode(), "application/json")

        def _route(self, method: str, path: list[str], call: Call) -> tuple[int, Any]:
            tenant = call.tenant
            match method, path:
                case "GET", ["v1", "meta"]:
                    return 200, {
                        "hostname": "http://[::]:8080",
                        "modules": {},
                        "version": fake.version,
                        "grpcMaxMessageSize": 104858000,
                    }
                case "GET", ["v1", ".well-known", "ready" | "live"]:
                    return 200, None
                case "GET", ["v1", ".well-known", "openid-configuration"]:
                    return 404, None
                case "GET", ["v1", "schema"]:
                    with fake._lock:
                        return 200, {"classes": list(fake.classes.values())}
                case "POST", ["v1", "schema"]:
                    return 200, fake.create_class(call.body or {})
                case "GET", ["v1", "schema", name]:
                    return 200, fake._class(name)
                case "DELETE", ["v1", "schema", name]:
                    fake.delete_class(name)
                    return 200, None
                case "GET", ["v1", "schema", name, "tenants"]:
                    with fake._lock:
                        known = fake.tenants[fake._class(name)["class"]]
                        return 200, [{"name": n, "activityStatus": s} for n, s in sorted(known.items())]
                case "POST", ["v1", "schema", name, "tenants"]:
                    return 200, fake.add_tenants(name, call.body or [])
                case "PUT", ["v1", "schema", name, "tenants"]:
                    return 200, fake.update_tenants(name, call.body or [])
                case "GET" | "HEAD", ["v1", "schema", name, "tenants", tenant_name]:
                    with fake._lock:
                        known = fake.tenants[fake._class(name)["class"]]
                        if tenant_name not in known:
                            return 404, {"error": [{"message": f'tenant not found: "{tenant_name}"'}]}
                        return 200, {"name": tenant_name, "activityStatus": known[tenant_name]}
                case "POST", ["v1", "objects"]:
                    return 200, fake.insert(call.body or {})
                case "HEAD", ["v1", "objects", name, object_id]:
                    return (204 if fake.exists(name, object_id, tenant) else 404), None
            return 404, {"error": [{"message": f"the fake has no {method} {'/'.join(path)}"}]}

    return Handler


def iter_grpc(fake: FakeWeaviate, method: str) -> Iterator[Any]:
    """The protobuf requests of one gRPC method, in order."""
    for call in fake.calls_to(method):
        yield call.body
