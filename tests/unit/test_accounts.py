"""Platform accounts without a database: how a handle names an account, where its credentials are kept and how they
are read (StaticSecrets, the shared secrets interface), and which account a call is bound to among the claims."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chimera.accounts import AccountRefused, InvalidAccount, PlatformAccount, account_name, choose, secret_name
from chimera.accounts.credentials import CredentialsInvalid, instagram_credentials, x_credentials
from chimera.mcp.account_binding import McpAccountRefused, bind_arguments, bind_uri
from chimera.secrets.base import StaticSecrets

TOKEN = "x-user-token-SECRET-0123"
APP_TOKEN = "x-app-token-SECRET-9876"
IG_TOKEN = "ig-token-SECRET-abcd"


# -- names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handle", "account"),
    [("@Mira_Threads", "mira_threads"), (" mira.threads ", "mira.threads"), ("@ava", "ava"), ("x_1", "x_1")],
)
def test_a_handle_names_one_account_whatever_its_spelling(handle: str, account: str) -> None:
    assert account_name(handle) == account


@pytest.mark.parametrize("handle", ["", "@", "mira threads", "../etc", "a..b", ".mira", "mira.", "mira/x", "a" * 65])
def test_a_handle_that_cannot_be_an_account_is_refused_with_the_rule(handle: str) -> None:
    with pytest.raises(InvalidAccount, match=r"letters, digits, '_' and '\.'"):
        account_name(handle)


def test_the_secret_name_scheme() -> None:
    assert secret_name("twitter", "@Mira_Threads") == "platform/twitter/mira_threads"
    assert secret_name("instagram", "mira.threads") == "platform/instagram/mira.threads"
    with pytest.raises(InvalidAccount):
        secret_name("Twitter/../x", "mira")


# -- credentials from a secrets source ---------------------------------------------------------------------


def test_x_credentials_come_from_the_accounts_own_secret() -> None:
    source = StaticSecrets(
        {
            "platform/twitter/mira": json.dumps({"access_token": TOKEN, "app_bearer_token": APP_TOKEN}),
            "platform/twitter/nova": json.dumps({"access_token": "nova-token"}),
        }
    )
    mira = x_credentials(source, "mira")
    nova = x_credentials(source, "nova")
    assert mira is not None and (mira.access_token, mira.app_bearer_token) == (TOKEN, APP_TOKEN)
    assert nova is not None and (nova.access_token, nova.app_bearer_token) == ("nova-token", None)
    assert x_credentials(source, "someone_else") is None  # no secret: None, not another account's
    assert TOKEN not in repr(mira) and APP_TOKEN not in repr(mira)


def test_instagram_credentials_need_a_token_and_the_ig_user_id() -> None:
    good = StaticSecrets(
        {"platform/instagram/mira.threads": json.dumps({"access_token": IG_TOKEN, "ig_user_id": "17"})}
    )
    found = instagram_credentials(good, "mira.threads")
    assert found is not None and (found.access_token, found.ig_user_id) == (IG_TOKEN, "17")
    assert IG_TOKEN not in repr(found)
    missing = StaticSecrets({"platform/instagram/mira.threads": json.dumps({"access_token": IG_TOKEN})})
    with pytest.raises(CredentialsInvalid, match=r"'platform/instagram/mira.threads' lacks \['ig_user_id'\]"):
        instagram_credentials(missing, "mira.threads")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (f"access_token={TOKEN}", "is not JSON"),
        (json.dumps([TOKEN]), "must be a JSON object, not a JSON list"),
        (
            json.dumps({"acess_token": TOKEN}),
            r"unknown keys \['acess_token'\]; expected access_token, app_bearer_token",
        ),
        (json.dumps({"access_token": ""}), r"lacks \['access_token'\]"),
        (json.dumps({"access_token": TOKEN, "app_bearer_token": 7}), "must be strings"),
    ],
)
def test_a_malformed_secret_is_refused_by_name_never_by_value(raw: str, problem: str) -> None:
    with pytest.raises(CredentialsInvalid, match=problem) as err:
        x_credentials(StaticSecrets({"platform/twitter/mira": raw}), "mira")
    assert "platform/twitter/mira" in str(err.value)
    assert TOKEN not in str(err.value) and "SECRET" not in str(err.value)


# -- which account a call is bound to ----------------------------------------------------------------------


def claim(tenant: str, agent: str, platform: str, handle: str) -> PlatformAccount:
    return PlatformAccount(
        tenant_id=tenant, agent_id=agent, platform=platform, handle=handle, claimed_at=datetime(2026, 1, 1, tzinfo=UTC)
    )


CLAIMS = [
    claim("acme", "mira", "twitter", "mira_threads"),
    claim("acme", "mira", "instagram", "mira.threads"),
    claim("acme", "nova", "twitter", "nova_knits"),
    claim("globex", "ava", "twitter", "ava"),
]


def test_an_agent_calls_from_the_account_it_holds() -> None:
    assert choose(CLAIMS, tenant_id="acme", agent_id="mira", platform="twitter", handle=None) == "mira_threads"
    assert choose(CLAIMS, tenant_id="acme", agent_id="nova", platform="twitter", handle="@Nova_Knits") == "nova_knits"
    assert choose(CLAIMS, tenant_id="acme", agent_id=None, platform="instagram", handle=None) == "mira.threads"


def test_no_agent_or_tenant_reaches_an_account_it_does_not_hold() -> None:
    with pytest.raises(AccountRefused, match="@ava is not claimed by agent 'mira' of tenant 'acme'"):
        choose(CLAIMS, tenant_id="acme", agent_id="mira", platform="twitter", handle="@ava")  # globex's
    with pytest.raises(AccountRefused, match="belongs to agent 'nova', not to agent 'mira'"):
        choose(CLAIMS, tenant_id="acme", agent_id="mira", platform="twitter", handle="nova_knits")
    with pytest.raises(AccountRefused, match="holds no instagram account"):
        choose(CLAIMS, tenant_id="globex", agent_id="ava", platform="instagram", handle=None)
    with pytest.raises(AccountRefused, match=r"several twitter accounts \(@mira_threads, @nova_knits\)"):
        choose(CLAIMS, tenant_id="acme", agent_id=None, platform="twitter", handle=None)


# -- what the host does with the account -------------------------------------------------------------------


def test_the_bound_account_is_set_and_another_is_refused_not_corrected() -> None:
    args = {"text": "hi", "idempotency_key": "k"}
    assert bind_arguments("twitter", args, "mira_threads") == {**args, "account": "mira_threads"}
    assert bind_arguments("twitter", {**args, "account": "mira_threads"}, "mira_threads")["account"] == "mira_threads"
    with pytest.raises(McpAccountRefused, match="names account 'ava'"):
        bind_arguments("twitter", {**args, "account": "ava"}, "mira_threads")


def test_only_the_bound_accounts_resources_are_read() -> None:
    template = "twitter://accounts/{account}/mentions/unreplied"
    assert bind_uri("twitter", template, "mira", bound=True) == "twitter://accounts/mira/mentions/unreplied"
    assert bind_uri("twitter", "twitter://accounts/mira/trends/current", "mira", bound=True).endswith("current")
    for other in ("twitter://accounts/ava/mentions/unreplied", "twitter://accounts/%61va/mentions/recent"):
        with pytest.raises(McpAccountRefused, match="is account @ava's"):
            bind_uri("twitter", other, "mira", bound=True)
    with pytest.raises(McpAccountRefused, match="not an account's resource"):
        bind_uri("twitter", "twitter://mentions/unreplied", "mira", bound=True)
    with pytest.raises(McpAccountRefused, match="must name the account"):
        bind_uri("twitter", template, None, bound=True)  # an operator's read names the account itself
    assert bind_uri("news", "news://x/{account}", None, bound=False) == "news://x/{account}"
