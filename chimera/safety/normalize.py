"""What a text may really say: the readings of it that the safety checks match, obfuscation undone.

Attackers write `1gn0re`, `ignore` with a Cyrillic i, `i g n o r e`, hide words with zero-width characters, or send
the payload as base64 or rot13 with "decode this". `readings(text)` gives the text as written (NFKC, no
zero-width characters) and each de-obfuscated reading that differs from it; a check fires if any reading
matches. Readings are for matching only: nothing here changes what is stored, shown or sent.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

_ZERO_WIDTH = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# Latin look-alikes from Cyrillic and Greek (the common confusables; NFKC already folds full-width forms).
# Latin look-alikes from Cyrillic, Greek and others (the common confusables; NFKC already folds full-width forms),
# written as escapes: each character of _LOOKALIKE reads as the letter at the same place in _LATIN.
_LOOKALIKE = (
    "\u0430\u0432\u0435\u0451\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443"
    "\u0445\u0456\u0457\u0458\u0455\u0501\u0261\u0578\u0410\u0412\u0415\u041a"
    "\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0406\u0408\u0405\u03b1\u03bf"
    "\u03b5\u03b9\u03ba\u03bd\u03c1\u03c4\u03c5\u03c7\u0391\u0392\u0395\u0399"
    "\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u0396\u0397"
)
_LATIN = "abeekmhopctyxiijsdgnABEKMHOPCTXIJSaoeikvptuxABEIKMNOPTYXZH"
_CONFUSABLES = str.maketrans(_LOOKALIKE, _LATIN)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
# Single characters split by spaces or punctuation: "i g n o r e", "i.g.n.o.r.e", "i-g-n-o-r-e".
_SPACED = re.compile(r"(?<!\w)(?:\w[ .\-_*|/]{1,2}){3,}\w(?!\w)")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")


def written(text: str) -> str:
    """The text as written: NFKC, without zero-width and bidi-control characters."""
    return _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))


def readings(text: str, *, rot13: bool = True) -> list[str]:
    """The text as written, then each de-obfuscated reading that differs from it (no duplicates). `rot13=False`
    leaves the rot13 reading out (for a text compared with another's readings: one side decodes is enough)."""
    base = written(text)
    found = [base]
    latin = base.translate(_CONFUSABLES)
    despaced = _SPACED.sub(lambda m: re.sub(r"[ .\-_*|/]", "", m.group(0)), latin)
    unleet = despaced.translate(_LEET)
    rotated = [codecs.encode(base, "rot13")] if rot13 else []
    for reading in (latin, despaced, unleet, *_decoded(base), *rotated):
        if reading and reading not in found:
            found.append(reading)
    return found


def _decoded(text: str) -> list[str]:
    """Base64 segments that decode to readable text."""
    out = []
    for segment in _BASE64.findall(text):
        try:
            raw = base64.b64decode(segment + "=" * (-len(segment) % 4), validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        printable = sum(ch.isprintable() or ch.isspace() for ch in decoded)
        if decoded.strip() and printable / len(decoded) > 0.95:
            out.append(written(decoded))
    return out
