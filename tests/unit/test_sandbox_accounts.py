"""The sandbox keeps its state per account: posts, mentions, rate limits and idempotency keys of one account never
touch another's; the default account (the demo persona's) keeps the file it had before accounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_servers.common import RateLimited, ToolError
from mcp_servers.social.accounts import DEFAULT_ACCOUNTS, AccountBackends
from mcp_servers.social.config import backends_from_env
from mcp_servers.social.sandbox import SandboxPlatform


def test_each_account_has_its_own_posts_mentions_and_keys(tmp_path: Path) -> None:
    mira = SandboxPlatform(tmp_path, "twitter", account="mira_threads")
    nova = SandboxPlatform(tmp_path, "twitter", account="nova_knits")
    to_nova = nova.add_mention("ana", "@nova_knits which yarn?")

    first = mira.post("Mended, not bought.", "same-key")
    other = nova.post("Knit, not bought.", "same-key")  # the same key on another account is another post
    assert first["post_id"] != other["post_id"] and not other["duplicate"]
    assert [p["text"] for p in mira.posts()] == ["Mended, not bought."]
    assert [(p["account"], p["text"]) for p in nova.posts()] == [("nova_knits", "Knit, not bought.")]
    assert nova.find_post("same-key") == nova.posts()[0]

    assert [m["id"] for m in nova.recent_mentions(100)] == [to_nova["id"]]  # the seed mentions are mira's
    assert to_nova["id"] not in {m["id"] for m in mira.recent_mentions(100)}
    with pytest.raises(ToolError) as foreign:
        mira.reply(to_nova["id"], "I can answer for nova!", "steal-1")  # not a mention of mira's
    assert foreign.value.code == "not_found"
    assert nova.trends() == mira.trends()  # trends are the platform's, seeded for every account


def test_one_accounts_rate_limit_never_throttles_another(tmp_path: Path) -> None:
    clock = lambda: 1_000.0  # noqa: E731
    mira = SandboxPlatform(tmp_path, "instagram", account="mira.threads", rate_limit=1, clock=clock)
    nova = SandboxPlatform(tmp_path, "instagram", account="nova.knits", rate_limit=1, clock=clock)
    comment_m = mira.add_mention("ana", "love it")
    comment_n = nova.add_mention("bo", "love it too")
    mira.reply(comment_m["id"], "Thank you!", "m-1")
    with pytest.raises(RateLimited):
        mira.reply(mira.add_mention("cy", "and me?")["id"], "Thanks!", "m-2")
    assert nova.reply(comment_n["id"], "Thank you!", "n-1")["duplicate"] is False


def test_the_default_account_is_the_demo_personas_in_its_old_file(tmp_path: Path) -> None:
    default = SandboxPlatform(tmp_path, "twitter")
    assert default.account == DEFAULT_ACCOUNTS["twitter"] == "mira_threads"
    assert default.path == tmp_path / "twitter.sqlite3" and default.recent_mentions(100)  # seeded
    assert SandboxPlatform(tmp_path, "twitter", account="mira_threads").path == default.path
    other = SandboxPlatform(tmp_path, "twitter", account="nova_knits")
    assert other.path == tmp_path / "accounts" / "twitter" / "nova_knits.sqlite3"
    assert default.for_account("nova_knits").path == other.path
    assert default.profile_stats()["account"] == "mira_threads"
    assert "sandbox.twitter.local/nova_knits/status/" in other.post("hi", "k")["url"]


@pytest.mark.parametrize("account", ["../twitter", "Mira_Threads", "@mira_threads", "a/b", ""])
def test_an_account_that_is_not_a_plain_name_is_refused(tmp_path: Path, account: str) -> None:
    with pytest.raises(ToolError) as err:
        SandboxPlatform(tmp_path, "twitter", account=account)
    assert err.value.code == "invalid_account"
    assert not (tmp_path / "accounts").exists() or not list((tmp_path / "accounts").rglob("*.sqlite3"))


def test_the_server_opens_one_backend_per_account(tmp_path: Path) -> None:
    accounts = backends_from_env("twitter", {"CHIMERA_SANDBOX_DIR": str(tmp_path), "CHIMERA_SANDBOX_RATE_LIMIT": "2"})
    mira, nova = accounts.get("mira_threads"), accounts.get("nova_knits")
    assert accounts.get(None) is mira and accounts.get("nova_knits") is nova  # opened once, then kept
    assert isinstance(nova, SandboxPlatform) and (nova.account, nova.rate_limit) == ("nova_knits", 2)
    with pytest.raises(ToolError) as err:
        accounts.get("../mira_threads")
    assert err.value.code == "invalid_account"

    single = AccountBackends.single(mira, "mira_threads")
    assert single.get(None) is mira
    with pytest.raises(ToolError, match="serves only the account 'mira_threads'"):
        single.get("nova_knits")


def test_metrics_read_only_the_accounts_own_posts(tmp_path: Path) -> None:
    clock = lambda: 1_700_000_000.0  # noqa: E731
    mira = SandboxPlatform(tmp_path, "twitter", account="mira_threads", clock=clock)
    nova = SandboxPlatform(tmp_path, "twitter", account="nova_knits", clock=clock)
    mine = mira.post("Mended, not bought.", "k")["post_id"]
    theirs = nova.post("Knit, not bought.", "k")["post_id"]
    nova.set_metrics(theirs, likes=9, replies=9, reposts=9, impressions=99)

    assert mira.post_metrics([mine, theirs]) == {
        "metrics": [mira.post_metrics([mine])["metrics"][0]],
        "missing": [theirs],  # another account's post is none of mira's
    }
    assert nova.post_metrics([mine, theirs])["missing"] == [mine]
    assert nova.post_metrics([theirs])["metrics"][0]["engagement"] == 27
    with pytest.raises(ToolError) as foreign:
        mira.set_metrics(theirs, likes=0, replies=0, reposts=0, impressions=0)  # scripts only its own posts
    assert foreign.value.code == "not_found"
    with pytest.raises(ToolError):
        mira.add_mention("ana", "hi", in_reply_to=theirs)
    assert nova.post_metrics([theirs])["metrics"][0]["engagement"] == 27
