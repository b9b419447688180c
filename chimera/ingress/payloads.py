"""Webhook bodies -> mentions to answer. Untrusted input: every shape is checked, nothing is assumed.

X (Account Activity API): `{"for_user_id": "<account id>", "tweet_create_events": [<Tweet object>, ...]}`;
a Tweet object carries `id_str`, `text` (or `extended_tweet.full_text` when `truncated`), `created_at`
("Wed Oct 10 20:19:24 +0000 2018"), `user: {id_str, screen_name}`, `in_reply_to_status_id_str`, and
`retweeted_status` for a retweet. Other event kinds (favorite_events, follow_events, ...) are not mentions.

Meta (Instagram): `{"object": "instagram", "entry": [{"id": "<account id>", "time": ..., "changes":
[{"field": "comments", "value": {"id", "text", "from": {"id", "username"}, "media": {"id", ...}}}]}]}`.
A `mentions` change carries only `comment_id` / `media_id` (its text needs a Graph API read), so it is left to
polling unless it carries the comment itself.

A body that is not what the platform documents raises PayloadError (the ingress answers 400) before anything
is acted on; well-formed events that are not mentions to answer are returned as `Skipped`, with the reason.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chimera.db.routes import handle_key
from schemas.plan import Mention

X_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"
META_COMMENT_FIELDS = ("comments", "live_comments")


class PayloadError(ValueError):
    """The body is not a delivery of the documented shape; the message says where."""


@dataclass(frozen=True)
class PushedMention:
    platform: str  # Chimera's platform name: twitter | instagram
    account_id: str  # the receiving account, as the platform names it (X for_user_id, Meta entry id)
    event_id: str  # the platform's id of the event: the tweet id, the comment id
    mention: Mention


@dataclass(frozen=True)
class Skipped:
    platform: str
    event_id: str
    reason: str


@dataclass(frozen=True)
class Batch:
    mentions: list[PushedMention] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise PayloadError(f"the body is JSON {type(payload).__name__}, not an object")
    return payload


# --- X ---------------------------------------------------------------------------------------------


def parse_x(payload: dict[str, Any]) -> Batch:
    account = _text(payload.get("for_user_id"), "for_user_id")
    events = payload.get("tweet_create_events", [])
    if not isinstance(events, list):
        raise PayloadError("tweet_create_events is not a list")
    batch = Batch()
    for i, tweet in enumerate(events):
        where = f"tweet_create_events[{i}]"
        if not isinstance(tweet, dict):
            raise PayloadError(f"{where} is not an object")
        _x_event(account, tweet, where, batch)
    return batch


def _x_event(account: str, tweet: dict[str, Any], where: str, batch: Batch) -> None:
    tweet_id = _text(tweet.get("id_str"), f"{where}.id_str")
    user = tweet.get("user")
    if not isinstance(user, dict):
        raise PayloadError(f"{where}.user is not an object")
    author_id = _text(user.get("id_str"), f"{where}.user.id_str")
    author = _text(user.get("screen_name"), f"{where}.user.screen_name")
    if author_id == account or handle_key(author) == handle_key(account):
        # The account's own tweets (its replies too) come back as events: answering them would loop.
        batch.skipped.append(Skipped("twitter", tweet_id, "the account's own tweet"))
        return
    if "retweeted_status" in tweet:
        batch.skipped.append(Skipped("twitter", tweet_id, "a retweet, not a mention"))
        return
    mention = Mention(
        id=tweet_id,
        platform="twitter",
        author=author,
        text=html.unescape(_x_text(tweet, where)),  # v1.1 payloads escape &, < and >
        created_at=_x_time(tweet.get("created_at")),
    )
    batch.mentions.append(PushedMention("twitter", account, tweet_id, mention))


def _x_text(tweet: dict[str, Any], where: str) -> str:
    extended = tweet.get("extended_tweet")
    if tweet.get("truncated") and isinstance(extended, dict) and isinstance(extended.get("full_text"), str):
        return str(extended["full_text"])
    for key in ("full_text", "text"):
        if isinstance(tweet.get(key), str):
            return str(tweet[key])
    raise PayloadError(f"{where} has no text")


def _x_time(value: object) -> str:
    if not isinstance(value, str):
        return ""
    try:
        return _iso(datetime.strptime(value, X_TIME_FORMAT))
    except ValueError:
        return value  # kept as given: the time is informational, the mention is still real


# --- Meta (Instagram) ------------------------------------------------------------------------------


def parse_meta(payload: dict[str, Any]) -> Batch:
    kind = payload.get("object")
    if not isinstance(kind, str):
        raise PayloadError("object is missing")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("entry is not a list")
    batch = Batch()
    if kind != "instagram":  # a Page or WhatsApp subscription on the same app: not ours to answer
        batch.skipped.append(Skipped("instagram", "", f"object {kind!r} is not instagram"))
        return batch
    for i, entry in enumerate(entries):
        where = f"entry[{i}]"
        if not isinstance(entry, dict):
            raise PayloadError(f"{where} is not an object")
        account = _text(_id(entry.get("id")), f"{where}.id")
        changes = entry.get("changes", [])
        if "field" in entry and "value" in entry:  # the flat shape some of Meta's examples show
            changes = [{"field": entry["field"], "value": entry["value"]}]
        if not isinstance(changes, list):
            raise PayloadError(f"{where}.changes is not a list")
        for j, change in enumerate(changes):
            if not isinstance(change, dict):
                raise PayloadError(f"{where}.changes[{j}] is not an object")
            _meta_change(account, entry.get("time"), change, f"{where}.changes[{j}]", batch)
    return batch


def _meta_change(account: str, sent_at: object, change: dict[str, Any], where: str, batch: Batch) -> None:
    name = _text(change.get("field"), f"{where}.field")
    value = change.get("value")
    if not isinstance(value, dict):
        raise PayloadError(f"{where}.value is not an object")
    if name == "mentions" and "text" not in value:
        ref = str(_id(value.get("comment_id")) or _id(value.get("media_id")) or "")
        batch.skipped.append(Skipped("instagram", ref, "a mention without its text: left to polling"))
        return
    if name not in (*META_COMMENT_FIELDS, "mentions"):
        batch.skipped.append(Skipped("instagram", "", f"field {name!r} is not a comment"))
        return
    comment_id = _text(_id(value.get("id")), f"{where}.value.id")
    sender = value.get("from")
    if not isinstance(sender, dict):
        raise PayloadError(f"{where}.value.from is not an object")
    author = _text(sender.get("username"), f"{where}.value.from.username")
    if _id(sender.get("id")) == account or handle_key(author) == handle_key(account):
        batch.skipped.append(Skipped("instagram", comment_id, "the account's own comment"))
        return
    text = value.get("text")
    if not isinstance(text, str):
        raise PayloadError(f"{where}.value.text is not a string")
    mention = Mention(
        id=comment_id,
        platform="instagram",
        author=author,
        text=text,
        created_at=_meta_time(value.get("timestamp"), sent_at),
    )
    batch.mentions.append(PushedMention("instagram", account, comment_id, mention))


def _meta_time(*candidates: object) -> str:
    """The comment's own time when given, else when Meta sent the notification (entry.time, epoch seconds)."""
    for raw in candidates:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return _iso(datetime.fromtimestamp(raw, UTC))
        if isinstance(raw, str) and raw:
            return raw
    return ""


# --- shared ----------------------------------------------------------------------------------------


def _id(value: object) -> str | None:
    """Meta documents ids as numeric strings; a JSON number is accepted as the same id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else None


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"{where} is missing or not a non-empty string")
    return value


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
