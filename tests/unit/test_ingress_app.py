"""The ingress app on a SQLite store with a recording signaller (no Temporal): answers, routing, de-duplication,
and what a failure leaves behind. tests/integration/test_ingress.py runs it against PostgreSQL and Temporal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from chimera.db import CampaignRecord, StateStore
from chimera.ingress import signatures
from chimera.ingress.app import MAX_BODY_BYTES, build_app
from chimera.ingress.credentials import WebhookSecrets
from chimera.ingress.intake import Ingress
from chimera.ingress.sandbox import signed_delivery
from schemas.events import MentionDelivery
from tests.unit.test_store import FakeClock, make_spec

SECRETS = WebhookSecrets(x_consumer_secret="x-secret", meta_app_secret="meta-secret", meta_verify_token="verify-me")


@dataclass
class Recorder:
    """Stands in for signal-with-start: records what it was asked, answers as told."""

    closed: set[str] = field(default_factory=set)  # campaign ids whose workflow has closed
    fail: bool = False
    calls: list[tuple[str, MentionDelivery]] = field(default_factory=list)

    async def __call__(self, campaign: CampaignRecord, delivery: MentionDelivery) -> bool:
        if self.fail:
            raise RuntimeError("Temporal is unreachable")
        self.calls.append((campaign.campaign_id, delivery))
        return campaign.campaign_id not in self.closed


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[StateStore]:
    s = StateStore(f"sqlite:///{tmp_path / 'chimera.db'}", clock=clock)
    yield s
    s.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(store: StateStore, recorder: Recorder, clock: FakeClock) -> Iterator[TestClient]:
    accounts = {"twitter:2244994945": "@ava", "instagram:178414": "ava.ig"}
    ingress = Ingress(store, recorder, accounts, clock=clock)
    with TestClient(build_app(ingress, SECRETS)) as c:
        yield c


def add_campaign(store: StateStore, clock: FakeClock, campaign: str, status: str = "running", **spec: Any) -> None:
    clock.now += timedelta(minutes=1)  # later campaigns are younger: routing prefers the oldest
    store.ensure_campaign(make_spec(campaign=campaign, **spec))
    if status != "running":
        store.set_campaign_status("acme", campaign, status, actor="ops", reason="test")


def mention(mention_id: str, author: str = "ana") -> dict[str, Any]:
    return {"id": mention_id, "author": author, "text": "@ava where is the swap?", "created_at": "2026-05-01T11:59:00Z"}


def post(client: TestClient, platform: str, account: str, mention_id: str) -> Any:
    path, headers, body = signed_delivery(platform, account, mention(mention_id), SECRETS)
    return client.post(path, content=body, headers=headers)


def outcomes(response: Any) -> list[tuple[str, str | None]]:
    return [(e["outcome"], e["campaign"]) for e in response.json()["events"]]


# --- the checks the platforms make -----------------------------------------------------------------


def test_the_crc_check_is_answered_with_the_signed_token(client: TestClient) -> None:
    answer = client.get("/webhooks/x", params={"crc_token": "challenge-123"})
    assert answer.status_code == 200
    assert answer.json() == {"response_token": signatures.x_signature("x-secret", b"challenge-123")}
    assert client.get("/webhooks/x").status_code == 400


def test_the_meta_challenge_is_echoed_only_for_the_verify_token(client: TestClient) -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    answer = client.get("/webhooks/meta", params=good)
    assert (answer.status_code, answer.text, answer.headers["content-type"]) == (
        200,
        "1158201444",
        "text/plain; charset=utf-8",
    )
    assert client.get("/webhooks/meta", params={**good, "hub.verify_token": "guess"}).status_code == 403
    assert client.get("/webhooks/meta", params={**good, "hub.mode": "unsubscribe"}).status_code == 403
    assert client.get("/webhooks/meta", params={**good, "hub.challenge": ""}).status_code == 400


# --- refusals ----------------------------------------------------------------------------------------


def test_unsigned_and_badly_signed_deliveries_are_refused_and_nothing_is_signalled(
    client: TestClient, store: StateStore, clock: FakeClock, recorder: Recorder
) -> None:
    add_campaign(store, clock, "launch")
    path, headers, body = signed_delivery("twitter", "@ava", mention("1"), SECRETS)
    unsigned = client.post(path, content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401 and "x-twitter-webhooks-signature" in unsigned.json()["error"]
    forged = client.post(
        path, content=body, headers={signatures.X_SIGNATURE_HEADER: signatures.x_signature("no", body)}
    )
    assert forged.status_code == 403
    tampered = client.post(path, content=body.replace(b"swap", b"scam"), headers=headers)
    assert tampered.status_code == 403
    meta_path, _, meta_body = signed_delivery("instagram", "ava.ig", mention("c1"), SECRETS)
    assert client.post(meta_path, content=meta_body, headers={}).status_code == 401
    wrong = {signatures.META_SIGNATURE_HEADER: signatures.meta_signature("x-secret", meta_body)}  # X's secret
    assert client.post(meta_path, content=meta_body, headers=wrong).status_code == 403
    assert recorder.calls == []
    assert client.post(path, content=body, headers=headers).status_code == 200  # the genuine one still counts
    assert len(recorder.calls) == 1


def test_malformed_bodies_are_refused_with_a_reason_and_claim_nothing(
    client: TestClient, store: StateStore, clock: FakeClock, recorder: Recorder
) -> None:
    add_campaign(store, clock, "launch")
    for body in (b"{not json", b"[]", json.dumps({"tweet_create_events": []}).encode()):
        answer = client.post(
            "/webhooks/x",
            content=body,
            headers={signatures.X_SIGNATURE_HEADER: signatures.x_signature("x-secret", body)},
        )
        assert answer.status_code == 400 and answer.json()["error"].startswith("malformed X delivery: ")
    assert recorder.calls == [] and store.claim_delivery("twitter", "probe", "-")


def test_a_body_over_the_limit_is_refused_unread(client: TestClient) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    answer = client.post("/webhooks/meta", content=body, headers={signatures.META_SIGNATURE_HEADER: "sha256=00"})
    assert answer.status_code == 413


# --- delivery, de-duplication, routing -------------------------------------------------------------


def test_a_good_delivery_signals_the_campaign_and_a_replay_is_refused(
    client: TestClient, store: StateStore, clock: FakeClock, recorder: Recorder
) -> None:
    add_campaign(store, clock, "launch")
    first = post(client, "twitter", "@ava", "tw-m-1")
    assert first.status_code == 200 and outcomes(first) == [("signalled", "acme/launch")]
    [(campaign, delivery)] = recorder.calls
    assert campaign == "launch" and delivery.event_id == "twitter:tw-m-1"
    assert (delivery.mention.id, delivery.mention.platform, delivery.mention.author) == ("tw-m-1", "twitter", "ana")
    assert delivery.received_at == "2026-05-01T12:01:00+00:00"
    replay = post(client, "twitter", "@ava", "tw-m-1")
    assert replay.status_code == 200 and outcomes(replay) == [("repeat", None)]  # 200: the platform stops retrying
    assert len(recorder.calls) == 1  # never signalled twice


def test_event_ids_are_namespaced_by_platform(
    client: TestClient, store: StateStore, clock: FakeClock, recorder: Recorder
) -> None:
    add_campaign(store, clock, "launch", platforms=["twitter", "instagram"], persona=_persona())
    assert outcomes(post(client, "twitter", "@ava", "42")) == [("signalled", "acme/launch")]
    assert outcomes(post(client, "instagram", "178414", "42")) == [("signalled", "acme/launch")]  # mapped account
    assert [d.event_id for _, d in recorder.calls] == ["twitter:42", "instagram:42"]


def test_live_account_ids_are_mapped_to_handles_in_settings(
    client: TestClient, store: StateStore, clock: FakeClock, recorder: Recorder
) -> None:
    add_campaign(store, clock, "launch")
    assert outcomes(post(client, "twitter", "2244994945", "7")) == [("signalled", "acme/launch")]
    assert outcomes(post(client, "twitter", "1111", "8"))[0][0] == "unroutable"


def test_the_oldest_running_or_paused_campaign_gets_the_mention(
    client: TestClient, store: StateStore, clock: FakeClock, recorder: Recorder
) -> None:
    add_campaign(store, clock, "stopped-one", status="stopped")
    add_campaign(store, clock, "paused-one", status="paused")
    add_campaign(store, clock, "younger")
    add_campaign(store, clock, "elsewhere", platforms=["instagram"], persona=_persona())  # not on twitter
    assert outcomes(post(client, "twitter", "@AVA", "1")) == [("signalled", "acme/paused-one")]
    assert [c for c, _ in recorder.calls] == ["paused-one"]  # exactly one campaign


def test_a_closed_campaign_is_passed_over_and_never_restarted(
    client: TestClient, store: StateStore, clock: FakeClock, recorder: Recorder
) -> None:
    add_campaign(store, clock, "finished")
    recorder.closed.add("finished")
    assert outcomes(post(client, "twitter", "@ava", "1")) == [("closed", "acme/finished")]
    add_campaign(store, clock, "next")
    assert outcomes(post(client, "twitter", "@ava", "2")) == [("signalled", "acme/next")]


def test_an_unroutable_mention_is_answered_200(client: TestClient, recorder: Recorder) -> None:
    answer = post(client, "twitter", "@nobody", "1")
    assert answer.status_code == 200
    [event] = answer.json()["events"]
    assert event["outcome"] == "unroutable" and "'@nobody'" in event["detail"]


def test_when_temporal_fails_the_claim_is_released_for_the_platforms_retry(
    client: TestClient, store: StateStore, clock: FakeClock, recorder: Recorder
) -> None:
    add_campaign(store, clock, "launch")
    recorder.fail = True
    failed = post(client, "twitter", "@ava", "1")
    assert failed.status_code == 503 and "retry later" in failed.json()["error"]
    recorder.fail = False
    retried = post(client, "twitter", "@ava", "1")
    assert outcomes(retried) == [("signalled", "acme/launch")]


def test_a_batch_that_fails_part_way_keeps_what_was_signalled(
    client: TestClient, store: StateStore, clock: FakeClock, recorder: Recorder
) -> None:
    add_campaign(store, clock, "launch")
    body_of = {"for_user_id": "@ava", "tweet_create_events": [_tweet("1"), _tweet("2")]}
    body = json.dumps(body_of).encode()
    headers = {signatures.X_SIGNATURE_HEADER: signatures.x_signature("x-secret", body)}
    calls = 0

    async def second_fails(campaign: CampaignRecord, delivery: MentionDelivery) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("Temporal went away")
        return await recorder(campaign, delivery)

    with TestClient(build_app(Ingress(store, second_fails, {}), SECRETS)) as flaky:
        failed = flaky.post("/webhooks/x", content=body, headers=headers)
    assert failed.status_code == 503 and outcomes(failed) == [("signalled", "acme/launch")]
    retried = client.post("/webhooks/x", content=body, headers=headers)  # the platform retries the whole body
    assert outcomes(retried) == [("repeat", None), ("signalled", "acme/launch")]
    assert [d.mention.id for _, d in recorder.calls] == ["1", "2"]


def test_the_accounts_own_tweets_are_skipped_not_claimed(client: TestClient, recorder: Recorder) -> None:
    body = json.dumps({"for_user_id": "@ava", "tweet_create_events": [_tweet("1", author="ava")]}).encode()
    answer = client.post(
        "/webhooks/x", content=body, headers={signatures.X_SIGNATURE_HEADER: signatures.x_signature("x-secret", body)}
    )
    assert outcomes(answer) == [("skipped", None)] and recorder.calls == []


def _tweet(tweet_id: str, author: str = "ana") -> dict[str, Any]:
    return {"id_str": tweet_id, "text": "hi", "user": {"id_str": f"u-{author}", "screen_name": author}}


def _persona() -> Any:
    return make_spec().persona.model_copy(update={"handles": {"twitter": "@ava", "instagram": "ava.ig"}})
