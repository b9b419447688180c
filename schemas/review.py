"""Human review: the decision signal, its acknowledgement, and what a reviewer sees."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from schemas.access import Action, Signed
from schemas.memory import RecalledMemory
from schemas.plan import Mention
from schemas.policy import Verdict
from schemas.task import TaskStatus

ReviewAction = Literal["approve", "edit", "reject"]
ReviewState = Literal["none", "pending", "approved", "edited", "rejected", "expired", "cancelled"]
# A task's TaskStatus when it ended itself; Temporal's close status when it was ended from outside.
OutcomeStatus = TaskStatus | Literal["terminated", "timed_out"]


class ReviewDecision(Signed):
    request_id: str = Field(min_length=1, description="chosen by the sender; the ack carries it back")
    action: ReviewAction
    reviewer: str = Field(min_length=1)
    reason: str = ""
    text: str | None = Field(None, description="the new text, for edit")
    override: bool = Field(False, description="publish an edit despite a high-risk flag (needs a reason; audited)")

    @model_validator(mode="after")
    def _edit_has_text(self) -> ReviewDecision:
        if self.action == "edit" and not (self.text and self.text.strip()):
            raise ValueError("an edit needs the new text")
        if self.action == "reject" and not self.reason.strip():
            raise ValueError("a rejection needs a reason")
        if self.override and (self.action != "edit" or not self.reason.strip()):
            raise ValueError("an override is for an edit, and needs a reason")
        return self

    @property
    def access_action(self) -> Action:
        """What the decision needs authority for: overriding a Judge block is an administrator's."""
        return "judge.override" if self.override else REVIEW_ACTIONS[self.action]


REVIEW_ACTIONS: dict[ReviewAction, Action] = {
    "approve": "review.approve",
    "edit": "review.edit",
    "reject": "review.reject",
}


class Ack(BaseModel):
    """A workflow's answer to a signal: accepted, or refused with the reason."""

    request_id: str
    accepted: bool
    message: str


class AckQuery(BaseModel):
    request_id: str


class ReviewRecord(BaseModel):
    """Written when a task escalates, and again when it is decided."""

    task_id: str
    tenant_id: str
    campaign_id: str
    agent_id: str
    platform: str
    task_type: str
    text: str
    verdict: Verdict
    state: ReviewState
    deadline: str
    reviewer: str | None = None
    reason: str | None = None
    edited_text: str | None = None
    override: bool = Field(False, description="the edit was published despite a high-risk flag")


class ReviewView(BaseModel):
    """What `chimera review show` prints: the draft, why it was escalated, and its state."""

    task_id: str
    campaign_id: str
    platform: str
    task_type: str
    brief: str
    text: str
    state: ReviewState
    deadline: str | None
    verdict: Verdict | None
    mention: Mention | None = None
    reviewer: str | None = None
    reason: str | None = None
    media_ids: list[str] = Field(default_factory=list, description="images the post attaches (media store ids)")
    tools_used: list[str] = Field(default_factory=list, description="server.tool of each tool call, in order")
    memories_used: list[RecalledMemory] = Field(
        default_factory=list, description="what the writer was reminded of (conversation, memories, own posts)"
    )
    memories_cited: list[str] = Field(default_factory=list, description="ids of those the draft drew on")
    # How the task ended (None while it runs): published with its post, or why not (the reason says who
    # rejected it and why, the expiry, the stop, the publish refusal or the failure).
    outcome_status: OutcomeStatus | None = None
    outcome_reason: str | None = None
    post_id: str | None = None
    post_url: str | None = None
    note: str | None = Field(None, description="what this view could not read (e.g. no worker: from the result)")
