"""The campaign's look back (reflect: engagement owed, conversations archived) and its news watch (breaking news
re-plans mid-cycle), on the time-skipping server with scripted activities."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from schemas.events import CampaignStatus, EmergencyStop
from schemas.memory import MemoryPolicy
from schemas.news import BreakingNews, NewsWatch
from schemas.plan import Headline
from tests.helpers import scripted
from tests.helpers.campaigns import running, start, status
from tests.helpers.identity import signed
from tests.helpers.polling import eventually
from tests.helpers.scripted import MEDIUM, Script, post
from workflows.campaign import CampaignWorkflow

STORM = Headline(id="nw-77", title="Thrift stores report a secondhand boom", topic="retail")


def breaking(matched: str = "secondhand", banned: bool = False) -> BreakingNews:
    return BreakingNews(headline=STORM, matched=matched, banned=banned)


async def status_has(handle: object, key: str, state: str) -> bool:
    st = await status(handle)  # type: ignore[arg-type]
    return any(t.key == key and t.status == state for t in st.tasks)


async def _stop(handle: object) -> None:
    await handle.signal(  # type: ignore[attr-defined]
        CampaignWorkflow.emergency_stop,
        signed(EmergencyStop(request_id="s", actor="t", reason="done"), handle, "emergency_stop"),  # type: ignore[arg-type]
    )


async def test_a_breaking_headline_changes_the_next_task_before_the_cycle_ends(env: WorkflowEnvironment) -> None:
    # "first" waits for a human (escalated), so "second", which depends on it, is still only planned.
    script = Script(plans=[[post("first"), post("second", depends_on=["first"])]], scores={"first": MEDIUM})
    script.headlines = [Headline(id="nw-1", title="Old news", topic="retail")]
    script.news = [[], [breaking()]]  # nothing new at the first look, the headline at the second
    watch = NewsWatch(topics=["secondhand"], check_every_seconds=300)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(news=watch, cycle_interval_seconds=3600), max_cycles=2)

        async def reacted() -> CampaignStatus | None:
            st = await status(handle)
            return st if any(t.key == "c1n1-news-twitter" and t.status == "published" for t in st.tasks) else None

        await eventually(lambda: status_has(handle, "c1-first", "pending_review"))
        await env.sleep(700)  # two looks at the news (every 5 minutes), well inside the hour-long cycle
        st = await eventually(reacted)
        assert st.cycle == 1  # within the cycle, not at the next one
        by_key = {t.key: t for t in st.tasks}
        assert by_key["c1-second"].status == "cancelled"
        assert "superseded by breaking news" in by_key["c1-second"].reason
        assert by_key["c1-first"].status == "pending_review"  # a task already under way is left alone
        [news_plan] = [r for r in script.plan_requests if r.breaking]
        assert news_plan.breaking[0].headline.id == "nw-77" and news_plan.key_prefix == "c1n1-"
        first, second = script.news_checks[:2]
        assert first.seen == ["nw-1"]  # the cycle's own headlines are known, never breaking
        assert second.seen == ["nw-1"] and first.topics == ["secondhand"] and first.banned_topics == ["crypto"]
        [audit] = [a for a in script.audits if a.action == "breaking_news"]
        assert audit.detail["superseded"] == ["c1-second"] and audit.detail["planned"] == ["c1n1-news-twitter"]
        await _stop(handle)
        await handle.result()


async def test_news_on_a_banned_topic_replaces_planned_posts_with_ones_that_stay_clear(
    env: WorkflowEnvironment,
) -> None:
    script = Script(plans=[[post("first"), post("second", depends_on=["first"])]], scores={"first": MEDIUM})
    script.news = [[breaking("crypto", banned=True)]]
    async with running(env.client, script) as queue:
        spec = scripted.spec(news=NewsWatch(check_every_seconds=60))
        handle = await start(env.client, queue, spec, max_cycles=2)
        await eventually(lambda: status_has(handle, "c1-first", "pending_review"))
        await env.sleep(90)

        async def replaced() -> CampaignStatus | None:
            st = await status(handle)
            return st if any(t.key == "c1n1-news-twitter" for t in st.tasks) else None

        st = await eventually(replaced)
        assert {t.key: t.status for t in st.tasks}["c1-second"] == "cancelled"
        [audit] = [a for a in script.audits if a.action == "breaking_news"]
        assert audit.detail["banned"] == "yes" and audit.detail["matched"] == "crypto"
        await _stop(handle)
        await handle.result()


async def test_without_a_news_watch_nothing_is_looked_at_between_cycles(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("only")]])
    async with running(env.client, script) as queue:
        spec = scripted.spec(news=NewsWatch(check_every_seconds=0), cycle_interval_seconds=600)
        handle = await start(env.client, queue, spec, max_cycles=2)
        final = await handle.result()
        assert final.cycle == 2 and script.news_checks == []


async def test_each_cycle_reflects_on_the_posts_whose_engagement_is_due(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]])
    policy = MemoryPolicy(engagement_after_seconds=1800, short_term_window_seconds=3600)
    async with running(env.client, script) as queue:
        spec = scripted.spec(memory=policy, news=NewsWatch(check_every_seconds=0), cycle_interval_seconds=3600)
        handle = await start(env.client, queue, spec, max_cycles=3)
        await handle.result()
    first, second, third = script.reflections
    assert first.due == []  # nothing published yet
    assert [p.key for p in second.due] == ["c1-tw"]  # published an hour ago, due after 30 minutes
    assert second.due[0].post_id == "p-1" and second.due[0].text == "draft for c1-tw"
    assert [p.key for p in third.due] == ["c2-tw"]  # c1-tw was measured: not owed again
    assert third.policy.short_term_window_seconds == 3600 and third.agent_id == "mira-okafor"
