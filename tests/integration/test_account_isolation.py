"""Two tenants, two personas on different handles, one MCP host with the real sandbox twitter and instagram servers
over stdio, and the real planner and content activities: no tenant ever reads another's mentions or posts from
another's account, however a call names the account (a model's argument, a spoofed argument, a spoofed handle or
resource URI), and no tenant can claim a handle another holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.content import ContentActivities
from activities.planning import PlannerActivities
from chimera.db import StateStore
from chimera.mcp import CallContext, McpHost
from chimera.mcp.account_binding import McpAccountRefused
from chimera.mcp.toolset import ToolCatalog
from chimera.models.offline import OfflineModelProvider
from chimera.settings import McpServerConfig, default_mcp_servers
from mcp_servers.social.sandbox import SandboxPlatform
from schemas.activity_table import Activities, Failure
from schemas.campaign import CampaignSpec
from schemas.campaign_run import ObserveRequest, task_id_for
from schemas.plan import Observation
from schemas.task import PublishInput, TaskRef
from tests.helpers import scripted
from tests.helpers.mcp_hosts import approved_host

env = ActivityEnvironment()
MIRA_HANDLES = {"twitter": "@mira_threads", "instagram": "mira.threads"}  # the demo persona's: the default accounts
NOVA_HANDLES = {"twitter": "@Nova_Knits", "instagram": "nova.knits"}


def spec_of(tenant: str, agent: str, handles: dict[str, str], campaign: str = "spring") -> CampaignSpec:
    persona = scripted.persona().model_copy(update={"id": agent, "handles": handles})
    return scripted.spec(tenant_id=tenant, campaign_id=campaign, persona=persona, platforms=["twitter", "instagram"])


A = spec_of("acme", "mira-okafor", MIRA_HANDLES)
B = spec_of("globex", "nova-berg", NOVA_HANDLES)


def social(**env_vars: str) -> dict[str, McpServerConfig]:
    return {name: default_mcp_servers()[name].model_copy(update={"env": env_vars}) for name in ("twitter", "instagram")}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    return tmp_path / "sandbox"


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'chimera.db'}")


@pytest.fixture
async def host(sandbox: Path, store: StateStore) -> McpHost:
    return await approved_host(sandbox, social(), store=store)


@pytest.fixture
def planner(store: StateStore, host: McpHost) -> PlannerActivities:
    p = PlannerActivities(store, host, OfflineModelProvider())
    for spec in (A, B):
        env.run(p.register_campaign, spec)  # claims each persona's handles for its agent
    return p


def ref(spec: CampaignSpec, key: str) -> TaskRef:
    return TaskRef(
        task_id=task_id_for(spec.tenant_id, spec.campaign_id, key),
        tenant_id=spec.tenant_id,
        campaign_id=spec.campaign_id,
        agent_id=spec.agent_id,
        campaign_workflow_id=spec.workflow_id,
    )


def context(spec: CampaignSpec, **changes: object) -> CallContext:
    base = CallContext(tenant_id=spec.tenant_id, actor="worker", agent_id=spec.agent_id, handles=spec.persona.handles)
    return base.model_copy(update=changes)


async def observe(planner: PlannerActivities, spec: CampaignSpec, *, with_handles: bool = True) -> Observation:
    handles = spec.persona.handles if with_handles else {}
    req = ObserveRequest(
        tenant_id=spec.tenant_id, campaign_id=spec.campaign_id, platforms=spec.platforms, handles=handles
    )
    return await env.run(planner.observe, req)


def ids(obs: Observation) -> set[str]:
    return {m.id for m in obs.mentions}


async def test_each_tenants_observe_sees_only_its_own_accounts_mentions(
    planner: PlannerActivities, sandbox: Path, store: StateStore
) -> None:
    to_mira = SandboxPlatform(sandbox, "twitter", account="mira_threads").add_mention("ana", "@mira_threads hi!")
    to_nova = SandboxPlatform(sandbox, "twitter", account="nova_knits").add_mention("bo", "@nova_knits which yarn?")
    comment = SandboxPlatform(sandbox, "instagram", account="nova.knits").add_mention("cy", "gorgeous")

    for with_handles in (True, False):  # the persona's handles, or the agent's claims alone
        mine = await observe(planner, A, with_handles=with_handles)
        theirs = await observe(planner, B, with_handles=with_handles)
        assert mine.errors == [] and theirs.errors == []
        assert to_mira["id"] in ids(mine) and len(ids(mine)) > 2  # with the seeded mentions of the demo persona
        assert ids(theirs) == {to_nova["id"], comment["id"]}
        assert ids(mine).isdisjoint(ids(theirs))
        assert mine.trends and theirs.trends  # trends are the platform's: each account sees them

    reads = [e.detail for e in store.audit_entries("globex", limit=500) if e.action == "mcp_read"]
    assert {d["account"] for d in reads} == {"nova_knits", "nova.knits"}
    assert all("nova" in str(d["uri"]) for d in reads)
    assert not any(e.action == "mcp_read" and "nova" in str(e.detail) for e in store.audit_entries("acme", limit=500))


async def test_two_agents_of_one_tenant_never_share_an_accounts_reads(
    planner: PlannerActivities, sandbox: Path
) -> None:
    ivy = spec_of("acme", "ivy-sews", {"twitter": "@ivy_sews", "instagram": "ivy.sews"}, campaign="autumn")
    env.run(planner.register_campaign, ivy)
    to_ivy = SandboxPlatform(sandbox, "twitter", account="ivy_sews").add_mention("di", "@ivy_sews hello")
    mira, theirs = await observe(planner, A), await observe(planner, ivy)  # within the shared-read window
    assert ids(theirs) == {to_ivy["id"]} and to_ivy["id"] not in ids(mira)


async def test_a_publish_lands_on_the_tenants_own_account_only(
    planner: PlannerActivities, host: McpHost, store: StateStore, sandbox: Path
) -> None:
    content = ContentActivities(store, host, OfflineModelProvider())
    mine = await env.run(
        content.publish, PublishInput(ref=ref(A, "p1"), platform="twitter", text="Mended.", idempotency_key="k-a")
    )
    theirs = await env.run(
        content.publish, PublishInput(ref=ref(B, "p1"), platform="twitter", text="Knitted.", idempotency_key="k-b")
    )
    mira_posts = SandboxPlatform(sandbox, "twitter").posts()
    nova_posts = SandboxPlatform(sandbox, "twitter", account="nova_knits").posts()
    assert [(p["post_id"], p["account"], p["text"]) for p in mira_posts] == [(mine.post_id, "mira_threads", "Mended.")]
    assert [(p["post_id"], p["account"], p["text"]) for p in nova_posts] == [(theirs.post_id, "nova_knits", "Knitted.")]

    # A reply to the other tenant's mention cannot reach it: on A's account it is no mention at all.
    to_nova = SandboxPlatform(sandbox, "twitter", account="nova_knits").add_mention("bo", "@nova_knits hi")
    hijack = PublishInput(
        ref=ref(A, "r1"), platform="twitter", text="Hi!", idempotency_key="k-a2", reply_to=to_nova["id"]
    )
    with pytest.raises(ApplicationError) as refused:
        await env.run(content.publish, hijack)
    assert refused.value.type == Failure.PUBLISH_REFUSED and "not_found" in refused.value.message
    assert [p["post_id"] for p in SandboxPlatform(sandbox, "twitter", account="nova_knits").posts()] == [theirs.post_id]

    calls = [e.detail for e in store.audit_entries("acme", limit=500) if e.action == "mcp_call"]
    assert calls and {d["account"] for d in calls} == {"mira_threads"}


async def test_a_call_naming_another_account_cannot_reach_it(
    planner: PlannerActivities, host: McpHost, sandbox: Path
) -> None:
    nova = SandboxPlatform(sandbox, "twitter", account="nova_knits")
    nova.post("Nova's own tweet.", "nova-key")
    mira = SandboxPlatform(sandbox, "twitter")
    mira.post("Mira's own tweet.", "mira-key")

    # The model: `account` is not in the schema it sees, and an account it passes anyway is ignored.
    toolset = await ToolCatalog(host).toolset(context(A))
    [find] = [t for t in toolset.tools if t.name == "find_tweet"]
    assert "account" not in find.input_schema["properties"]
    assert (await toolset.call("find_tweet", {"idempotency_key": "nova-key", "account": "nova_knits"})) == {
        "found": False
    }
    found = await toolset.call("find_tweet", {"idempotency_key": "mira-key", "account": "nova_knits"})
    assert found["found"] is True and found["post"]["text"] == "Mira's own tweet."

    # A spoofed argument, a spoofed resource URI and a spoofed persona handle are refused before anything is sent.
    spoof = {"text": "Posting as nova!", "idempotency_key": "spoof-1", "account": "nova_knits"}
    with pytest.raises(McpAccountRefused, match="names account 'nova_knits'"):
        await host.call_tool("twitter", "post_tweet", spoof, context(A))
    with pytest.raises(McpAccountRefused, match="is account @nova_knits's"):
        await host.read_resource("twitter", "twitter://accounts/nova_knits/mentions/unreplied", context(A))
    with pytest.raises(McpAccountRefused, match="@nova_knits is not claimed by agent 'mira-okafor' of tenant 'acme'"):
        await host.call_tool(
            "twitter", "post_tweet", {"text": "x", "idempotency_key": "spoof-2"}, context(A, handles=NOVA_HANDLES)
        )
    with pytest.raises(McpAccountRefused, match="holds no twitter account"):  # an agent of A with no claim
        await host.call_tool(
            "twitter", "find_tweet", {"idempotency_key": "nova-key"}, context(A, agent_id="eve", handles={})
        )
    assert [p["idempotency_key"] for p in nova.posts()] == ["nova-key"]
    assert [p["idempotency_key"] for p in mira.posts()] == ["mira-key"]


async def test_claiming_a_handle_another_tenant_holds_is_refused(planner: PlannerActivities, store: StateStore) -> None:
    stolen = spec_of("acme", "mira-okafor", {"twitter": "@nova_knits"}, campaign="heist")
    with pytest.raises(ApplicationError) as refused:
        env.run(planner.register_campaign, stolen)
    assert refused.value.type == Failure.ACCOUNT_TAKEN
    assert Failure.ACCOUNT_TAKEN in Activities.register_campaign.never_retry  # the same spec is refused again
    assert "@nova_knits is already claimed by another tenant" in refused.value.message
    assert store.get_campaign("acme", "heist") is None  # nothing registered, so no mention is routed to it
    assert [(r.tenant_id, r.campaign_id) for r in store.mention_routes("twitter", "nova_knits")] == [
        ("globex", "spring")
    ]
    refusals = [e.detail for e in store.audit_entries("acme") if e.action == "account.refused"]
    assert len(refusals) == 1 and "another tenant" in str(refusals[0]["reason"])


async def test_one_accounts_rate_limit_does_not_throttle_another(sandbox: Path, store: StateStore) -> None:
    host = await approved_host(sandbox, social(CHIMERA_SANDBOX_RATE_LIMIT="1"), store=store)
    planner = PlannerActivities(store, host, OfflineModelProvider())
    for spec in (A, B):
        env.run(planner.register_campaign, spec)
    content = ContentActivities(store, host, OfflineModelProvider())
    await env.run(content.publish, PublishInput(ref=ref(A, "a1"), platform="twitter", text="one", idempotency_key="a1"))
    with pytest.raises(ApplicationError) as limited:
        await env.run(
            content.publish, PublishInput(ref=ref(A, "a2"), platform="twitter", text="two", idempotency_key="a2")
        )
    assert limited.value.type == Failure.RATE_LIMITED
    nova = await env.run(
        content.publish, PublishInput(ref=ref(B, "b1"), platform="twitter", text="mine", idempotency_key="b1")
    )
    assert nova.duplicate is False
