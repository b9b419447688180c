"""Pure views of a campaign's progress: the status query's answer, the UI's details, the task outcomes
the planner reads, and what continue-as-new hands over. Kept out of CampaignWorkflow so it reads as flow.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.campaign import CampaignSpec
    from schemas.campaign_run import CampaignProgress, TaskRecord
    from schemas.events import CampaignStatus, TaskView
    from schemas.task import TERMINAL_STATUSES, TaskOutcome

MAX_ACKS = 50  # acks kept for the CLI to read back; older ones are dropped at continue-as-new


def status(spec: CampaignSpec, p: CampaignProgress) -> CampaignStatus:
    return CampaignStatus(
        campaign_id=spec.campaign_id,
        tenant_id=spec.tenant_id,
        agent_id=spec.agent_id,
        state=p.state,
        cycle=p.cycle,
        goals=p.goals,
        daily_budget_usd=p.daily_budget_usd,
        spend_today_usd=p.spent_today_usd,
        tasks_by_state=counts(p),
        pending_reviews=[r.task_id for r in p.tasks.values() if r.status == "pending_review"],
        tasks=[task_view(r) for r in p.tasks.values()],
        stop_reason=p.stop_reason,
        paused_by=p.paused_by,
        replans=p.replans,
        cycle_errors=p.cycle_errors,
        mentions_received=p.mentions_received,
    )


def counts(p: CampaignProgress) -> dict[str, int]:
    by_state: dict[str, int] = {}
    for rec in p.tasks.values():
        by_state[rec.status] = by_state.get(rec.status, 0) + 1
    return by_state


def task_view(rec: TaskRecord) -> TaskView:
    return TaskView(
        task_id=rec.task_id,
        key=rec.task.key,
        task_type=rec.task.task_type,
        platform=rec.task.platform,
        status=rec.status,
        attempt=rec.attempt,
        cycle=rec.cycle,
        confidence=rec.confidence,
        reason=rec.reason,
        post_id=rec.post_id,
    )


def as_outcome(rec: TaskRecord) -> TaskOutcome:
    return TaskOutcome(
        task_id=rec.task_id,
        key=rec.task.key,
        attempt=rec.attempt,
        status=rec.status,
        reason=rec.reason,
        confidence=rec.confidence,
        post_id=rec.post_id,
    )


def recent_outcomes(p: CampaignProgress) -> list[TaskOutcome]:
    """What the planner sees: the last 20 ended tasks, then every open one (so it never plans a second
    reply to a mention already in hand)."""
    open_tasks = [r for r in p.tasks.values() if r.status not in TERMINAL_STATUSES]
    ended = [r for r in p.tasks.values() if r.status in TERMINAL_STATUSES][-20:]
    return [as_outcome(r) for r in ended + open_tasks]


def details(spec: CampaignSpec, p: CampaignProgress, headline: str | None) -> str:
    """The markdown the Web UI shows as the campaign's current details."""
    lines = [
        f"### {spec.name} · {p.state} · cycle {p.cycle}",
        headline or "",
        "**Goals:** " + "; ".join(p.goals),
        f"**Budget:** ${p.spent_today_usd:.4f} of ${p.daily_budget_usd:.2f} today",
        "**Tasks:** " + (", ".join(f"{k} {v}" for k, v in sorted(counts(p).items())) or "none yet"),
    ]
    if p.cycle_errors:
        lines.append(f"**Last failed cycle:** {p.cycle_errors[-1]}")
    if p.stop_reason:
        lines.append(f"**Stopped:** {p.stop_reason}")
    return "\n\n".join(line for line in lines if line)


def prune_for_handover(p: CampaignProgress) -> None:
    """Trim what continue-as-new carries: open tasks and the last two cycles, plus every task they depend
    on (through re-plans), and the latest acks."""
    keep = {k for k, r in p.tasks.items() if r.status not in TERMINAL_STATUSES or r.cycle >= p.cycle - 1}
    keep.update(p.deferred_replans)
    todo = list(keep)
    while todo:
        rec = p.tasks[todo.pop()]
        linked = [*rec.task.depends_on, *([rec.replaced_by] if rec.replaced_by else [])]
        for key in linked:
            if key in p.tasks and key not in keep:
                keep.add(key)
                todo.append(key)
    p.tasks = {k: r for k, r in p.tasks.items() if k in keep}
    p.acks = dict(list(p.acks.items())[-MAX_ACKS:])
