"""Benchmark: what trust costs on the hot paths: checking a signed request, holding the stop gate around a post,
and encrypting payloads.

    .venv/bin/python benchmarks/trust.py [--requests 500] [--gates 500] [--payloads 300]
    .venv/bin/python benchmarks/trust.py --database-url postgresql+psycopg://chimera_app@127.0.0.1:5432/chimera

What runs, in this process, on a fresh SQLite file in a temp directory (or the given database, already migrated,
with a user directory the script fills):

  authorize      sign a pause request as a campaign manager and run chimera.access.authorize.authorize on it
                 against the real user directory (key lookup, Ed25519 verify, the request id recorded once):
                 the work of the `authorize` activity every person's change goes through
  stop gate      enter and leave the stop gate's shared hold as a publish does (the stop check under it), with
                 no send inside: what the gate adds to each post
  codec          encrypt and decrypt one payload (1 KB and 64 KB of JSON) with the AES-GCM payload codec

Printed per case: calls, p50 and p95 milliseconds (codec: MB/s too). Exit status non-zero only on a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.common.v1 import Payload

from chimera.access.authorize import authorize
from chimera.access.users import add_user
from chimera.codec import EncryptionCodec, KeyRing, new_key_ring
from chimera.db import StateStore
from schemas.access import FLEET_SCOPE, AuthorizeRequest
from schemas.events import ControlRequest
from schemas.task import TaskRef


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def bench_authorize(store: StateStore, n: int) -> list[float]:
    suffix = uuid.uuid4().hex[:6]
    if store.list_users():
        raise SystemExit("the user directory is not empty: pass a fresh database")
    root = add_user(store, f"root-{suffix}", FLEET_SCOPE, "administrator", by=None, bootstrap=True)
    maya = add_user(store, f"maya-{suffix}", "acme", "campaign_manager", by=root)
    times = []
    for _ in range(n):
        req = maya.sign(ControlRequest(request_id=str(uuid.uuid4()), actor="maya"), "campaign.pause", "campaign-x")
        now = datetime.now(UTC)
        check = AuthorizeRequest(
            action="campaign.pause",
            target="campaign-x",
            tenant_id="acme",
            agent_id="mira",
            recipient="campaign-x",
            request_id=req.request_id,
            body=req.signed_body(),
            signature=req.signature,
            received_at=now.isoformat(),
        )
        start = time.perf_counter()
        answer = authorize(check, store, store, attempt_key=req.request_id, now=now)
        times.append(time.perf_counter() - start)
        assert answer.allowed, answer.reason
    return times


async def bench_gate(store: StateStore, n: int) -> list[float]:
    ref = TaskRef(task_id="t", tenant_id="acme", campaign_id="c", agent_id="mira", campaign_workflow_id="w")
    times = []
    for _ in range(n):
        start = time.perf_counter()
        async with store.sending(ref):
            pass
        times.append(time.perf_counter() - start)
    return times


async def bench_codec(size: int, n: int) -> tuple[list[float], int]:
    codec = EncryptionCodec(KeyRing.from_json(new_key_ring("bench")))
    body = json.dumps({"text": "x" * size}).encode()
    payload = Payload(metadata={"encoding": b"json/plain"}, data=body)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        encrypted = await codec.encode([payload])
        decoded = await codec.decode(encrypted)
        times.append(time.perf_counter() - start)
        assert decoded[0].data == body
    return times, len(body)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--gates", type=int, default=500)
    parser.add_argument("--payloads", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'chimera.db'}"
        store = StateStore(url)
        store.ensure_schema()
        print(f"database: {store.dialect}")
        p50, p95 = percentiles(bench_authorize(store, args.requests))
        print(f"authorize   {args.requests:5d} checks   p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")
        p50, p95 = percentiles(await bench_gate(store, args.gates))
        print(f"stop gate   {args.gates:5d} holds    p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")
        store.close()
    for size in (1024, 64 * 1024):
        times, nbytes = await bench_codec(size, args.payloads)
        p50, p95 = percentiles(times)
        rate = 2 * nbytes / statistics.median(times) / 1e6  # encrypted and decrypted
        size_kb = nbytes // 1024
        timing = f"p50 {p50:7.3f} ms   p95 {p95:7.3f} ms   {rate:6.0f} MB/s"
        print(f"codec {size_kb:3d} KB {args.payloads:5d} rounds   {timing}")


if __name__ == "__main__":
    asyncio.run(main())
