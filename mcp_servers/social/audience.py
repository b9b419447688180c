"""The sandbox's simulated audience: how many people see, like, answer and repost a post.

A learning loop needs feedback that is stable and that tells posts apart, so the simulation is deterministic:
- `appeal` is a function of the text alone: a base drawn from a hash of the text (0.7 to 1.3), plus a bonus
  for asking the reader a question (a "?" outside links) and for a hashtag, minus a penalty for a wall of text.
- Impressions are followers x the platform's reach x appeal x `exposure(age)`: the share of the eventual
  audience reached by then, 1 - exp(-age / 16 h), so about 95% by 48 hours and flat after that.
- Likes, replies and reposts are impressions x the platform's rate x appeal x a small per-post jitter (also
  from the hash), so an appealing post is both seen more and answered more.
- A reply (a post answering a mention) is seen mostly by the thread: a quarter of the audience.
Counts are rounded down, so every count grows with age and never shrinks.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass

from mcp_servers.social.backend import Platform
from mcp_servers.social.rules import count_hashtags

# exposure(48 h) = 1 - e^-3, about 0.95: the audience has mostly seen a post within two days.
SATURATION_SECONDS = 48 * 3600.0
TIME_CONSTANT_SECONDS = SATURATION_SECONDS / 3
REPLY_REACH = 0.25
QUESTION_BONUS = 0.25
HASHTAG_BONUS = 0.15
LONG_TEXT_PENALTY = 0.35
MIN_APPEAL = 0.1

_URL = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class Audience:
    """One platform's audience, per post of appeal 1 once it has saturated."""

    reach: float  # share of the followers who see it
    like_rate: float  # per impression
    reply_rate: float
    repost_rate: float
    long_text_chars: int  # beyond this a post reads as a wall of text


AUDIENCES: dict[Platform, Audience] = {
    "twitter": Audience(reach=0.12, like_rate=0.025, reply_rate=0.003, repost_rate=0.004, long_text_chars=220),
    # Instagram: reposts are shares (sends), rarer than likes and comments.
    "instagram": Audience(reach=0.30, like_rate=0.05, reply_rate=0.004, repost_rate=0.002, long_text_chars=1200),
}


@dataclass(frozen=True)
class Engagement:
    likes: int
    replies: int
    reposts: int
    impressions: int


def _digest(text: str) -> bytes:
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode()).digest()


def _unit(digest: bytes, index: int) -> float:
    """A number in [0, 1) from the 8 bytes at `index` of the digest."""
    return int.from_bytes(digest[index : index + 8], "big") / 2**64


def asks_a_question(text: str) -> bool:
    return "?" in _URL.sub("", text)


def base_appeal(text: str) -> float:
    """What the hash of the text makes of it, 0.7 to 1.3: the taste of an audience no rule explains."""
    return 0.7 + 0.6 * _unit(_digest(text), 0)


def appeal(text: str, long_text_chars: int) -> float:
    """How much the audience takes to the text: its base appeal, with the bonuses and the penalty."""
    value = base_appeal(text)
    if asks_a_question(text):
        value += QUESTION_BONUS
    if count_hashtags(text):
        value += HASHTAG_BONUS
    if len(text) > long_text_chars:
        value -= LONG_TEXT_PENALTY
    return max(value, MIN_APPEAL)


def exposure(age_seconds: float) -> float:
    """The share of its eventual audience a post has reached at this age (0 before it exists)."""
    return 1.0 - math.exp(-max(age_seconds, 0.0) / TIME_CONSTANT_SECONDS)


def simulate(platform: Platform, text: str, *, age_seconds: float, followers: int, is_reply: bool) -> Engagement:
    """The engagement of a post with this text, at this age, from an account with this many followers."""
    audience = AUDIENCES[platform]
    digest = _digest(text)
    taste = appeal(text, audience.long_text_chars)
    seen = max(followers, 0) * audience.reach * taste * exposure(age_seconds) * (REPLY_REACH if is_reply else 1.0)

    def acted(rate: float, index: int) -> int:
        jitter = 0.85 + 0.3 * _unit(digest, index)  # posts of equal appeal still differ a little
        return math.floor(seen * rate * taste * jitter)

    return Engagement(
        likes=acted(audience.like_rate, 8),
        replies=acted(audience.reply_rate, 16),
        reposts=acted(audience.repost_rate, 24),
        impressions=math.floor(seen),
    )
