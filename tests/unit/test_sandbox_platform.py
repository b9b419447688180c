"""The sandbox platform backend: persistence, idempotency, platform rules, rate limits."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from mcp_servers.common import RateLimited, ToolError
from mcp_servers.social.sandbox import (
    AlreadyReplied,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    SandboxPlatform,
)


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

    assert ig.post("y" * 2200, "ig-max")["duplicate"] is False
    with pytest.raises(InvalidRequest, match="2200"):
        ig.post("y" * 2201, "ig-over")
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
    a.post("caption", "k-a")
    b.reply("ig-c-2001", "Drafted it myself!", "k-b")
    with pytest.raises(RateLimited) as err:
        a.post("third", "k-c")
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
    receipt = first.post("Visible mending, week 3. #visiblemending", "ig-k")
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
