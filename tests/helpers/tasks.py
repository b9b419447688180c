"""A content task's input as its campaign builds it, for tests that run activities directly."""

from __future__ import annotations

from schemas.campaign import CampaignSpec
from schemas.campaign_run import CampaignProgress, TaskRecord, task_id_for
from schemas.options import RuntimeOptions
from schemas.plan import PlannedTask
from schemas.task import ContentTaskInput
from workflows.campaign_inputs import child_input


def content_input(spec: CampaignSpec, task: PlannedTask) -> ContentTaskInput:
    """First cycle, first attempt, default runtime options, built by the campaign's own builder."""
    progress = CampaignProgress(goals=list(spec.goals), daily_budget_usd=spec.daily_budget_usd)
    rec = TaskRecord(task_id=task_id_for(spec.tenant_id, spec.campaign_id, task.key), task=task, cycle=1)
    return child_input(spec, progress, rec, RuntimeOptions(), spec.workflow_id)
