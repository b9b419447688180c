"""Handing a mention to its campaign: signal-with-start of the campaign's workflow.

Signal-with-start signals the running workflow, or starts it with the signal when no run is open (its input
rebuilt from the stored spec, as `chimera campaign start` builds it). `REJECT_DUPLICATE` makes a campaign
whose workflow has closed (stopped, completed) refuse instead of starting again: a closed campaign is never
restarted by a mention.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from chimera.control.campaigns import campaign_details, campaign_input, campaign_search_attributes, campaign_summary
from chimera.db import CampaignRecord
from chimera.temporal_config import TemporalConfig
from schemas.events import MentionDelivery
from workflows.campaign import CampaignWorkflow

MENTION_SIGNAL = "mention"  # CampaignWorkflow.mention


class SignalWithStart:
    """The ingress's signaller: True when the campaign took the signal, False when its workflow has closed."""

    def __init__(self, client: Client, config: TemporalConfig) -> None:
        self._client = client
        self._config = config

    async def __call__(self, campaign: CampaignRecord, delivery: MentionDelivery) -> bool:
        spec = campaign.spec
        inp = campaign_input(spec, self._config)
        try:
            await self._client.start_workflow(
                CampaignWorkflow.run,
                inp,
                id=spec.workflow_id,
                task_queue=inp.runtime.task_queues.planner,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                start_signal=MENTION_SIGNAL,
                start_signal_args=[delivery],
                search_attributes=campaign_search_attributes(spec),
                static_summary=campaign_summary(spec),
                static_details=campaign_details(spec),
            )
        except WorkflowAlreadyStartedError:
            return False
        return True
