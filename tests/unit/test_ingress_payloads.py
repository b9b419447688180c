"""Parsing both kinds of webhook body: the documented shapes, what is skipped, and malformed bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chimera.ingress.payloads import PayloadError, parse_json, parse_meta, parse_x
from schemas.plan import Mention

ACCOUNT = "2244994945"


def tweet(tweet_id: str, author: str = "ana", author_id: str = "99", **extra: Any) -> dict[str, Any]:
    return {
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
        "id": int(tweet_id),
        "id_str": tweet_id,
        "text": f"@mira_threads hi from {author} &amp; friends",
        "truncated": False,
        "in_reply_to_status_id_str": None,
        "user": {"id_str": author_id, "screen_name": author},
        **extra,
    }


def x_body(*tweets: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"for_user_id": ACCOUNT, "user_has_blocked": "false", "tweet_create_events": list(tweets), **extra}


def comment(comment_id: str = "17865799348089039", username: str = "ana", from_id: str = "1790") -> dict[str, Any]:
    return {
        "field": "comments",
        "value": {
            "id": comment_id,
            "from": {"id": from_id, "username": username},
            "text": "where did you find that jacket?",
            "media": {"id": "123123123", "media_product_type": "FEED"},
        },
    }


def meta_body(*changes: dict[str, Any], account: str = "17841405822304914") -> dict[str, Any]:
    return {"object": "instagram", "entry": [{"id": account, "time": 1700000000, "changes": list(changes)}]}


def test_an_x_mention_becomes_a_mention_with_the_tweet_id() -> None:
    batch = parse_x(x_body(tweet("1050118621198921728")))
    [pushed] = batch.mentions
    assert (pushed.platform, pushed.account_id, pushed.event_id) == ("twitter", ACCOUNT, "1050118621198921728")
    assert pushed.mention == Mention(
        id="1050118621198921728",
        platform="twitter",
        author="ana",
        text="@mira_threads hi from ana & friends",  # v1.1 escapes entities; the mention carries the text
        created_at="2018-10-10T20:19:24Z",
    )
    assert batch.skipped == []


def test_x_skips_the_accounts_own_tweets_and_retweets() -> None:
    own = tweet("2", author="mira_threads", author_id=ACCOUNT)
    retweet = tweet("3", retweeted_status={"id_str": "1"})
    batch = parse_x(x_body(own, retweet, tweet("4")))
    assert [m.event_id for m in batch.mentions] == ["4"]
    assert [(s.event_id, s.reason) for s in batch.skipped] == [
        ("2", "the account's own tweet"),
        ("3", "a retweet, not a mention"),
    ]


def test_x_sandbox_deliveries_name_the_account_by_handle() -> None:
    own = tweet("5", author="Mira_Threads", author_id="sandbox-mira")
    batch = parse_x({"for_user_id": "@mira_threads", "tweet_create_events": [own]})
    assert batch.mentions == [] and batch.skipped[0].reason == "the account's own tweet"


def test_x_reads_the_full_text_of_a_truncated_tweet() -> None:
    long = tweet("6", truncated=True, extended_tweet={"full_text": "the whole question, past 140 characters"})
    assert parse_x(x_body(long)).mentions[0].mention.text == "the whole question, past 140 characters"


def test_x_events_that_are_not_tweets_are_not_mentions() -> None:
    batch = parse_x({"for_user_id": ACCOUNT, "favorite_events": [{"id": "x"}]})
    assert batch.mentions == [] and batch.skipped == []


def test_an_unparsable_x_time_is_kept_as_given() -> None:
    assert parse_x(x_body(tweet("7", created_at="yesterday"))).mentions[0].mention.created_at == "yesterday"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tweet_create_events": []}, "for_user_id"),
        ({"for_user_id": 12}, "for_user_id"),
        ({"for_user_id": ACCOUNT, "tweet_create_events": {"id_str": "1"}}, "not a list"),
        ({"for_user_id": ACCOUNT, "tweet_create_events": ["1"]}, r"tweet_create_events\[0\] is not an object"),
        (x_body({**tweet("8"), "id_str": None}), r"tweet_create_events\[0\]\.id_str"),
        (x_body({**tweet("9"), "user": "ana"}), r"\.user is not an object"),
        (x_body({k: v for k, v in tweet("10").items() if k != "text"}), "has no text"),
    ],
)
def test_malformed_x_bodies_say_what_is_wrong(body: dict[str, Any], message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_x(body)


def test_a_meta_comment_becomes_a_mention_with_the_comment_id() -> None:
    batch = parse_meta(meta_body(comment()))
    [pushed] = batch.mentions
    assert (pushed.platform, pushed.account_id, pushed.event_id) == (
        "instagram",
        "17841405822304914",
        "17865799348089039",
    )
    assert pushed.mention == Mention(
        id="17865799348089039",
        platform="instagram",
        author="ana",
        text="where did you find that jacket?",
        created_at="2023-11-14T22:13:20Z",  # entry.time: the comment value has no time of its own
    )


def test_meta_skips_own_comments_textless_mentions_other_fields_and_other_objects() -> None:
    own = comment("c-own", username="mira.threads", from_id="17841405822304914")
    mention = {"field": "mentions", "value": {"media_id": "m1", "comment_id": "c-m"}}
    story = {"field": "story_insights", "value": {"media_id": "s1"}}
    batch = parse_meta(meta_body(own, mention, story, comment("c-ok")))
    assert [m.event_id for m in batch.mentions] == ["c-ok"]
    assert [(s.event_id, s.reason) for s in batch.skipped] == [
        ("c-own", "the account's own comment"),
        ("c-m", "a mention without its text: left to polling"),
        ("", "field 'story_insights' is not a comment"),
    ]
    page = parse_meta({"object": "page", "entry": [{"id": "1", "changes": [comment()]}]})
    assert page.mentions == [] and page.skipped[0].reason == "object 'page' is not instagram"


def test_meta_accepts_numeric_ids_and_the_flat_entry_shape() -> None:
    change = comment("c1")
    change["value"]["id"] = 1786
    flat = {"object": "instagram", "entry": [{"id": 178414, "time": 1, **change}]}
    [pushed] = parse_meta(flat).mentions
    assert (pushed.account_id, pushed.event_id) == ("178414", "1786")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"entry": []}, "object is missing"),
        ({"object": "instagram", "entry": {}}, "entry is not a list"),
        ({"object": "instagram", "entry": [{"changes": []}]}, r"entry\[0\]\.id"),
        ({"object": "instagram", "entry": [{"id": "1", "changes": {}}]}, "changes is not a list"),
        (meta_body({"field": "comments", "value": []}), "value is not an object"),
        (meta_body({"field": "comments", "value": {**comment()["value"], "from": None}}), "from is not an object"),
        (meta_body({"field": "comments", "value": {**comment()["value"], "id": ""}}), r"value\.id"),
        (meta_body({"field": "comments", "value": {**comment()["value"], "text": 5}}), "text is not a string"),
    ],
)
def test_malformed_meta_bodies_say_what_is_wrong(body: dict[str, Any], message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_meta(body)


@pytest.mark.parametrize(
    ("raw", "message"), [(b"{not json", "not JSON"), (b"[1, 2]", "list, not an object"), (b"\xff", "not JSON")]
)
def test_bodies_that_are_not_a_json_object_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_json(raw)


def test_a_json_object_is_parsed() -> None:
    assert parse_json(json.dumps({"a": 1}).encode()) == {"a": 1}
