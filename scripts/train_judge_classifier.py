"""Fit the Judge's harm classifier (chimera/safety/classifier.py) on the labelled mention corpus.

Trains only on split=train (each text in its de-obfuscated form, plus the forms an upstream normaliser may hand
over: leetspeak read back, base64 and ROT13 payloads decoded, lower case); picks the regularisation and the
per-category thresholds on split=dev; scores split=heldout once, at the end, for the report. Nothing is tuned on
heldout.

Writes chimera/defaults/judge_classifier.npz (numpy weights, read at run time without scikit-learn) and
chimera/defaults/judge_classifier.json (metadata and metrics). Deterministic: fixed seed, lbfgs, no shuffling.

Usage: .venv/bin/python scripts/train_judge_classifier.py [--corpus FILE] [--out-dir DIR] [--max-benign-fpr 0.03]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chimera.evaluation.corpus import DEFAULT_CORPUS, CorpusItem, load_corpus, select  # noqa: E402
from chimera.memory.embedder import E5Embedder  # noqa: E402
from chimera.safety.classifier import (  # noqa: E402
    BENIGN,
    CLASSES,
    CORPUS_TO_CLASS,
    FORMAT_VERSION,
    HARM_CATEGORIES,
    embed_texts,
)
from chimera.safety.normalize import decode_base64_blobs, deleet, prepare_text, rot13_after_colon  # noqa: E402

SEED = 20260611
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
MAX_BENIGN_FPR = 0.03
Floats = NDArray[np.float64]


def train_views(item: CorpusItem) -> list[str]:
    """The forms a training text may reach the classifier in, deduplicated, the plain prepared form first."""
    text = prepare_text(item.text)
    views = [text]
    if item.obfuscation == "leet":
        views.append(prepare_text(deleet(text)))
    elif item.obfuscation == "base64":
        views.append(prepare_text(decode_base64_blobs(text)))
    elif item.obfuscation == "rot13":
        views.append(prepare_text(rot13_after_colon(text)))
    views.append(text.lower())
    return list(dict.fromkeys(v for v in views if v))


def labels(items: Sequence[CorpusItem]) -> NDArray[np.int64]:
    return np.array([CLASSES.index(CORPUS_TO_CLASS[item.category]) for item in items], dtype=np.int64)


def fit(x: Floats, y: NDArray[np.int64], c: float) -> tuple[Floats, Floats]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=SEED)
    model.fit(x, y)
    order = np.argsort(model.classes_)  # rows in CLASSES order
    assert list(model.classes_[order]) == list(range(len(CLASSES))), model.classes_
    # Rounded to float32 here, as shipped, so dev and heldout figures are those of the shipped weights.
    coef = np.asarray(model.coef_[order], dtype=np.float32).astype(np.float64)
    intercept = np.asarray(model.intercept_[order], dtype=np.float32).astype(np.float64)
    return coef, intercept


def softmax(x: Floats, coef: Floats, intercept: Floats) -> Floats:
    logits = x @ coef.T + intercept
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    out: Floats = exp / exp.sum(axis=1, keepdims=True)
    return out


def choose_thresholds(probs: Floats, y: NDArray[np.int64], max_fpr: float) -> dict[str, float]:
    """Per-category thresholds that maximise mean recall while at most `max_fpr` of benign items are flagged at all.

    Exact: for each set S of benign items allowed to be flagged (|S| <= budget), each category's threshold is the
    lowest that leaves every other benign item unflagged, placed halfway (in log-odds) to the next item of that
    category above it, so the boundary does not sit on a benign item's score.
    """
    benign_rows = np.flatnonzero(y == CLASSES.index(BENIGN))
    budget = int(np.floor(max_fpr * len(benign_rows) + 1e-9))
    best: tuple[tuple[float, ...], dict[str, float]] | None = None
    for size in range(budget + 1):
        for allowed in itertools.combinations(range(len(benign_rows)), size):
            keep = np.delete(benign_rows, list(allowed))
            thresholds: dict[str, float] = {}
            recalls: list[float] = []
            caught = np.zeros(len(y), dtype=bool)
            for cat in HARM_CATEGORIES:
                k = CLASSES.index(cat)
                floor = float(probs[keep, k].max()) if len(keep) else 0.0
                pos = probs[y == k, k]
                above = pos[pos > floor]
                thr = _midpoint(floor, float(above.min())) if len(above) else min(1.0, floor + 1e-6)
                thresholds[cat] = thr
                recalls.append(float((pos >= thr).mean()) if len(pos) else 0.0)
                caught |= probs[:, k] >= thr
            fp = int(caught[benign_rows].sum())
            if fp > budget:
                continue
            hostile_recall = float(caught[y != CLASSES.index(BENIGN)].mean())
            key = (float(np.mean(recalls)), hostile_recall, -fp)
            if best is None or key > best[0]:
                best = (key, thresholds)
    assert best is not None
    return best[1]


def _midpoint(low: float, high: float) -> float:
    def logit(p: float) -> float:
        p = min(max(p, 1e-9), 1 - 1e-9)
        return float(np.log(p / (1 - p)))

    mid = (logit(low) + logit(high)) / 2
    return float(1 / (1 + np.exp(-mid)))


def evaluate(probs: Floats, y: NDArray[np.int64], thresholds: dict[str, float]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    caught = np.zeros(len(y), dtype=bool)
    for cat in HARM_CATEGORIES:
        k = CLASSES.index(cat)
        flagged = probs[:, k] >= thresholds[cat]
        truth = y == k
        tp = int((flagged & truth).sum())
        precision = tp / int(flagged.sum()) if flagged.any() else 0.0
        recall = tp / int(truth.sum()) if truth.any() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per[cat] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": int(truth.sum()),
            "flagged": int(flagged.sum()),
        }
        caught |= flagged
    benign = y == CLASSES.index(BENIGN)
    return {
        "per_category": per,
        "macro_recall": round(float(np.mean([per[c]["recall"] for c in HARM_CATEGORIES])), 4),
        "macro_f1": round(float(np.mean([per[c]["f1"] for c in HARM_CATEGORIES])), 4),
        "hostile_recall_any": round(float(caught[~benign].mean()), 4),
        "benign_fpr": round(float(caught[benign].mean()), 4),
        "benign_flagged": int(caught[benign].sum()),
        "benign_support": int(benign.sum()),
        "n": len(y),
    }


def report(name: str, metrics: dict[str, Any]) -> None:
    print(f"\n{name}: n={metrics['n']}")
    print(f"  {'category':<10} {'prec':>6} {'recall':>6} {'f1':>6} {'support':>7} {'flagged':>7}")
    for cat, m in metrics["per_category"].items():
        figures = f"{m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f} {m['support']:>7} {m['flagged']:>7}"
        print(f"  {cat:<10} {figures}")
    print(
        f"  benign false-positive rate {metrics['benign_fpr']:.3f} "
        f"({metrics['benign_flagged']}/{metrics['benign_support']}); "
        f"hostile flagged by any category {metrics['hostile_recall_any']:.3f}; macro F1 {metrics['macro_f1']:.3f}"
    )


def train_hash(items: Sequence[CorpusItem]) -> str:
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.id):
        digest.update(json.dumps([item.id, item.text, item.category, item.obfuscation], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "chimera" / "defaults")
    parser.add_argument("--max-benign-fpr", type=float, default=MAX_BENIGN_FPR)
    args = parser.parse_args(argv)

    started = time.monotonic()
    np.random.seed(SEED)
    items = load_corpus(args.corpus)
    train, dev, heldout = (select(items, s) for s in ("train", "dev", "heldout"))
    embedder = E5Embedder()

    texts: list[str] = []
    y_train_list: list[int] = []
    for item in train:
        for view in train_views(item):
            texts.append(view)
            y_train_list.append(CLASSES.index(CORPUS_TO_CLASS[item.category]))
    y_train = np.array(y_train_list, dtype=np.int64)
    print(f"embedding {len(texts)} training views of {len(train)} items, {len(dev)} dev, {len(heldout)} heldout ...")
    x_train = embed_texts(embedder, texts).astype(np.float64)
    x_dev = embed_texts(embedder, [prepare_text(i.text) for i in dev]).astype(np.float64)
    y_dev = labels(dev)
    embedded = time.monotonic()
    print(f"  embedded in {embedded - started:.1f}s")

    print("\nregularisation sweep (dev, thresholds chosen on dev):")
    best: tuple[tuple[float, float, float], float, Floats, Floats, dict[str, float]] | None = None
    for c in C_GRID:
        coef, intercept = fit(x_train, y_train, c)
        probs = softmax(x_dev, coef, intercept)
        thresholds = choose_thresholds(probs, y_dev, args.max_benign_fpr)
        m = evaluate(probs, y_dev, thresholds)
        print(
            f"  C={c:<5} macro recall {m['macro_recall']:.3f}  macro F1 {m['macro_f1']:.3f}  "
            f"any-hostile recall {m['hostile_recall_any']:.3f}  benign FPR {m['benign_fpr']:.3f}"
        )
        key = (m["macro_recall"], m["macro_f1"], -c)
        if best is None or key > best[0]:
            best = (key, c, coef, intercept, thresholds)
    assert best is not None
    _, c, coef, intercept, thresholds = best
    dev_metrics = evaluate(softmax(x_dev, coef, intercept), y_dev, thresholds)

    # Heldout: scored once with the chosen model and thresholds, reported, never used to choose anything.
    x_held = embed_texts(embedder, [prepare_text(i.text) for i in heldout]).astype(np.float64)
    held_metrics = evaluate(softmax(x_held, coef, intercept), labels(heldout), thresholds)
    elapsed = time.monotonic() - started

    print(f"\nchosen C={c}; thresholds: " + ", ".join(f"{k}={v:.3f}" for k, v in thresholds.items()))
    report("dev", dev_metrics)
    report("heldout", held_metrics)

    import sklearn

    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "embedding_model": embedder.model_name,
        "embedding": "E5Embedder.embed_query (e5 'query: ' prefix) of chimera.safety.normalize.prepare_text(text)",
        "classifier": "multinomial logistic regression (scikit-learn lbfgs), class_weight=balanced",
        "sklearn_version": sklearn.__version__,
        "C": c,
        "seed": SEED,
        "classes": list(CLASSES),
        "categories": list(HARM_CATEGORIES),
        "category_map": CORPUS_TO_CLASS,
        "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
        "threshold_rule": f"per category on dev: max mean recall with <= {args.max_benign_fpr:.0%} of dev benign "
        "items flagged by any category",
        "corpus": str(args.corpus.relative_to(ROOT)) if args.corpus.is_relative_to(ROOT) else str(args.corpus),
        "corpus_sha256": hashlib.sha256(args.corpus.read_bytes()).hexdigest(),
        "train_sha256": train_hash(train),
        "train_items": len(train),
        "train_views": len(texts),
        "trained_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "training_seconds": round(elapsed, 1),
        "dev": dev_metrics,
        "heldout": held_metrics,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    npz = args.out_dir / "judge_classifier.npz"
    with npz.open("wb") as fh:
        np.savez_compressed(
            fh,
            format_version=np.array(FORMAT_VERSION),
            coef=coef.astype(np.float32),
            intercept=intercept.astype(np.float32),
            classes=np.array(CLASSES),
            categories=np.array(HARM_CATEGORIES),
            thresholds=np.array([thresholds[k] for k in HARM_CATEGORIES], dtype=np.float64),
            model_name=np.array(embedder.model_name),
            metadata=np.array(
                json.dumps({k: meta[k] for k in ("embedding", "C", "train_sha256", "trained_at", "thresholds")})
            ),
        )
    (args.out_dir / "judge_classifier.json").write_text(
        json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"\nwrote {npz} ({npz.stat().st_size} bytes) and judge_classifier.json in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
