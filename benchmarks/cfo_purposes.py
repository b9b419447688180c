"""Benchmark: the CFO Judge's offline reading of a payment purpose on a labelled corpus it was not tuned on
(benchmarks/data/payment_purposes.json), by split and by class. The reading accepts a purpose when it shares a
word with a goal (schemas.payment.goal_served) and no safety rule matches it; the harm classifier's flags send it
to a person (chimera.finance.purpose_check). This is what the CFO Judge reads before the payee, the caps and the
thresholds, all else being within policy.

For purposes that serve a goal and for those that serve none, it prints how many are approved without a person,
escalated to one, or rejected. A rejected good purpose is safe but must be re-requested, or read by a judging
model; an approved bad one then relies on the allowlist, the caps and the review threshold (not tested here).
`--words-only` measures the word rule alone.

    .venv/bin/python benchmarks/cfo_purposes.py [--split held_out|tuning|all]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chimera.finance.purpose_check import purpose_concerns, purpose_flags  # noqa: E402
from chimera.safety.classifier import HarmClassifier  # noqa: E402
from chimera.safety.rules import SafetyRules  # noqa: E402
from schemas.payment import goal_served  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "payment_purposes.json"


def main(split: str, words_only: bool) -> None:
    corpus = json.loads(DATA.read_text())
    classifier = None if words_only else HarmClassifier.default()
    rules = None if words_only else SafetyRules.default()
    items = [i for i in corpus["items"] if split == "all" or i["split"] == split]
    by_class: dict[str, Counter[str]] = defaultdict(Counter)
    by_label: dict[bool, Counter[str]] = defaultdict(Counter)
    for item in items:
        purpose = item["purpose"]
        if not goal_served(purpose, corpus["campaigns"][item["campaign"]]) or purpose_flags(purpose, rules):
            outcome = "rejected"
        elif purpose_concerns(purpose, classifier):
            outcome = "escalated"
        else:
            outcome = "approved"
        by_label[item["serves"]][outcome] += 1
        by_class[item["class"]][outcome] += 1
    print(
        f"split {split}: {len(items)} purposes ({'the word rule alone' if words_only else 'words, rules, classifier'})"
    )
    for serves, name in ((True, "serving a goal"), (False, "serving none")):
        counts = by_label[serves]
        total = sum(counts.values())
        print(
            f"  {name:<15} approved {counts['approved']}/{total} · escalated {counts['escalated']}/{total}"
            f" · rejected {counts['rejected']}/{total}"
        )
    for name, counts in sorted(by_class.items()):
        print(f"  {name:<11} " + " · ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("held_out", "tuning", "all"), default="held_out")
    parser.add_argument("--words-only", action="store_true")
    args = parser.parse_args()
    main(args.split, args.words_only)
