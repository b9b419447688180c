"""People and authority: every role x every action, and forged, replayed, expired and revoked requests,
checked by the real verifier against the real user directory (SQLite)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chimera.access.authorize import VALIDITY, authorize
from chimera.access.credentials import UserCredentials
from chimera.access.signing import sign
from chimera.access.tokens import issue, operator
from chimera.access.users import NotAllowed, add_user, check_admin, ensure_local_admin, list_users, revoke, rotate
from chimera.db import StateStore
from chimera.settings import Settings
from schemas.access import ACTIONS, FLEET_SCOPE, ROLE_ACTIONS, ROLES, Action, Authorization, AuthorizeRequest, Role
from schemas.events import ControlRequest

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TARGET = "campaign-acme-spring"


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore(f"sqlite:///{tmp_path / 'chimera.db'}")
    s.ensure_schema()
    return s


@pytest.fixture
def admin(store: StateStore) -> UserCredentials:
    return add_user(store, "root", FLEET_SCOPE, "administrator", by=None, bootstrap=True)


def people(store: StateStore, admin: UserCredentials) -> dict[Role, UserCredentials]:
    return {role: add_user(store, f"acme-{role}", "acme", role, by=admin) for role in ROLES}


def check(
    req: ControlRequest,
    action: Action,
    *,
    target: str = TARGET,
    tenant: str | None = "acme",
    received: datetime = NOW,
    recipient: str = TARGET,
) -> AuthorizeRequest:
    return AuthorizeRequest(
        action=action,
        target=target,
        tenant_id=tenant,
        agent_id="mira",
        recipient=recipient,
        request_id=req.request_id,
        body=req.signed_body(),
        signature=req.signature,
        received_at=received.isoformat(),
    )


def request(creds: UserCredentials, action: Action, *, target: str = TARGET, at: datetime = NOW) -> ControlRequest:
    plain = ControlRequest(request_id=str(uuid.uuid4()), actor="anyone", reason="because")
    return creds.sign(plain, action, target, now=at)


def decide(store: StateStore, req: AuthorizeRequest, attempt: str = "run-1:1", now: datetime = NOW) -> Authorization:
    return authorize(req, store, store, attempt_key=attempt, now=now)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_role_and_action_is_allowed_or_refused_as_the_table_says(
    store: StateStore, admin: UserCredentials, role: Role, action: Action
) -> None:
    creds = people(store, admin)[role]
    answer = decide(store, check(request(creds, action), action))
    assert answer.allowed == (action in ROLE_ACTIONS[role])
    assert answer.actor == f"acme-{role}" and answer.role == role
    if not answer.allowed:
        assert f"{action} needs a" in answer.reason and role in answer.reason


def test_the_roles_nest_as_seed_2_4_says() -> None:
    assert ROLE_ACTIONS["content_reviewer"] == {"review.approve", "review.reject", "review.edit"}
    assert ROLE_ACTIONS["content_reviewer"] < ROLE_ACTIONS["campaign_manager"] < ROLE_ACTIONS["administrator"]
    admin_only = ROLE_ACTIONS["administrator"] - ROLE_ACTIONS["campaign_manager"]
    assert {"persona.change", "agent.stop", "fleet.stop", "mcp.approve", "tenant.budget", "user.manage"} <= admin_only
    assert "judge.override" in admin_only and "stop.lift" in admin_only


def test_an_unsigned_request_is_unauthenticated(store: StateStore, admin: UserCredentials) -> None:
    plain = ControlRequest(request_id="r", actor="root")
    answer = decide(store, check(plain, "campaign.pause"))
    assert not answer.allowed and answer.actor == "unauthenticated" and "not signed" in answer.reason


def test_forged_requests_are_refused(store: StateStore, admin: UserCredentials) -> None:
    mallory = add_user(store, "mallory", "acme", "content_reviewer", by=admin)
    good = request(admin, "campaign.pause")
    # The body changed after signing (a different reason), another target, another action, another's key.
    tampered = good.model_copy(update={"reason": "mine now"})
    assert "forged" in decide(store, check(tampered, "campaign.pause")).reason
    assert "forged" in decide(store, check(good, "campaign.pause", target="campaign-other")).reason
    assert "forged" in decide(store, check(good, "campaign.stop")).reason
    assert good.signature is not None
    stolen_id = good.model_copy(update={"signature": good.signature.model_copy(update={"key_id": mallory.key_id})})
    assert "forged" in decide(store, check(stolen_id, "campaign.pause")).reason
    unknown = good.model_copy(update={"signature": good.signature.model_copy(update={"key_id": "k_0000"})})
    assert decide(store, check(unknown, "campaign.pause")).reason == "unauthenticated: unknown key k_0000"


def test_a_replayed_request_is_refused_but_a_retry_of_the_same_check_is_not(
    store: StateStore, admin: UserCredentials
) -> None:
    req = request(admin, "campaign.pause")
    assert decide(store, check(req, "campaign.pause"), attempt="run-1:7").allowed
    assert decide(store, check(req, "campaign.pause"), attempt="run-1:7").allowed  # the activity retried
    replay = decide(store, check(req, "campaign.pause"), attempt="run-2:3")  # the same request sent again
    assert not replay.allowed and replay.reason.startswith("replayed: request")
    # One stop signed for the fleet reaches several campaigns: each recipient may use it once.
    stop = request(admin, "fleet.stop", target="fleet")
    for recipient in ("campaign-a", "campaign-b"):
        answer = decide(store, check(stop, "fleet.stop", target="fleet", tenant=None, recipient=recipient))
        assert answer.allowed, answer.reason


def test_an_expired_or_future_request_is_refused(store: StateStore, admin: UserCredentials) -> None:
    old = request(admin, "campaign.pause", at=NOW - VALIDITY - timedelta(seconds=1))
    answer = decide(store, check(old, "campaign.pause"))
    assert not answer.allowed and answer.reason.startswith("expired: signed 301s before")
    future = request(admin, "campaign.pause", at=NOW + timedelta(minutes=5))
    assert "in the future" in decide(store, check(future, "campaign.pause")).reason
    # A workflow received it in time even if the check runs later (a worker was down): still valid.
    late_check = decide(store, check(request(admin, "campaign.pause"), "campaign.pause"), now=NOW + timedelta(hours=1))
    assert late_check.allowed


def test_tenant_scope_is_enforced(store: StateStore, admin: UserCredentials) -> None:
    acme_admin = add_user(store, "acme-boss", "acme", "administrator", by=admin)
    other = decide(store, check(request(acme_admin, "campaign.pause"), "campaign.pause", tenant="globex"))
    assert not other.allowed and other.reason == "acme-boss acts for tenant acme, not globex"
    fleet = decide(
        store, check(request(acme_admin, "fleet.stop", target="fleet"), "fleet.stop", target="fleet", tenant=None)
    )
    assert not fleet.allowed and "only the fleet's operators" in fleet.reason
    assert decide(store, check(request(admin, "campaign.pause"), "campaign.pause", tenant="globex")).allowed


def test_revoked_users_and_rotated_keys_are_refused(store: StateStore, admin: UserCredentials) -> None:
    maya = add_user(store, "maya", "acme", "campaign_manager", by=admin)
    fresh = rotate(store, "maya", by=maya)  # a user may rotate their own key
    old = decide(store, check(request(maya, "campaign.pause"), "campaign.pause"))
    assert not old.allowed and "was revoked (rotated" in old.reason
    assert decide(store, check(request(fresh, "campaign.pause"), "campaign.pause")).allowed
    revoke(store, "maya", by=admin)
    gone = decide(store, check(request(fresh, "campaign.pause"), "campaign.pause"))
    assert not gone.allowed and gone.reason.startswith("user maya was revoked")


def test_user_management_is_for_administrators_and_audited(store: StateStore, admin: UserCredentials) -> None:
    with pytest.raises(NotAllowed, match="only for the first user"):
        add_user(store, "second-root", FLEET_SCOPE, "administrator", by=None, bootstrap=True)
    manager = add_user(store, "maya", "acme", "campaign_manager", by=admin)
    with pytest.raises(NotAllowed, match=r"maya is a campaign_manager: user.manage needs an administrator"):
        add_user(store, "eve", "acme", "administrator", by=manager)
    acme_admin = add_user(store, "acme-boss", "acme", "administrator", by=admin)
    with pytest.raises(NotAllowed, match="acts for tenant acme, not globex"):
        add_user(store, "gus", "globex", "content_reviewer", by=acme_admin)
    add_user(store, "lena", "acme", "content_reviewer", by=acme_admin)
    assert [u.name for u in list_users(store, by=acme_admin)] == ["acme-boss", "lena", "maya"]
    assert {u.name for u in list_users(store, by=admin)} == {"root", "acme-boss", "lena", "maya"}
    chain = store.audit_entries("_platform")
    assert [e.action for e in chain if e.action.startswith("user_")].count("user_add") == 4
    # A refusal is on the chain of the tenant it was about.
    refused = [e for t in ("acme", "globex") for e in store.audit_entries(t) if e.action == "request_refused"]
    assert [(e.tenant_id, e.actor) for e in refused] == [("acme", "maya"), ("globex", "acme-boss")]
    assert refused[1].detail["reason"] == "acme-boss acts for tenant acme, not globex"
    with pytest.raises(NotAllowed):
        check_admin(store, manager, "acme", "list")


def test_the_local_admin_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    store = StateStore(settings.resolved_database_url)
    first = ensure_local_admin(settings, store)
    again = ensure_local_admin(settings, store)
    assert first.key_id == again.key_id and first.tenant_id == FLEET_SCOPE and first.role == "administrator"
    assert (tmp_path / "local-admin.json").stat().st_mode & 0o777 == 0o600
    assert "private_key" not in repr(first) or "**" in repr(first)


def test_operator_tokens_are_for_the_fleet_and_expire(store: StateStore, admin: UserCredentials) -> None:
    token = issue(admin, timedelta(minutes=5), now=NOW)
    assert operator(token, store, now=NOW) == "root"
    assert operator(token, store, now=NOW + timedelta(minutes=6)) is None
    claims, _, signature = token.partition(".")
    flipped = signature[:10] + ("B" if signature[10] != "B" else "C") + signature[11:]  # a data character, changed
    assert operator(f"{claims}.{flipped}", store, now=NOW) is None
    tenant_admin = add_user(store, "acme-boss", "acme", "administrator", by=admin)
    assert operator(issue(tenant_admin, timedelta(minutes=5), now=NOW), store, now=NOW) is None
    assert operator("not-a-token", store, now=NOW) is None


def test_a_signature_covers_the_time_it_was_made(admin: UserCredentials) -> None:
    key = admin.private_key.get_secret_value()
    a = sign(key, admin.key_id, NOW.isoformat(), "campaign.pause", TARGET, {"x": 1})
    b = sign(key, admin.key_id, (NOW + timedelta(seconds=1)).isoformat(), "campaign.pause", TARGET, {"x": 1})
    assert a.value != b.value
