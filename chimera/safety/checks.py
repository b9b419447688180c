"""The Judge's checks that do not rely on any model behaving well (issue 11, item 1).

- Hijack: a draft that carries out or quotes what an untrusted input asked for — its quoted target text,
  its links, handles, or payment and wallet details, or the input itself echoed — is high-risk.
- Links: a draft may link only to the campaign's allowed domains.
- Payments and giveaways: payment requests, wallet addresses and giveaways are high-risk unless the campaign
  declares them.
- Hostile mentions: a reply to a mention judged hostile is a deflection or goes to a human, never an
  auto-approved warm reply. A mention that hides an encoded payload (base64, rot13) counts as hostile.

Every check reads the texts as written and de-obfuscated (chimera/safety/normalize.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher

from chimera.models.offline_writer import DEFLECTION
from chimera.safety.normalize import ROT13_HINT, decode_base64_blobs, readings, written
from schemas.policy import ContentPolicy, SafetyFlag

# Replies that decline without engaging (the offline writer's; a live model is asked for one in WRITER_TASK).
DEFLECTIONS = (DEFLECTION,)
# A URL, or a bare domain with a path or a common TLD (attackers drop the scheme).
_URL = re.compile(
    r"(?i)\b(?:https?://|www\.)[^\s<>\"']+|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|ly|co|xyz|top|info|biz|me|app|link|"
    r"click|site|online|shop|ru|cn|tk|gg|to|cc|us|uk|de)(?:/[^\s<>\"']*)?\b"
)
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{2,30}\b")
_WALLET = re.compile(
    r"\b(?:0x[a-fA-F0-9]{40}|bc1[a-z0-9]{25,60}|[13][a-km-zA-HJ-NP-Z1-9]{25,34}|T[1-9A-HJ-NP-Za-km-z]{33}"
    r"|[1-9A-HJ-NP-Za-km-z]{43,44})\b"
)
_PAYMENT = re.compile(
    r"(?i)\b(?:paypal\.me|cash\.app|venmo|cashapp|zelle|western union|moneygram|gift ?cards?|iban\b|"
    r"send (?:me )?(?:\$|€|£|\d|btc|eth|usdt|crypto|money|bitcoin)|wire (?:me|the money)|"
    r"(?:btc|eth|usdt|sol|bnb)\s*(?:to|address|wallet)|seed phrase|private key|wallet address|"
    r"double your (?:money|crypto|btc|eth))"
)
_GIVEAWAY = re.compile(
    r"(?i)\b(?:give ?away|free (?:iphone|money|crypto|btc|eth|gift)|you(?:'ve| have)? won|claim your (?:prize|reward)"
    r"|sorteo|gewinnspiel|concours|sorteio|estrazione|çekiliş|розыгрыш|抽奖|プレゼント企画|hadiah gratis)\b"
)
# What an attacker asks to be posted: quoted text after a verb of saying or posting.
_OPEN_QUOTES = "\"'\u201c\u2018\u00ab"
_CLOSE_QUOTES = "\"'\u201d\u2019\u00bb"
_ASKED = re.compile(
    r"(?is)\b(?:tweet|post|say|write|reply(?: with)?|publish|repeat|print|type|respond(?: with)?|share)\b"
    rf"[^{_OPEN_QUOTES}{_CLOSE_QUOTES}]{{0,40}}[{_OPEN_QUOTES}](?P<target>[^{_CLOSE_QUOTES}]{{6,280}})[{_CLOSE_QUOTES}]"
)
ECHO_MIN_CHARS = 24  # a shorter shared run (a hashtag, a greeting) is not an echo
ECHO_SHARE = 0.5  # the draft is mostly text lifted from an input


def hijack_flags(draft: str, untrusted: Sequence[str], reply_to: str | None = None) -> list[SafetyFlag]:
    """High-risk flags for a draft that does what an untrusted input asked (`reply_to`: the mention's author,
    whom a reply may address)."""
    draft_readings = [r.casefold() for r in readings(draft, rot13=False)]
    found: list[SafetyFlag] = []

    def flag(rule: str, detail: str) -> None:
        if not any(f.rule == rule for f in found):
            found.append(SafetyFlag(rule=rule, severity="high", where="output", detail=detail[:160]))

    for index, text in enumerate(untrusted, start=1):
        for reading in readings(text):
            for m in _ASKED.finditer(reading):
                target = written(m.group("target")).casefold().strip()
                if len(target) >= 6 and any(target in d for d in draft_readings):
                    flag("hijack-target", f'posts the text input {index} asked for: "{target[:60]}"')
            for url in _URL.findall(reading):
                if _domain(url) and any(_domain(url) in d for d in draft_readings):
                    flag("hijack-link", f"links to {_domain(url)}, taken from input {index}")
            for handle in _HANDLE.findall(reading):
                # The author a reply answers may be named with or without '@' (Mention.author has none).
                if handle.lstrip("@").casefold() != (reply_to or "").lstrip("@").casefold() and any(
                    handle.casefold() in d for d in draft_readings
                ):
                    flag("hijack-handle", f"mentions {handle}, taken from input {index}")
            for wallet in _WALLET.findall(reading):
                if any(wallet.casefold() in d for d in draft_readings):
                    flag("hijack-payment", f"carries the wallet or payment detail of input {index}")
        if _echoes(draft, text):
            flag("hijack-echo", f"repeats input {index}")
    return found


def link_flags(draft: str, policy: ContentPolicy) -> list[SafetyFlag]:
    """A link to a domain that is not on the campaign's list."""
    out = []
    for url in {u for reading in readings(draft, rot13=False) for u in _URL.findall(reading)}:
        domain = _domain(url)
        if domain and not any(domain == a or domain.endswith("." + a) for a in policy.allowed_domains):
            out.append(SafetyFlag(rule="link-not-allowed", severity="high", where="output",
                                  detail=f"links to {domain}, not an allowed domain"))  # fmt: skip
    return out[:3]


