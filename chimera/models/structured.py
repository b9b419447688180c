"""What a model must answer with (its JSON schemas), and how an answer becomes a plan or a draft.

The model never writes what Chimera can fill in itself: a reply names its mention by id and gets the
mention as it was observed (the model cannot invent or alter what it answers), and task keys get the
request's prefix. Every rule a plan must keep is checked here, so a bad answer gets one repair request
quoting exactly what was wrong.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.plan import Mention, PlannedTask, TaskPlan, Usage
from schemas.task import PlanRequest

KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,30}$"


class InvalidAnswer(ValueError):
    """The model's answer cannot be used; the message is what the repair request quotes."""


class ProposedTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="short slug, unique in this plan, e.g. 'reply-1' or 'post-thrift'")
    task_type: Literal["post", "reply"]
    platform: str = Field(description="one of the campaign's platforms")
    brief: str = Field(description="what the post or reply should do, in one or two sentences")
    goal: str | None = Field(None, description="the campaign goal it serves, quoted")
    topic: str | None = Field(None, description="the trend or topic it takes up, if any")
    mention_id: str | None = Field(None, description="for a reply: the id of the observed mention it answers")
    depends_on: list[str] = Field(default_factory=list, description="keys of tasks that must be published first")


class PlanProposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[ProposedTask]
    rationale: str = Field(description="why these tasks, in two sentences at most")


class MediaRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(description="what the image shows; no text in the image")


class SelfAssessment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brief_fit: float = Field(description="0 to 1: how well the draft does what the brief asks")
    voice_fit: float = Field(description="0 to 1: how much the draft sounds like the persona")
    concerns: list[str] = Field(default_factory=list, description="anything a reviewer should look at")


class DraftProposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the post or reply, without the hashtags listed below")
    hashtags: list[str] = Field(default_factory=list, description="hashtags to append, each starting with #")
    media_requests: list[MediaRequest] = Field(
        default_factory=list, description="images the post needs (an Instagram post needs one)"
    )
    self_assessment: SelfAssessment
    memory_ids: list[str] = Field(
        default_factory=list, description="ids of the memories (from the memory data blocks) the draft draws on"
    )


def parse_answer(model: type[BaseModel], text: str) -> Any:
    """The answer as `model`; raises InvalidAnswer with the validation errors, briefly."""
    try:
        return model.model_validate_json(text.strip() or "{}")
    except ValidationError as exc:
        raise InvalidAnswer(_errors(exc)) from exc


def to_plan(proposal: PlanProposal, request: PlanRequest, usage: Usage) -> TaskPlan:
    """The proposal as a TaskPlan under the request's rules; raises InvalidAnswer naming every broken rule."""
    mentions = {m.id: m for m in request.observation.mentions}
    if request.replan_of is not None and request.replan_of.mention is not None:
        mentions.setdefault(request.replan_of.mention.id, request.replan_of.mention)
    problems: list[str] = []
    keys = {t.key: _key(request.key_prefix, t.key) for t in proposal.tasks}
    tasks: list[PlannedTask] = []
    for proposed in proposal.tasks:
        mention: Mention | None = None
        if proposed.task_type == "reply":
            mention = mentions.get(proposed.mention_id or "")
            if mention is None:
                problems.append(f"task {proposed.key}: mention_id {proposed.mention_id!r} is not an observed mention")
                continue
        unknown = [d for d in proposed.depends_on if d not in keys]
        if unknown:
            problems.append(f"task {proposed.key}: depends_on names unknown tasks {unknown}")
            continue
        try:
            tasks.append(
                PlannedTask(
                    key=keys[proposed.key],
                    task_type=proposed.task_type,
                    platform=proposed.platform,
                    brief=proposed.brief,
                    goal=proposed.goal,
                    topic=proposed.topic,
                    mention=mention,
                    depends_on=[keys[d] for d in proposed.depends_on],
                )
            )
        except ValidationError as exc:
            problems.append(f"task {proposed.key}: {_errors(exc)}")
    if problems:
        raise InvalidAnswer("; ".join(problems))
    try:
        plan = TaskPlan(tasks=tasks, rationale=proposal.rationale, usage=usage)
    except ValidationError as exc:
        raise InvalidAnswer(_errors(exc)) from exc
    problems = plan_problems(plan, request)
    if problems:
        raise InvalidAnswer("; ".join(problems))
    return plan


def plan_problems(plan: TaskPlan, request: PlanRequest) -> list[str]:
    """The rules every plan keeps, whoever wrote it: key prefix, platforms, size, and what kind was asked."""
    problems = []
    for task in plan.tasks:
        if not task.key.startswith(request.key_prefix):
            problems.append(f"task key {task.key} must start with {request.key_prefix}")
        if task.platform not in request.platforms:
            problems.append(f"task {task.key} targets {task.platform}, not one of {request.platforms}")
        if request.replies_only and task.task_type != "reply":
            problems.append(f"task {task.key}: only replies to the observed mentions were asked for")
    if len(plan.tasks) > request.max_tasks:
        problems.append(f"{len(plan.tasks)} tasks exceed the limit of {request.max_tasks}")
    return problems


def final_text(proposal: DraftProposal) -> str:
    """The draft's text with its hashtags appended (those not already in it)."""
    text = proposal.text.strip()
    present = {w.lower() for w in text.split() if w.startswith("#")}
    tags = []
    for tag in proposal.hashtags:
        tag = tag.strip()
        tag = tag if tag.startswith("#") else f"#{tag}"
        if len(tag) > 1 and tag.lower() not in present:
            tags.append(tag)
            present.add(tag.lower())
    return f"{text} {' '.join(tags)}".strip() if tags else text


def brief_probability(proposal: DraftProposal) -> float:
    """The self-assessed probability that the draft meets its brief, clamped to [0, 1]."""
    return min(max(proposal.self_assessment.brief_fit, 0.0), 1.0)


def _key(prefix: str, key: str) -> str:
    return key if key.startswith(prefix) else f"{prefix}{key}"


def _errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:6]:
        where = ".".join(str(p) for p in error["loc"]) or "answer"
        parts.append(f"{where}: {error['msg']}")
    more = f" (+{exc.error_count() - 6} more)" if exc.error_count() > 6 else ""
    return "; ".join(parts) + more
