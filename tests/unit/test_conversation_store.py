"""Short-term memory in the state store (conversation_turns): recorded once per mention, replies filled in,
authors matched case-blind, read oldest first, archived by age, forgotten by mention id; per tenant and agent.
tests/integration/test_conversations_postgres.py reruns these on PostgreSQL (the application role, under
row-level security), so every test here must hold on both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from chimera.db import StateStore, UnknownAgent
from chimera.db.models import CONVERSATION_TEXT_MAX
from schemas.memory import ConversationTurn
from tests.unit.test_store import (  # noqa: F401  # fixtures, used by name
    AGENT,
    TENANT,
    FakeClock,
    make_spec,
    make_store,
    store_url,
)

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
OTHER_TENANT = "globex"
OTHER_AGENT = "bo"


def turn(mention_id: str, at: datetime | str, author: str = "ana", **changes: object) -> ConversationTurn:
    fields: dict[str, object] = {
        "platform": "twitter",
        "author": author,
        "mention_id": mention_id,
        "said": f"hello from {mention_id}",
        "at": at if isinstance(at, str) else at.isoformat(),
        **changes,
    }
    return ConversationTurn.model_validate(fields)


def ids(turns: list[ConversationTurn]) -> list[str]:
    return [t.mention_id for t in turns]


@pytest.fixture
def store(make_store: Callable[..., StateStore]) -> StateStore:  # noqa: F811
    s = make_store(FakeClock(NOW))
    s.ensure_campaign(make_spec())
    s.ensure_campaign(make_spec(campaign="second", agent=OTHER_AGENT))  # another agent of the same tenant
    s.ensure_campaign(make_spec(tenant=OTHER_TENANT))  # the same agent id in another tenant
    return s


# ---- record_exchange --------------------------------------------------------------------------------


def test_a_new_turn_is_recorded_once(store: StateStore) -> None:
    first = turn("m1", NOW - timedelta(minutes=5), said="do you ship to Lyon?")
    assert store.record_exchange(TENANT, AGENT, first) is True
    assert store.record_exchange(TENANT, AGENT, first) is False  # a retried activity
    assert store.conversation(TENANT, AGENT, "twitter", "ana") == [
        first.model_copy(update={"at": "2026-03-09T11:55:00.000000+00:00"})
    ]


def test_a_retry_after_publishing_fills_in_the_reply_once(store: StateStore) -> None:
    assert store.record_exchange(TENANT, AGENT, turn("m1", NOW, said="first words"))
    published = turn("m1", NOW, said="first words", replied="we do!", reply_post_id="p-77")
    assert store.record_exchange(TENANT, AGENT, published) is False
    (kept,) = store.conversation(TENANT, AGENT, "twitter", "ana")
    assert (kept.replied, kept.reply_post_id) == ("we do!", "p-77")

    # Once filled in, neither is overwritten; what the author wrote and when stay as first recorded.
    later = turn("m1", NOW + timedelta(hours=1), said="edited?", replied="other reply", reply_post_id="p-78")
    assert store.record_exchange(TENANT, AGENT, later) is False
    assert store.conversation(TENANT, AGENT, "twitter", "ana") == [kept]


def test_the_reply_and_its_post_id_are_filled_in_separately(store: StateStore) -> None:
    store.record_exchange(TENANT, AGENT, turn("m1", NOW))
    store.record_exchange(TENANT, AGENT, turn("m1", NOW, replied="drafted reply"))  # no post id yet
    (kept,) = store.conversation(TENANT, AGENT, "twitter", "ana")
    assert (kept.replied, kept.reply_post_id) == ("drafted reply", None)
    store.record_exchange(TENANT, AGENT, turn("m1", NOW, reply_post_id="p-1"))  # the post id, no text: kept text
    (kept,) = store.conversation(TENANT, AGENT, "twitter", "ana")
    assert (kept.replied, kept.reply_post_id) == ("drafted reply", "p-1")


def test_racing_records_of_one_mention_keep_one_row_and_the_reply(store: StateStore) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def record(n: int) -> None:
        replied = {"replied": "the reply", "reply_post_id": "p-9"} if n % 2 else {}
        new = store.record_exchange(TENANT, AGENT, turn("m-race", NOW, **replied))
        with lock:
            results.append(new)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    (kept,) = store.conversation(TENANT, AGENT, "twitter", "ana")
    assert (kept.replied, kept.reply_post_id) == ("the reply", "p-9")


def test_the_same_mention_id_on_another_platform_is_another_turn(store: StateStore) -> None:
    assert store.record_exchange(TENANT, AGENT, turn("m1", NOW))
    assert store.record_exchange(TENANT, AGENT, turn("m1", NOW, platform="instagram"))
    assert ids(store.conversation(TENANT, AGENT, "instagram", "ana")) == ["m1"]
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana")) == ["m1"]


def test_an_unknown_agent_is_refused(store: StateStore) -> None:
    with pytest.raises(UnknownAgent, match="'nobody'"):
        store.record_exchange(TENANT, "nobody", turn("m1", NOW))


# ---- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["", "yesterday", "1700000000", "2026-13-01T00:00:00Z", "09/03/2026 12:00"])
def test_a_time_that_is_not_iso_8601_is_refused(store: StateStore, at: str) -> None:
    with pytest.raises(ValueError, match="is not ISO 8601"):
        store.record_exchange(TENANT, AGENT, turn("m1", at))
    assert store.turns_before(TENANT, AGENT, NOW + timedelta(days=3650)) == []


@pytest.mark.parametrize("at", ["2026-03-09T12:00:00", "2026-03-09"])
def test_a_time_without_an_offset_is_refused(store: StateStore, at: str) -> None:
    with pytest.raises(ValueError, match="has no UTC offset"):
        store.record_exchange(TENANT, AGENT, turn("m1", at))


def test_times_are_kept_as_times_and_returned_in_utc(store: StateStore) -> None:
    store.record_exchange(TENANT, AGENT, turn("m-paris", "2026-03-09T13:30:00+02:00"))  # 11:30 UTC
    store.record_exchange(TENANT, AGENT, turn("m-z", "2026-03-09T11:45:00.250Z"))
    store.record_exchange(TENANT, AGENT, turn("m-ny", "2026-03-09T07:00:00-05:00"))  # 12:00 UTC
    # As text "13:30+02:00" sorts after "11:45Z"; as times it comes first.
    turns = store.conversation(TENANT, AGENT, "twitter", "ana")
    assert [(t.mention_id, t.at) for t in turns] == [
        ("m-paris", "2026-03-09T11:30:00.000000+00:00"),
        ("m-z", "2026-03-09T11:45:00.250000+00:00"),
        ("m-ny", "2026-03-09T12:00:00.000000+00:00"),
    ]
    for t in turns:
        assert datetime.fromisoformat(t.at).utcoffset() == timedelta(0)


def test_texts_up_to_the_cap_are_kept_and_longer_ones_refused(store: StateStore) -> None:
    longest = "é" * CONVERSATION_TEXT_MAX  # characters, not bytes
    assert store.record_exchange(TENANT, AGENT, turn("m1", NOW, said=longest, replied=longest))
    assert store.conversation(TENANT, AGENT, "twitter", "ana")[0].said == longest
    with pytest.raises(ValueError, match="`said` has 10001 characters, more than the 10000"):
        store.record_exchange(TENANT, AGENT, turn("m2", NOW, said="x" * (CONVERSATION_TEXT_MAX + 1)))
    with pytest.raises(ValueError, match="`replied` has 10001 characters"):
        store.record_exchange(TENANT, AGENT, turn("m3", NOW, replied="x" * (CONVERSATION_TEXT_MAX + 1)))
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana")) == ["m1"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"author": "@"}, "author '@' must be a handle"),
        ({"author": "   "}, "must be a handle"),
        ({"author": "a" * 256}, "must be a handle of 1 to 255"),
        ({"mention_id": " "}, "mention id ' ' must be 1 to 255"),
        ({"mention_id": "m" * 256}, "mention id"),
        ({"platform": ""}, "platform '' must be a name"),
        ({"platform": "p" * 33}, "must be a name of 1 to 32"),
        ({"reply_post_id": ""}, "reply post id '' must be"),
        ({"said": "a\x00b"}, "`said` contains a NUL character"),
        ({"mention_id": "m\x001"}, "`mention_id` contains a NUL character"),
    ],
)
def test_blank_or_oversized_ids_are_refused(store: StateStore, changes: dict[str, str], message: str) -> None:
    fields: dict[str, object] = {"mention_id": "m1", "at": NOW, **changes}
    with pytest.raises(ValueError, match=message):
        store.record_exchange(TENANT, AGENT, turn(**fields))  # type: ignore[arg-type]


# ---- conversation ------------------------------------------------------------------------------------


def test_authors_match_case_blind_with_or_without_at(store: StateStore) -> None:
    store.record_exchange(TENANT, AGENT, turn("m1", NOW - timedelta(minutes=3), author="Ana_Lyon"))
    store.record_exchange(TENANT, AGENT, turn("m2", NOW - timedelta(minutes=2), author="@ana_lyon"))
    store.record_exchange(TENANT, AGENT, turn("m3", NOW - timedelta(minutes=1), author="ANA_LYON"))
    store.record_exchange(TENANT, AGENT, turn("m4", NOW, author="ana_lyons"))  # another author
    for asked in ("ana_lyon", "@Ana_Lyon", " ANA_lyon "):
        assert ids(store.conversation(TENANT, AGENT, "twitter", asked)) == ["m1", "m2", "m3"]
    # Each turn keeps the handle as the platform spelled it, without the '@'.
    authors = [t.author for t in store.conversation(TENANT, AGENT, "twitter", "ana_lyon")]
    assert authors == ["Ana_Lyon", "ana_lyon", "ANA_LYON"]
    assert ids(store.conversation(TENANT, AGENT, "Twitter", "ana_lyon")) == ["m1", "m2", "m3"]  # platform too


def test_the_newest_turns_come_back_oldest_first(store: StateStore) -> None:
    order = [("m5", 5), ("m1", 1), ("m3", 3), ("m2", 2), ("m4", 4)]  # recorded out of order
    for mention, minutes in order:
        store.record_exchange(TENANT, AGENT, turn(mention, NOW + timedelta(minutes=minutes)))
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana")) == ["m1", "m2", "m3", "m4", "m5"]
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana", limit=2)) == ["m4", "m5"]
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana", limit=1)) == ["m5"]
    assert store.conversation(TENANT, AGENT, "twitter", "ana", limit=0) == []


def test_turns_written_at_the_same_time_are_ordered_by_mention_id(store: StateStore) -> None:
    for mention in ("m-b", "m-c", "m-a"):
        store.record_exchange(TENANT, AGENT, turn(mention, NOW))
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana")) == ["m-a", "m-b", "m-c"]
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana", limit=2)) == ["m-b", "m-c"]


def test_the_default_limit_is_ten(store: StateStore) -> None:
    for n in range(12):
        store.record_exchange(TENANT, AGENT, turn(f"m{n:02}", NOW + timedelta(seconds=n)))
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana")) == [f"m{n:02}" for n in range(2, 12)]


@pytest.mark.parametrize("limit", [-1, 1001])
def test_a_limit_out_of_range_is_refused(store: StateStore, limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be an integer from 0 to 1000"):
        store.conversation(TENANT, AGENT, "twitter", "ana", limit=limit)
    with pytest.raises(ValueError, match="limit must be an integer from 0 to 1000"):
        store.turns_before(TENANT, AGENT, NOW, limit=limit)


def test_conversations_are_the_agents_own_and_the_tenants_own(store: StateStore) -> None:
    store.record_exchange(TENANT, AGENT, turn("m-ava", NOW))
    store.record_exchange(TENANT, OTHER_AGENT, turn("m-bo", NOW))
    store.record_exchange(OTHER_TENANT, AGENT, turn("m-globex", NOW))
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana")) == ["m-ava"]
    assert ids(store.conversation(TENANT, OTHER_AGENT, "twitter", "ana")) == ["m-bo"]
    assert ids(store.conversation(OTHER_TENANT, AGENT, "twitter", "ana")) == ["m-globex"]
    later = NOW + timedelta(days=1)
    assert ids(store.turns_before(TENANT, AGENT, later)) == ["m-ava"]
    assert ids(store.turns_before(TENANT, OTHER_AGENT, later)) == ["m-bo"]
    assert ids(store.turns_before(OTHER_TENANT, AGENT, later)) == ["m-globex"]


# ---- turns_before and forget_turns ------------------------------------------------------------------


def test_turns_before_is_strictly_before_the_cutoff(store: StateStore) -> None:
    cutoff = NOW - timedelta(days=30)
    store.record_exchange(TENANT, AGENT, turn("m-just-before", cutoff - timedelta(microseconds=1)))
    store.record_exchange(TENANT, AGENT, turn("m-at", cutoff))
    store.record_exchange(TENANT, AGENT, turn("m-after", cutoff + timedelta(microseconds=1)))
    store.record_exchange(TENANT, AGENT, turn("m-old", cutoff - timedelta(days=2), author="bea", platform="instagram"))
    assert ids(store.turns_before(TENANT, AGENT, cutoff)) == ["m-old", "m-just-before"]  # any author or platform
    # The cutoff compares as a time, in any zone.
    paris = cutoff.astimezone(timezone(timedelta(hours=1)))
    assert ids(store.turns_before(TENANT, AGENT, paris)) == ["m-old", "m-just-before"]
    assert ids(store.turns_before(TENANT, AGENT, cutoff, limit=1)) == ["m-old"]
    assert store.turns_before(TENANT, AGENT, cutoff, limit=0) == []
    assert ids(store.turns_before(TENANT, AGENT, cutoff + timedelta(seconds=1))) == [
        "m-old",
        "m-just-before",
        "m-at",
        "m-after",
    ]


def test_turns_before_needs_an_aware_cutoff(store: StateStore) -> None:
    with pytest.raises(ValueError, match="naive: it must be timezone-aware"):
        store.turns_before(TENANT, AGENT, datetime(2026, 3, 9, 12, 0))


def test_archived_turns_are_forgotten_by_mention_id(store: StateStore) -> None:
    for n in range(4):
        store.record_exchange(TENANT, AGENT, turn(f"m{n}", NOW + timedelta(minutes=n)))
    store.record_exchange(TENANT, AGENT, turn("m0", NOW, platform="instagram"))  # same id, other platform
    store.record_exchange(TENANT, OTHER_AGENT, turn("m1", NOW))  # same id, other agent
    store.record_exchange(OTHER_TENANT, AGENT, turn("m2", NOW))  # same id, other tenant

    assert store.forget_turns(TENANT, AGENT, "twitter", ["m0", "m1", "m1", "m-unknown"]) == 2
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana")) == ["m2", "m3"]
    assert ids(store.conversation(TENANT, AGENT, "instagram", "ana")) == ["m0"]
    assert ids(store.conversation(TENANT, OTHER_AGENT, "twitter", "ana")) == ["m1"]
    assert ids(store.conversation(OTHER_TENANT, AGENT, "twitter", "ana")) == ["m2"]
    assert store.forget_turns(TENANT, AGENT, "twitter", ["m0", "m1"]) == 0  # already gone
    assert store.forget_turns(TENANT, AGENT, "twitter", []) == 0
    # A forgotten mention recorded again is a new turn.
    assert store.record_exchange(TENANT, AGENT, turn("m0", NOW)) is True


def test_forgetting_many_turns_at_once(store: StateStore) -> None:
    """More ids than one DELETE takes (chunks of 500)."""
    for n in range(620):
        store.record_exchange(TENANT, AGENT, turn(f"m{n:04}", NOW + timedelta(seconds=n)))
    due = store.turns_before(TENANT, AGENT, NOW + timedelta(days=1), limit=600)
    assert len(due) == 600 and ids(due)[:2] == ["m0000", "m0001"]
    assert store.forget_turns(TENANT, AGENT, "twitter", ids(due)) == 600
    assert ids(store.turns_before(TENANT, AGENT, NOW + timedelta(days=1))) == [f"m{n:04}" for n in range(600, 620)]


def test_forget_turns_refuses_a_bare_string(store: StateStore) -> None:
    store.record_exchange(TENANT, AGENT, turn("m", NOW))
    with pytest.raises(TypeError, match="not the string 'm1'"):
        store.forget_turns(TENANT, AGENT, "twitter", "m1")
    assert ids(store.conversation(TENANT, AGENT, "twitter", "ana")) == ["m"]


# ---- the upgrade path (the PostgreSQL module replaces this test with its own) ----------------------


def test_the_table_arrives_on_a_database_at_0011(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from chimera.db import migrate

    url = f"sqlite:///{tmp_path / 'at-0011.db'}"
    migrate.upgrade(url, "0011")
    engine = create_engine(url)
    try:
        assert not inspect(engine).has_table("conversation_turns")
    finally:
        engine.dispose()
    store = StateStore(url, clock=FakeClock(NOW))  # SQLite is upgraded to the head on first use
    try:
        store.ensure_campaign(make_spec())
        assert store.record_exchange(TENANT, AGENT, turn("m1", NOW))
        assert ids(store.conversation(TENANT, AGENT, "twitter", "ana")) == ["m1"]
    finally:
        store.close()
    assert migrate.current_revision(url) == migrate.head()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0011")
        assert not inspect(engine).has_table("conversation_turns")
    finally:
        engine.dispose()