def payment_flags(draft: str, policy: ContentPolicy) -> list[SafetyFlag]:
    """Payment requests, wallet addresses and giveaways the campaign has not declared."""
    out = []
    texts = readings(draft)
    if not policy.payments and any(_PAYMENT.search(t) or _WALLET.search(t) for t in texts):
        out.append(SafetyFlag(rule="payment-undeclared", severity="high", where="output",
                              detail="asks for a payment or names a wallet; the campaign declares none"))  # fmt: skip
    if not policy.giveaways and any(_GIVEAWAY.search(t) for t in texts):
        out.append(SafetyFlag(rule="giveaway-undeclared", severity="high", where="output",
                              detail="announces a giveaway or prize; the campaign declares none"))  # fmt: skip
    return out


def hostile_reply_flags(draft: str, hostile_because: Iterable[str]) -> list[SafetyFlag]:
    """A reply to a hostile mention that is not a deflection goes to a human."""
    reasons = sorted(set(hostile_because))
    if not reasons or is_deflection(draft):
        return []
    return [SafetyFlag(rule="reply-to-hostile", severity="low", where="output",
                       detail=f"replies warmly to a mention judged hostile ({', '.join(reasons)})")]  # fmt: skip


def hides_payload(text: str) -> bool:
    """The text carries something encoded for a machine to decode: a base64 run that decodes to text, or a
    rot13 (Caesar) challenge. People do not write to a persona that way; attacks smuggling instructions do."""
    base = written(text)
    return decode_base64_blobs(base) != base or bool(ROT13_HINT.search(base))


def is_deflection(text: str) -> bool:
    return any(d in written(text) for d in DEFLECTIONS)


def _domain(url: str) -> str:
    host = re.sub(r"(?i)^(?:https?://)?(?:www\.)?", "", url).split("/", 1)[0].split(":", 1)[0]
    return host.casefold().strip(".")


def _echoes(draft: str, source: str) -> bool:
    """The draft's longest run shared with the input is long and most of the draft."""
    a, b = written(draft).casefold(), written(source).casefold()
    if not a or not b:
        return False
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size >= ECHO_MIN_CHARS and match.size >= ECHO_SHARE * len(a.strip())
