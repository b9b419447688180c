"""The sandbox platform backend: persistence, idempotency, platform rules, rate limits."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from mcp_servers.common import RateLimited, ToolError
from mcp_servers.media import MediaStore
from mcp_servers.social.audience import (
    AUDIENCES,
    HASHTAG_BONUS,
    LONG_TEXT_PENALTY,
    QUESTION_BONUS,
    appeal,
    base_appeal,
)
from mcp_servers.social.backend import iso
from mcp_servers.social.rules import image_info
from mcp_servers.social.sandbox import (
    AlreadyReplied,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    SandboxPlatform,
)
from tests.helpers.media_files import jpeg_header_bytes, png_bytes, put_png


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_post_is_idempotent_on_key(tmp_path: Path) -> None:
    tw = SandboxPlatform(tmp_path, "twitter")
    first = tw.post("Mending beats buying. #SlowFashion", "k-1")
    again = tw.post("a different text on retry", "k-1")

    assert first["duplicate"] is False
    assert again == {**first, "duplicate": True}
    assert first["url"].endswith(first["post_id"])
    assert len(tw.posts()) == 1
    assert tw.posts()[0]["text"] == "Mending beats buying. #SlowFashion"
    found = tw.find_post("k-1")
    assert found is not None and found["post_id"] == first["post_id"]
    assert tw.find_post("never-used") is None


def test_length_rules_per_platform(tmp_path: Path) -> None:
    tw = SandboxPlatform(tmp_path, "twitter")
    ig = SandboxPlatform(tmp_path, "instagram")

    assert tw.post("x" * 280, "tw-max")["duplicate"] is False
    with pytest.raises(InvalidRequest) as too_long:
        tw.post("x" * 281, "tw-over")
    assert too_long.value.code == "text_too_long"
    with pytest.raises(InvalidRequest) as empty:
        tw.post("   \n", "tw-empty")
    assert empty.value.code == "empty_text"

    image = put_png(tmp_path).media_id
    assert ig.post("y" * 2200, "ig-max", media_id=image)["duplicate"] is False
    with pytest.raises(InvalidRequest, match="2200"):
        ig.post("y" * 2201, "ig-over", media_id=image)
    # A rejected post leaves nothing behind, and the key stays usable.
    assert tw.find_post("tw-over") is None
    assert tw.post("now short enough", "tw-over")["duplicate"] is False


def test_bad_idempotency_key_is_rejected(tmp_path: Path) -> None:
    tw = SandboxPlatform(tmp_path, "twitter")
    with pytest.raises(InvalidRequest) as err:
        tw.post("hello", "  ")
    assert err.value.code == "invalid_idempotency_key"


def test_rate_limit_reports_retry_after_and_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    tw = SandboxPlatform(tmp_path, "twitter", rate_limit=3, rate_window_seconds=60.0, clock=clock)
    for i in range(3):
        tw.post(f"post {i}", f"k-{i}")
        clock.now += 10.0  # posts at t=0, 10, 20; now t=30

    with pytest.raises(RateLimited) as err:
        tw.post("one too many", "k-3")
    assert err.value.code == "rate_limited"
    # The oldest post (t=0) leaves the 60 s window at t=60.
    assert err.value.retry_after_seconds == pytest.approx(30.0)
    assert err.value.to_dict()["retry_after_seconds"] == pytest.approx(30.0)
    # A retry of an already published post is not rate limited.
    assert tw.post("post 0", "k-0")["duplicate"] is True

    clock.now += 30.0
    assert tw.post("one too many", "k-3")["duplicate"] is False
    assert len(tw.posts()) == 4


def test_rate_limit_counts_replies_and_is_shared_across_instances(tmp_path: Path) -> None:
    clock = FakeClock()
    a = SandboxPlatform(tmp_path, "instagram", rate_limit=2, rate_window_seconds=900.0, clock=clock)
    b = SandboxPlatform(tmp_path, "instagram", rate_limit=2, rate_window_seconds=900.0, clock=clock)
    image = put_png(tmp_path).media_id
    a.post("caption", "k-a", media_id=image)
    b.reply("ig-c-2001", "Drafted it myself!", "k-b")
    with pytest.raises(RateLimited) as err:
        a.post("third", "k-c", media_id=image)
    assert err.value.retry_after_seconds == pytest.approx(900.0)


def test_reply_marks_mention_replied(tmp_path: Path) -> None:
    tw = SandboxPlatform(tmp_path, "twitter")
    before = {m["id"]: m for m in tw.recent_mentions()}
    assert before["tw-m-1003"]["replied"] is False

    receipt = tw.reply("tw-m-1003", "Over a year, yes: fewer, better pieces.", "reply-1003")
    assert receipt["duplicate"] is False
    after = {m["id"]: m for m in tw.recent_mentions()}
    assert after["tw-m-1003"]["replied"] is True
    assert "tw-m-1003" not in {m["id"] for m in tw.recent_mentions(unreplied_only=True)}
    post = tw.find_post("reply-1003")
    assert post is not None and post["reply_to"] == "tw-m-1003"

    # Same key: the same reply back. Another key: refused rather than answering twice.
    assert tw.reply("tw-m-1003", "again", "reply-1003") == {**receipt, "duplicate": True}
    with pytest.raises(AlreadyReplied):
        tw.reply("tw-m-1003", "again", "reply-1003-b")
    stats = tw.profile_stats()
    assert (stats["post_count"], stats["reply_count"]) == (0, 1)


def test_reply_to_unknown_mention_is_an_error(tmp_path: Path) -> None:
    tw = SandboxPlatform(tmp_path, "twitter")
    with pytest.raises(NotFound) as err:
        tw.reply("tw-m-does-not-exist", "hi", "k")
    assert isinstance(err.value, ToolError)
    assert err.value.code == "not_found"
    assert tw.posts() == []


def test_key_reused_for_other_operation_conflicts(tmp_path: Path) -> None:
    tw = SandboxPlatform(tmp_path, "twitter")
    tw.post("a post", "shared-key")
    with pytest.raises(IdempotencyConflict):
        tw.reply("tw-m-1001", "a reply", "shared-key")
    assert {m["id"]: m["replied"] for m in tw.recent_mentions()}["tw-m-1001"] is False
    assert len(tw.posts()) == 1


def test_seeded_mentions_and_trends(tmp_path: Path) -> None:
    for platform in ("twitter", "instagram"):
        sp = SandboxPlatform(tmp_path, platform)
        mentions = sp.recent_mentions()
        assert 5 <= len(mentions) <= 8
        assert all(set(m) == {"id", "platform", "author", "text", "created_at", "replied"} for m in mentions)
        assert all(m["platform"] == platform for m in mentions)
        # Newest first.
        assert [m["created_at"] for m in mentions] == sorted((m["created_at"] for m in mentions), reverse=True)
        texts = " ".join(m["text"].lower() for m in mentions)
        assert "ignore" in texts and "previous instructions" in texts
        assert "[system]" in texts
        trends = sp.trends()
        assert len(trends) >= 5
        assert [t["volume"] for t in trends] == sorted((t["volume"] for t in trends), reverse=True)
        assert any("crypto" in t["topic"].lower() or "airdrop" in t["topic"].lower() for t in trends)
        stats = sp.profile_stats()
        assert stats["followers"] > 0 and stats["post_count"] == 0
    assert len(SandboxPlatform(tmp_path, "twitter").recent_mentions(limit=2)) == 2


def test_unseeded_platform_is_empty(tmp_path: Path) -> None:
    sp = SandboxPlatform(tmp_path, "twitter", seed=False)
    assert sp.recent_mentions() == [] and sp.trends() == []
    mention = sp.add_mention("someone", "@mira hello")
    assert sp.recent_mentions()[0]["id"] == mention["id"]


def test_persistence_across_instances_and_no_reseed(tmp_path: Path) -> None:
    first = SandboxPlatform(tmp_path, "instagram")
    image = put_png(tmp_path).media_id
    receipt = first.post("Visible mending, week 3. #visiblemending", "ig-k", media_id=image)
    first.reply("ig-c-2003", "Cold water, wool wash, dry flat!", "ig-r")
    seeded = len(first.recent_mentions())

    second = SandboxPlatform(tmp_path, "instagram")
    assert second.post("whatever", "ig-k") == {**receipt, "duplicate": True}
    assert [p["idempotency_key"] for p in second.posts()] == ["ig-k", "ig-r"]
    assert len(second.recent_mentions()) == seeded  # opening again does not seed twice
    assert {m["id"]: m["replied"] for m in second.recent_mentions()}["ig-c-2003"] is True
    assert (tmp_path / "instagram.sqlite3").exists()
    # Platforms are separate files: nothing leaks between them.
    assert SandboxPlatform(tmp_path, "twitter").posts() == []


def test_database_uses_wal_and_unique_keys(tmp_path: Path) -> None:
    SandboxPlatform(tmp_path, "twitter")
    conn = sqlite3.connect(tmp_path / "twitter.sqlite3")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(
            "INSERT INTO posts (id, account, text, reply_to, idempotency_key, created_at)"
            " VALUES ('a','m','t',NULL,'k','x')"
        )
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO posts (id, account, text, reply_to, idempotency_key, created_at)"
                " VALUES ('b','m','t',NULL,'k','x')"
            )
    finally:
        conn.close()


def test_concurrent_posts_with_one_key_publish_once(tmp_path: Path) -> None:
    SandboxPlatform(tmp_path, "twitter")  # seed once up front
    workers = 12
    barrier = threading.Barrier(workers)
    results: list[dict[str, object]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        # Separate instances, as separate server processes would have.
        platform = SandboxPlatform(tmp_path, "twitter")
        barrier.wait()
        try:
            receipt = platform.post(f"attempt {i}", "the-one-key")
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(receipt)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert len(results) == workers
    assert len({r["post_id"] for r in results}) == 1
    assert sum(1 for r in results if r["duplicate"] is False) == 1
    assert len(SandboxPlatform(tmp_path, "twitter").posts()) == 1


def test_concurrent_first_open_seeds_once(tmp_path: Path) -> None:
    workers = 8
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            SandboxPlatform(tmp_path, "instagram")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(SandboxPlatform(tmp_path, "instagram").recent_mentions(limit=100)) == 6


def test_unknown_platform_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SandboxPlatform(tmp_path, "myspace")  # type: ignore[arg-type]


# -- Instagram media and caption rules ----------------------------------------------------------


def test_instagram_post_stores_its_image(tmp_path: Path) -> None:
    ig = SandboxPlatform(tmp_path, "instagram")
    image = put_png(tmp_path, 1080, 1350)  # 4:5, Instagram's tallest feed ratio
    receipt = ig.post("Linen, reborn.", "ig-1", media_id=image.media_id)
    found = ig.find_post("ig-1")
    assert found is not None and found["media_id"] == image.media_id and found["post_id"] == receipt["post_id"]
    # A repeat answers from the key before any check, even with another (or no usable) image.
    assert ig.post("Linen, reborn.", "ig-1", media_id="media-" + "0" * 32)["duplicate"] is True
    # Replies are text: they carry no media.
    ig.reply("ig-c-2001", "Thank you!", "ig-r")
    reply = ig.find_post("ig-r")
    assert reply is not None and reply["media_id"] is None


@pytest.mark.parametrize(
    ("width", "height", "code"),
    [
        (1080, 1080, None),
        (1080, 566, None),  # 1.91:1, the widest
        (320, 400, None),  # the narrowest allowed width, 4:5
        (1440, 1800, None),
        (1080, 1351, "media_bad_dimensions"),  # taller than 4:5
        (1080, 565, "media_bad_dimensions"),  # wider than 1.91:1
        (319, 319, "media_bad_dimensions"),
        (1441, 1441, "media_bad_dimensions"),
    ],
)
def test_instagram_image_size_rules(tmp_path: Path, width: int, height: int, code: str | None) -> None:
    ig = SandboxPlatform(tmp_path, "instagram")
    image = put_png(tmp_path, width, height).media_id
    if code is None:
        assert ig.post("caption", "k", media_id=image)["duplicate"] is False
    else:
        with pytest.raises(InvalidRequest) as err:
            ig.post("caption", "k", media_id=image)
        assert err.value.code == code and f"{width}" in err.value.message
        assert ig.posts() == []


def test_instagram_media_must_exist_and_be_jpeg_or_png(tmp_path: Path) -> None:
    ig = SandboxPlatform(tmp_path, "instagram")
    store = MediaStore(tmp_path)
    with pytest.raises(ToolError) as missing:
        ig.post("caption", "k1", media_id="media-" + "a" * 32)
    assert missing.value.code == "media_not_found"
    with pytest.raises(InvalidRequest) as no_media:
        ig.post("caption", "k2")
    assert no_media.value.code == "media_required"

    webp = store.put(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp", width=1080, height=1080)
    with pytest.raises(InvalidRequest) as wrong_type:
        ig.post("caption", "k3", media_id=webp.media_id)
    assert wrong_type.value.code == "media_invalid"
    # The file's own header decides, not the metadata: a "PNG" that is not one is refused.
    fake_png = store.put(b"definitely not an image", "image/png", width=1080, height=1080)
    with pytest.raises(InvalidRequest) as corrupt:
        ig.post("caption", "k4", media_id=fake_png.media_id)
    assert corrupt.value.code == "media_invalid"

    jpeg = store.put(jpeg_header_bytes(1080, 1080), "image/jpeg", width=1080, height=1080)
    assert ig.post("caption", "k5", media_id=jpeg.media_id)["duplicate"] is False
    # Twitter stays text only.
    with pytest.raises(InvalidRequest) as tw_media:
        SandboxPlatform(tmp_path, "twitter").post("hello", "t1", media_id=jpeg.media_id)
    assert tw_media.value.code == "media_not_supported"


def test_instagram_image_larger_than_8_mb_is_refused(tmp_path: Path) -> None:
    ig = SandboxPlatform(tmp_path, "instagram")
    # A valid header followed by padding: size is checked before the image is read.
    big = png_bytes(1080, 1080)
    big = big + b"\x00" * (8 * 1024 * 1024 + 1 - len(big))
    item = MediaStore(tmp_path).put(big, "image/png", width=1080, height=1080)
    with pytest.raises(InvalidRequest) as err:
        ig.post("caption", "k", media_id=item.media_id)
    assert err.value.code == "media_too_large"


def test_instagram_hashtag_limit(tmp_path: Path) -> None:
    ig = SandboxPlatform(tmp_path, "instagram")
    image = put_png(tmp_path).media_id
    thirty = " ".join(f"#tag{i}" for i in range(30))
    assert ig.post(f"Mending. {thirty} and a#b is no tag", "k30", media_id=image)["duplicate"] is False
    with pytest.raises(InvalidRequest) as err:
        ig.post(thirty + " #one_more", "k31", media_id=image)
    assert err.value.code == "too_many_hashtags" and "30" in err.value.message
    # Twitter has no hashtag cap.
    assert SandboxPlatform(tmp_path, "twitter").post(" ".join(f"#t{i}" for i in range(40)), "tw")["duplicate"] is False


def test_image_header_reader() -> None:
    png = image_info(png_bytes(640, 480))
    assert png is not None and (png.mime_type, png.width, png.height) == ("image/png", 640, 480)
    jpeg = image_info(jpeg_header_bytes(1440, 754))
    assert jpeg is not None and (jpeg.mime_type, jpeg.width, jpeg.height) == ("image/jpeg", 1440, 754)
    assert image_info(b"GIF89a....") is None
    assert image_info(b"\xff\xd8\xff\xd9") is None  # a JPEG with no frame


def test_old_sandbox_file_gains_the_media_column(tmp_path: Path) -> None:
    # A posts table as the previous release created it, with one post in it.
    conn = sqlite3.connect(tmp_path / "instagram.sqlite3")
    conn.executescript(
        """
        CREATE TABLE posts (id TEXT PRIMARY KEY, account TEXT NOT NULL, text TEXT NOT NULL, reply_to TEXT,
                            idempotency_key TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
        INSERT INTO posts VALUES ('ig-p-old', 'mira', 'an old caption', NULL, 'old-key', '2026-01-01T00:00:00.000000Z');
        """
    )
    conn.close()

    ig = SandboxPlatform(tmp_path, "instagram")
    old = ig.find_post("old-key")
    assert old is not None and old["text"] == "an old caption" and old["media_id"] is None
    image = put_png(tmp_path).media_id
    ig.post("a new caption", "new-key", media_id=image)
    new = ig.find_post("new-key")
    assert new is not None and new["media_id"] == image
    SandboxPlatform(tmp_path, "instagram")  # opening again is a no-op
    conn = sqlite3.connect(tmp_path / "instagram.sqlite3")
    assert [r[1] for r in conn.execute("PRAGMA table_info(posts)")].count("media_id") == 1
    conn.close()


# -- post metrics: the simulated audience -------------------------------------------------------

HOUR = 3600.0


def _counts(metric: dict[str, object]) -> tuple[object, ...]:
    return tuple(metric[k] for k in ("likes", "replies", "reposts", "impressions"))


def test_metrics_grow_with_age_and_saturate_over_two_days(tmp_path: Path) -> None:
    clock = FakeClock()
    tw = SandboxPlatform(tmp_path, "twitter", clock=clock)
    post_id = tw.post("Mended my jeans for the fifth time. Worth it.", "k")["post_id"]
    posted = clock.now

    seen = []
    for hours in (0, 1, 6, 24, 48, 30 * 24):
        clock.now = posted + hours * HOUR
        [metric] = tw.post_metrics([post_id])["metrics"]
        assert metric["measured_at"] == iso(clock.now)
        assert metric["engagement"] == metric["likes"] + metric["replies"] + metric["reposts"]
        seen.append(metric)
    assert _counts(seen[0]) == (0, 0, 0, 0)  # nobody has seen it yet
    impressions = [m["impressions"] for m in seen]
    assert impressions == sorted(impressions) and len(set(impressions)) == len(impressions)
    engagement = [m["engagement"] for m in seen]
    assert engagement == sorted(engagement) and engagement[1] < engagement[3]
    # Most of the audience has seen it within 48 h; after that it barely moves.
    assert impressions[4] >= 0.9 * impressions[5] and impressions[3] < 0.9 * impressions[5]
    assert 500 < impressions[5] < 3 * 12_840 * 0.12  # about the account's reach, not more than its followers


def test_metrics_are_deterministic_and_tell_posts_apart(tmp_path: Path) -> None:
    texts = [f"Mending note {i}: darn the heel before the hole grows." for i in range(6)]

    def metrics_in(data_dir: Path) -> list[tuple[object, ...]]:
        clock = FakeClock()
        tw = SandboxPlatform(data_dir, "twitter", clock=clock)
        ids = [tw.post(text, f"k-{i}")["post_id"] for i, text in enumerate(texts)]
        clock.now += 24 * HOUR
        first = tw.post_metrics(ids)
        assert tw.post_metrics(ids) == first  # the same post at the same age: the same counts
        assert [m["post_id"] for m in first["metrics"]] == ids and first["missing"] == []
        return [_counts(m) for m in first["metrics"]]

    one, two = metrics_in(tmp_path / "a"), metrics_in(tmp_path / "b")
    assert one == two  # other post ids, other files: the text and the age decide
    assert len({m[3] for m in one}) == len(texts)  # different posts, different audiences


def test_metrics_scale_with_followers(tmp_path: Path) -> None:
    clock = FakeClock()
    small = SandboxPlatform(tmp_path / "small", "instagram", clock=clock)
    big = SandboxPlatform(tmp_path / "big", "instagram", clock=clock)
    big.rules = replace(big.rules, followers=small.rules.followers * 10)
    caption = "Linen, reborn. Which piece would you mend first? #visiblemending"
    ids = [
        p.post(caption, "k", media_id=put_png(tmp_path / n).media_id)["post_id"]
        for p, n in ((small, "small"), (big, "big"))
    ]
    clock.now += 12 * HOUR
    [a] = small.post_metrics([ids[0]])["metrics"]
    [b] = big.post_metrics([ids[1]])["metrics"]
    assert b["impressions"] == pytest.approx(10 * a["impressions"], abs=10)
    assert b["likes"] == pytest.approx(10 * a["likes"], abs=10) and b["likes"] > a["likes"] > 0


def test_appeal_rewards_a_question_and_a_hashtag_and_punishes_a_wall_of_text() -> None:
    long = AUDIENCES["twitter"].long_text_chars
    plain = "Darned my socks tonight"
    assert appeal(plain, long) == pytest.approx(base_appeal(plain))
    question = "Darned my socks tonight. Do you still darn yours?"
    assert appeal(question, long) == pytest.approx(base_appeal(question) + QUESTION_BONUS)
    tagged = "Darned my socks tonight #VisibleMending"
    assert appeal(tagged, long) == pytest.approx(base_appeal(tagged) + HASHTAG_BONUS)
    wall = "Darned my socks tonight, " * 10
    assert len(wall) > long and appeal(wall, long) == pytest.approx(base_appeal(wall) - LONG_TEXT_PENALTY)
    assert appeal("see https://example.test/?q=1", long) == pytest.approx(base_appeal("see https://example.test/?q=1"))
    # Over many texts, asking the reader wins on average, though the hash still varies single posts.
    bodies = [f"Patched coat number {i} today" for i in range(200)]
    asked = sum(appeal(b + ". What would you patch?", long) for b in bodies) / len(bodies)
    told = sum(appeal(b + ". Patch yours.", long) for b in bodies) / len(bodies)
    assert asked - told == pytest.approx(QUESTION_BONUS, abs=0.1)


def test_a_reply_reaches_fewer_people_than_a_post(tmp_path: Path) -> None:
    clock = FakeClock()
    text = "Look for GOTS certification and fibre content on the label!"
    post = SandboxPlatform(tmp_path / "a", "twitter", clock=clock).post(text, "p")["post_id"]
    replying = SandboxPlatform(tmp_path / "b", "twitter", clock=clock)
    reply = replying.reply("tw-m-1006", text, "r")["post_id"]
    clock.now += 48 * HOUR
    [as_post] = SandboxPlatform(tmp_path / "a", "twitter", clock=clock).post_metrics([post])["metrics"]
    [as_reply] = replying.post_metrics([reply])["metrics"]
    assert as_reply["impressions"] == pytest.approx(as_post["impressions"] / 4, abs=1)


def test_a_mention_answering_a_post_counts_as_a_reply(tmp_path: Path) -> None:
    clock = FakeClock()
    tw = SandboxPlatform(tmp_path, "twitter", clock=clock)
    post_id = tw.post("Which seam rips first on your jeans?", "k")["post_id"]
    clock.now += 2 * HOUR
    [before] = tw.post_metrics([post_id])["metrics"]
    tw.add_mention("thrift_tom", "@mira_threads the crotch, always", in_reply_to=post_id)
    tw.add_mention("sew_sarah", "@mira_threads back pocket for me")
    tw.add_mention("ana", "@mira_threads inner thigh", in_reply_to=post_id)
    [after] = tw.post_metrics([post_id])["metrics"]
    assert after["replies"] == before["replies"] + 2
    assert after["engagement"] == before["engagement"] + 2 and after["likes"] == before["likes"]
    assert {m["author"] for m in tw.recent_mentions(100)} >= {"thrift_tom", "ana"}  # still mentions, as ever
    with pytest.raises(NotFound):
        tw.add_mention("bo", "hi", in_reply_to="tw-p-nope")


def test_scripted_metrics_win_and_persist_in_the_accounts_file(tmp_path: Path) -> None:
    clock = FakeClock()
    tw = SandboxPlatform(tmp_path, "twitter", clock=clock)
    scripted, simulated = (tw.post(t, k)["post_id"] for t, k in (("A flop.", "k1"), ("A hit?", "k2")))
    tw.set_metrics(scripted, likes=7, replies=2, reposts=1, impressions=400)
    tw.add_mention("ana", "answer", in_reply_to=scripted)  # a scripted post keeps its scripted counts

    for hours in (0, 30):
        clock.now += hours * HOUR
        reopened = SandboxPlatform(tmp_path, "twitter", clock=clock)
        result = reopened.post_metrics([scripted, simulated])
        expected = {"likes": 7, "replies": 2, "reposts": 1, "impressions": 400, "engagement": 10}
        assert result["metrics"][0] == {"post_id": scripted, **expected, "measured_at": iso(clock.now)}
    assert result["metrics"][1]["impressions"] > 0  # the other post follows the simulation
    tw.set_metrics(scripted, likes=70, replies=20, reposts=10, impressions=4000)  # a later script replaces it
    assert tw.post_metrics([scripted])["metrics"][0]["engagement"] == 100

    with pytest.raises(NotFound):
        tw.set_metrics("tw-p-unknown", likes=1, replies=1, reposts=1, impressions=1)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="likes must be a non-negative integer"):
            tw.set_metrics(scripted, likes=bad, replies=0, reposts=0, impressions=0)  # type: ignore[arg-type]


def test_metrics_request_rules(tmp_path: Path) -> None:
    tw = SandboxPlatform(tmp_path, "twitter")
    post_id = tw.post("hello", "k")["post_id"]
    for bad in ([], [f"tw-p-{i}" for i in range(101)], [""], ["  "], ["x" * 201], "tw-p-1", [1]):
        with pytest.raises(InvalidRequest) as err:
            tw.post_metrics(bad)  # type: ignore[arg-type]
        assert err.value.code == "invalid_request"
    result = tw.post_metrics(["tw-p-nope", post_id, post_id, "tw-m-1001"])
    assert [m["post_id"] for m in result["metrics"]] == [post_id]  # a repeated id once
    assert result["missing"] == ["tw-p-nope", "tw-m-1001"]  # a mention is no post of the account's
    assert len(tw.post_metrics([f"tw-p-{i}" for i in range(100)])["missing"]) == 100


def test_old_sandbox_file_gains_what_metrics_need(tmp_path: Path) -> None:
    # The tables as the release before metrics created them: mentions without in_reply_to, no scripted_metrics.
    conn = sqlite3.connect(tmp_path / "twitter.sqlite3")
    conn.executescript(
        """
        CREATE TABLE posts (id TEXT PRIMARY KEY, account TEXT NOT NULL, text TEXT NOT NULL, reply_to TEXT,
                            idempotency_key TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, media_id TEXT);
        CREATE TABLE mentions (id TEXT PRIMARY KEY, author TEXT NOT NULL, text TEXT NOT NULL,
                               created_at TEXT NOT NULL, replied_post_id TEXT);
        INSERT INTO posts VALUES ('tw-p-old', 'mira_threads', 'an old tweet', NULL, 'old-key',
                                  '2023-11-13T22:13:20.000000Z', NULL);
        INSERT INTO mentions VALUES ('tw-m-old', 'ana', 'an old mention', '2023-11-13T23:00:00.000000Z', NULL);
        """
    )
    conn.close()

    clock = FakeClock()  # 2023-11-14T22:13:20Z: the old tweet is a day old
    tw = SandboxPlatform(tmp_path, "twitter", clock=clock)
    [old] = tw.post_metrics(["tw-p-old"])["metrics"]
    assert old["impressions"] > 0
    tw.add_mention("bo", "late answer", in_reply_to="tw-p-old")
    assert tw.post_metrics(["tw-p-old"])["metrics"][0]["replies"] == old["replies"] + 1
    tw.set_metrics("tw-p-old", likes=1, replies=0, reposts=0, impressions=9)
    assert _counts(SandboxPlatform(tmp_path, "twitter").post_metrics(["tw-p-old"])["metrics"][0]) == (1, 0, 0, 9)
    conn = sqlite3.connect(tmp_path / "twitter.sqlite3")
    assert [r[1] for r in conn.execute("PRAGMA table_info(mentions)")].count("in_reply_to") == 1
    conn.close()
