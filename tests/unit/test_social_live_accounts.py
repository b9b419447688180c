"""The live backends take each account's credentials from the secrets source (StaticSecrets here), against the
loopback look-alikes of X and the Instagram Graph API: the account's own token is the one sent, an account without
a secret has no credentials (never another's), and credentials filed under the wrong account are refused before
anything is published. The single-account environment variables remain a fallback for the account they name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chimera.secrets.base import StaticSecrets
from mcp_servers.common import ToolError
from mcp_servers.social.config import backends_from_env
from mcp_servers.social.live_instagram import LiveInstagramBackend
from mcp_servers.social.live_twitter import LiveTwitterBackend
from tests.helpers.fake_social import (
    IG_TOKEN,
    IG_USER_ID,
    X_APP_TOKEN,
    X_TOKEN,
    FakeGraph,
    FakeX,
    fake_graph,
    fake_x,
)


@pytest.fixture
def x() -> Iterator[tuple[FakeX, str]]:
    with fake_x() as served:
        yield served


@pytest.fixture
def graph() -> Iterator[tuple[FakeGraph, str]]:
    with fake_graph() as served:
        yield served


def live_env(platform: str, url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    prefix = f"CHIMERA_{platform.upper()}_"
    env = {"CHIMERA_SANDBOX_DIR": str(tmp_path), prefix + "BACKEND": "live", prefix + "BASE_URL": url}
    return {**env, **{prefix + k: v for k, v in extra.items()}}


def secret(**fields: object) -> str:
    return json.dumps(fields)


def bearer(api: FakeX | FakeGraph) -> list[str]:
    return [headers.get("Authorization", "") for _, _, _, headers in api.requests]


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(ToolError) as err:
        call()
    return err.value.code


def test_each_x_account_posts_with_its_own_token(x: tuple[FakeX, str], tmp_path: Path) -> None:
    api, url = x
    secrets = StaticSecrets(
        {
            "platform/twitter/mira_makes": secret(access_token=X_TOKEN, app_bearer_token=X_APP_TOKEN),
            "platform/twitter/nova_knits": secret(access_token="nova-token-revoked"),
        }
    )
    accounts = backends_from_env("twitter", live_env("twitter", url, tmp_path), secrets)
    mira = accounts.get("mira_makes")
    assert isinstance(mira, LiveTwitterBackend) and X_TOKEN not in repr(mira)
    receipt = mira.post("Mended, live.", "task-1")
    assert [t["text"] for t in api.tweets] == ["Mended, live."] and receipt["post_id"] == api.tweets[0]["id"]
    assert set(bearer(api)) == {f"Bearer {X_TOKEN}"}  # checked who it is (/2/users/me), then posted
    assert (tmp_path / "accounts" / "twitter" / "mira_makes-live-ledger.sqlite3").exists()
    assert [t["topic"] for t in mira.trends(2)] == ["#SlowFashion", "#RepairCafe"]  # the app-only token
    assert bearer(api)[-1] == f"Bearer {X_APP_TOKEN}"

    api.requests.clear()
    assert code_of(lambda: accounts.get("nova_knits").post("Knit, live.", "task-2")) == "unauthorized"
    assert set(bearer(api)) == {"Bearer nova-token-revoked"}  # nova's token, never mira's
    assert len(api.tweets) == 1


def test_an_account_without_a_secret_has_no_credentials_not_another_accounts(
    x: tuple[FakeX, str], tmp_path: Path
) -> None:
    api, url = x
    secrets = StaticSecrets({"platform/twitter/mira_makes": secret(access_token=X_TOKEN)})
    accounts = backends_from_env("twitter", live_env("twitter", url, tmp_path), secrets)
    with pytest.raises(ToolError, match="set the secret 'platform/twitter/ghost'") as err:
        accounts.get("ghost")
    assert err.value.code == "no_credentials"
    assert code_of(lambda: accounts.get(None)) == "no_credentials"  # no default account configured
    assert api.requests == []


def test_credentials_filed_under_the_wrong_account_are_refused_before_posting(
    x: tuple[FakeX, str], tmp_path: Path
) -> None:
    api, url = x
    secrets = StaticSecrets(
        {
            "platform/twitter/impostor": secret(access_token=X_TOKEN),  # X_TOKEN is @mira_makes's
            "platform/twitter/broken": "access_token=" + X_TOKEN,
        }
    )
    accounts = backends_from_env("twitter", live_env("twitter", url, tmp_path), secrets)
    with pytest.raises(ToolError, match="belong to @mira_makes") as mismatch:
        accounts.get("impostor").post("Posted as someone else?", "task-3")
    assert mismatch.value.code == "account_mismatch" and api.tweets == []
    with pytest.raises(ToolError, match="'platform/twitter/broken' is not JSON") as broken:
        accounts.get("broken")
    assert broken.value.code == "credentials_invalid" and X_TOKEN not in broken.value.message


def test_the_environment_variables_serve_only_the_account_they_name(x: tuple[FakeX, str], tmp_path: Path) -> None:
    api, url = x
    env = live_env("twitter", url, tmp_path, ACCESS_TOKEN=X_TOKEN, APP_BEARER_TOKEN=X_APP_TOKEN, ACCOUNT="mira_makes")
    accounts = backends_from_env("twitter", env, StaticSecrets({}))
    assert accounts.get(None) is accounts.get("mira_makes")
    accounts.get("mira_makes").post("From the environment.", "task-4")
    assert len(api.tweets) == 1
    assert code_of(lambda: accounts.get("nova_knits")) == "no_credentials"  # the variables are mira's alone

    unnamed = backends_from_env("twitter", {**env, "CHIMERA_TWITTER_ACCOUNT": ""}, StaticSecrets({}))
    legacy = unnamed.get(None)  # as before accounts: the variables, unchecked, for calls that name no account
    assert isinstance(legacy, LiveTwitterBackend) and legacy.account is None
    assert legacy.ledger.path == tmp_path / "twitter-live-ledger.sqlite3"
    assert code_of(lambda: unnamed.get("mira_makes")) == "no_credentials"


def test_each_instagram_account_uses_its_own_token_and_user(graph: tuple[FakeGraph, str], tmp_path: Path) -> None:
    api, url = graph
    secrets = StaticSecrets(
        {
            "platform/instagram/mira.makes": secret(access_token=IG_TOKEN, ig_user_id=IG_USER_ID),
            "platform/instagram/nova.knits": secret(access_token=IG_TOKEN, ig_user_id=IG_USER_ID),  # mira's
            "platform/instagram/ava.ig": secret(access_token=IG_TOKEN),
        }
    )
    accounts = backends_from_env("instagram", live_env("instagram", url, tmp_path), secrets)
    mira = accounts.get("mira.makes")
    assert isinstance(mira, LiveInstagramBackend) and IG_TOKEN not in repr(mira)
    assert {c["author"] for c in mira.recent_mentions()} == {"sew_sarah", "bot_77"}
    assert set(bearer(api)) == {f"Bearer {IG_TOKEN}"}

    replies_before = dict(api.replies)
    nova = accounts.get("nova.knits")
    with pytest.raises(ToolError, match=r"are for IG user @mira\.makes") as mismatch:
        nova.reply("17850000000000001", "Answering as nova?", "task-5")
    assert mismatch.value.code == "account_mismatch" and api.replies == replies_before
    with pytest.raises(ToolError, match=r"lacks \['ig_user_id'\]") as incomplete:
        accounts.get("ava.ig")
    assert incomplete.value.code == "credentials_invalid"
