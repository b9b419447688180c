"""Benchmark: task commits per second on PostgreSQL, with OCC and budget reservation, at 1, 8 and 32 writers.

Each simulated task does what a ContentTaskWorkflow does to the store: reserve its estimate
against the daily budget (campaign, agent and tenant levels), read the version of one state key,
commit on that read set (OCC), then settle the actual cost; a StateConflict releases the
reservation and counts as a conflict (the campaign would re-plan the task). Writers are threads,
each with its own connection, as the application role under row-level security.

    .venv/bin/python benchmarks/occ_budget.py [--seconds 5] [--keys 64] [--writers 1,8,32] [--tenants 1]

It needs deploy/postgres/bootstrap.sql applied (the roles); it creates a fresh schema owned by
chimera_owner in the database of CHIMERA_TEST_PG (a superuser conninfo, default
`host=127.0.0.1 port=5432 user=postgres dbname=test`), migrates it, and drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg import sql

from chimera.db import StateConflict, StateStore, migrate
from schemas.campaign import CampaignSpec
from schemas.persona import Persona
from schemas.task import StateRead, TaskRef

CONNINFO = os.environ.get("CHIMERA_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")
TENANT, CAMPAIGN, AGENT = "bench", "load", "ava"


def url(role: str, schema: str) -> str:
    p = psycopg.conninfo.conninfo_to_dict(CONNINFO)
    return (
        f"postgresql+psycopg://{role}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p.get('dbname', 'test')}"
        f"?options={quote(f'-csearch_path={schema}')}"
    )


@dataclass
class Result:
    writers: int
    seconds: float
    commits: int
    conflicts: int
    refused: int

    @property
    def rate(self) -> float:
        return self.commits / self.seconds

    @property
    def conflict_rate(self) -> float:
        attempts = self.commits + self.conflicts
        return self.conflicts / attempts if attempts else 0.0


def run(store: StateStore, writers: int, seconds: float, keys: int, round_no: int, tenants: int = 1) -> Result:
    counts = {"commits": 0, "conflicts": 0, "refused": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    barrier = threading.Barrier(writers)

    def writer(w: int) -> None:
        rng = random.Random(w)
        mine = {"commits": 0, "conflicts": 0, "refused": 0}
        barrier.wait()
        n = 0
        while time.monotonic() < stop:
            n += 1
            tenant = f"{TENANT}{w % tenants}"
            ref = TaskRef(
                task_id=f"r{round_no}-w{w}-{n}",
                tenant_id=tenant,
                campaign_id=CAMPAIGN,
                agent_id=AGENT,
                campaign_workflow_id="bench",
            )
            if not store.reserve(ref, 0.0003, 1_000_000.0, "UTC").ok:
                mine["refused"] += 1
                continue
            key = f"topic:{rng.randrange(keys)}"
            [read] = store.read_versions(tenant, [key])
            try:
                store.commit(ref, [StateRead(key=key, version=read.version)], [key], {"by": ref.task_id}, "bench")
            except StateConflict:
                store.release(ref)
                mine["conflicts"] += 1
                continue
            store.settle(ref, 0.0002, "UTC")
            mine["commits"] += 1
        with lock:
            for k, v in mine.items():
                counts[k] += v

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Result(writers, time.monotonic() - started, counts["commits"], counts["conflicts"], counts["refused"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each run")
    parser.add_argument("--keys", type=int, default=64, help="distinct state keys (fewer: more conflicts)")
    parser.add_argument("--writers", default="1,8,32", help="comma-separated writer counts")
    parser.add_argument(
        "--tenants",
        type=int,
        default=1,
        help="spread the writers over this many tenants (each tenant's budget and audit chain serialize its writers)",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.writers.split(",")]

    schema = f"chimera_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION chimera_owner").format(sql.Identifier(schema)))
    try:
        migrate.upgrade(url("chimera_owner", schema))
        store = StateStore(url("chimera_app", schema), pool_size=max(levels) + 2)
        persona = Persona(
            id=AGENT, name="Ava", handles={"twitter": "@ava"}, voice="warm", boundaries=["no politics"], examples=["hi"]
        )
        for t in range(args.tenants):
            tenant = f"{TENANT}{t}"
            store.ensure_campaign(
                CampaignSpec.model_validate(
                    {
                        "tenant_id": tenant,
                        "campaign_id": CAMPAIGN,
                        "name": "Load",
                        "persona": persona,
                        "goals": ["measure"],
                        "platforms": ["twitter"],
                        "daily_budget_usd": 1_000_000.0,
                    }
                )
            )
            store.set_budget(tenant, "agent", AGENT, 1_000_000.0, actor="bench")
            store.set_budget(tenant, "tenant", tenant, 1_000_000.0, actor="bench")
        run(store, 1, min(1.0, args.seconds), args.keys, 0)  # warm up the pool and the caches
        print(
            f"PostgreSQL, app role under RLS; {args.tenants} tenant(s), {args.keys} hot keys each; "
            f"{args.seconds:.0f}s per run"
        )
        print("each commit = reserve (3 budget levels) + read versions + OCC commit (+ audit) + settle")
        print(f"{'writers':>7} {'commits':>8} {'commits/s':>10} {'conflicts':>9} {'conflict rate':>13}")
        for i, writers in enumerate(levels, 1):
            r = run(store, writers, args.seconds, args.keys, i, args.tenants)
            print(f"{r.writers:>7} {r.commits:>8} {r.rate:>10.1f} {r.conflicts:>9} {r.conflict_rate:>12.1%}")
        for t in range(args.tenants):
            check = store.verify_audit(f"{TENANT}{t}")
            print(f"audit chain of {TENANT}{t}: {'ok' if check.ok else 'BROKEN'} ({check.entries} entries)")
        store.close()
    finally:
        with psycopg.connect(CONNINFO, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
