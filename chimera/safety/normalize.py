"""What a text may really say: the readings of it that the safety checks match, obfuscation undone.

Attackers write `1gn0re`, `ignore` with a Cyrillic i, `i g n o r e`, hide words with zero-width characters, or send
the payload as base64 or rot13 with "decode this". `readings(text)` gives the text as written (NFKC, no
zero-width characters) and each de-obfuscated reading that differs from it; a check fires if any reading
matches. Readings are for matching only: nothing here changes what is stored, shown or sent. `prepare_text` is
the one canonical form, which the harm classifier (chimera/safety/classifier.py) embeds; changing it means
retraining the classifier (scripts/train_judge_classifier.py).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

_ZERO_WIDTH = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
)
# Three or more single letters joined by one repeated separator: "i*g*n*o*r*e", "R-e-s-p-e-c-t".
_SPLIT_LETTERS = re.compile(r"(?<!\w)\w(?:([*\-.·•_/|~+])\w)(?:\1\w)+(?!\w)")
_WORD = re.compile(r"\w+")
# Cyrillic and Greek letters that look like Latin ones, written as escapes so the source shows no look-alikes.
_CONFUSABLES = str.maketrans(
    "\u0430\u0432\u0435\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0456\u0458\u0455\u04bb\u0501\u051b\u051d\u04cf\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0406\u0408\u0405\u04ae\u0500"
    "\u03b1\u03b5\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7",
    "abekmhopctyxijshdqwlABEKMHOPCTXIJSYD"  # Cyrillic
    "aeikvoptuxABEZHIKMNOPTYX",  # Greek
)
_CONFUSABLE_CHARS = frozenset(chr(c) for c in _CONFUSABLES)


# Single characters split by spaces (or one or two separators): "i g n o r e", "i . g . n".
_SPACED = re.compile(r"(?<!\w)(?:\w[ .\-_*|/]{1,2}){3,}\w(?!\w)")


def written(text: str) -> str:
    """The text as written: NFKC, without zero-width and bidi-control characters."""
    return _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))


def prepare_text(text: str) -> str:
    """The one canonical form (the classifier embeds it): written, letters split up with one repeated separator
    joined again, Cyrillic/Greek look-alikes inside Latin words folded, whitespace collapsed. Meaning-preserving:
    plain Russian or Greek is left alone."""
    text = _SPLIT_LETTERS.sub(lambda m: m.group(0).replace(m.group(1), ""), written(text))
    text = _fold_homoglyphs(text)
    return " ".join(text.split())


def readings(text: str, *, rot13: bool = True) -> list[str]:
    """The text as written, then each de-obfuscated reading that differs from it (no duplicates). `rot13=False`
    leaves the rot13 reading out (for a text compared with another's readings: one side decodes is enough)."""
    base = written(text)
    canonical = prepare_text(text)
    despaced = " ".join(despace(_fold_homoglyphs(base)).split())  # before whitespace collapses: gaps are words
    found = [base]
    rotated = [rot13_after_colon(base)] if rot13 else []
    # deleet keeps numbers; the blunt reading reads every digit as a letter ("1 h4te" -> "i hate").
    blunt = despaced.translate(_LEET)
    for reading in (canonical, despaced, deleet(despaced), blunt, decode_base64_blobs(base), *rotated):
        if reading and reading not in found:
            found.append(reading)
    return found


# A text that names rot13 (or a Caesar shift) may carry a payload in it; otherwise rot13 is noise to a classifier.
ROT13_HINT = re.compile(r"(?i)rot\s?-?13|c[ae]e?s[ae]r|sezar|цезар|凯撒|シーザー")


def hidden_readings(text: str) -> list[str]:
    """The readings that uncover something a reader would not see at once: letters spread out, base64 decoded,
    rot13 undone where the text names it. The classifier scores these beside `prepare_text`."""
    base, canonical = written(text), prepare_text(text)
    found = [" ".join(despace(_fold_homoglyphs(base)).split()), decode_base64_blobs(base)]
    if ROT13_HINT.search(base):
        found.append(rot13_after_colon(base))
    out: list[str] = []
    for reading in found:
        reading = prepare_text(reading)
        if reading and reading != canonical and reading not in out:
            out.append(reading)
    return out


def despace(text: str) -> str:
    """Letters spread out by separators joined again; a wider gap between them is a word break
    ("F o r g e t  y o u r" -> "Forget your")."""

    def join(match: re.Match[str]) -> str:
        words = re.split(r"\s{2,}|\s*[.\-_*|/]\s+|\s+[.\-_*|/]\s*", match.group(0))
        return " ".join(re.sub(r"[ .\-_*|/]", "", w) for w in words if w)

    return _SPACED.sub(join, text)


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def _fold_homoglyphs(text: str) -> str:
    """Fold Cyrillic/Greek look-alikes to Latin, but only in a text where some word mixes those scripts."""
    words = _WORD.findall(text)
    suspect = any(any(_is_latin(ch) for ch in w) and any(ch in _CONFUSABLE_CHARS for ch in w) for w in words)
    if not suspect:
        return text  # plain Russian or Greek is left alone

    def fold(match: re.Match[str]) -> str:
        word = match.group(0)
        letters = [ch for ch in word if ch.isalpha()]
        if letters and all(_is_latin(ch) or ch in _CONFUSABLE_CHARS for ch in letters):
            return word.translate(_CONFUSABLES)
        return word

    return _WORD.sub(fold, text)


_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s"})
_BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def deleet(text: str) -> str:
    """Leetspeak read back in words that mix letters and digits ('1gn0r3' -> 'ignore'); numbers stay numbers."""

    def fold(match: re.Match[str]) -> str:
        word = match.group(0)
        if any(ch.isalpha() for ch in word) and any(ch in "013457@$" for ch in word):
            return word.translate(_LEET)
        return word

    return re.sub(r"[\w@$]+", fold, text)


def decode_base64_blobs(text: str) -> str:
    """Base64 runs that decode to readable UTF-8 replaced by their text (a cut-off tail decodes as far as it goes)."""

    def decode(match: re.Match[str]) -> str:
        blob = match.group(0).rstrip("=")
        try:  # padded as sent; a cut-off tail (not a multiple of 4) decodes as far as it goes
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            try:
                raw = base64.b64decode(blob[: len(blob) - len(blob) % 4], validate=True)
            except (binascii.Error, ValueError):
                return match.group(0)
        decoded = raw.decode("utf-8", errors="ignore")
        printable = sum(ch.isprintable() for ch in decoded)
        return decoded if decoded and printable >= 0.9 * len(decoded) else match.group(0)

    return _BASE64_BLOB.sub(decode, text)


def rot13_after_colon(text: str) -> str:
    """ROT13 undone after the first colon ('ROT13 challenge, decode it: <payload>')."""
    head, sep, tail = text.partition(":")
    return head + sep + codecs.encode(tail, "rot13") if sep else codecs.encode(text, "rot13")
