"""The typed search attribute keys Chimera sets, so operators can filter in the Web UI."""

from temporalio.common import SearchAttributeKey

TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
AGENT_ID = SearchAttributeKey.for_keyword("AgentId")
CAMPAIGN_ID = SearchAttributeKey.for_keyword("CampaignId")
TASK_TYPE = SearchAttributeKey.for_keyword("TaskType")
PLATFORM = SearchAttributeKey.for_keyword("Platform")
REVIEW_STATE = SearchAttributeKey.for_keyword("ReviewState")
CONFIDENCE = SearchAttributeKey.for_float("Confidence")
# A campaign's own state (running, paused, stopped, completed) and cycle, so listings need no query per workflow.
CAMPAIGN_STATE = SearchAttributeKey.for_keyword("CampaignState")
CAMPAIGN_CYCLE = SearchAttributeKey.for_int("CampaignCycle")

ALL_KEYS = (
    TENANT_ID,
    AGENT_ID,
    CAMPAIGN_ID,
    TASK_TYPE,
    PLATFORM,
    REVIEW_STATE,
    CONFIDENCE,
    CAMPAIGN_STATE,
    CAMPAIGN_CYCLE,
)
