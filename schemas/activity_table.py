"""Every activity Chimera runs: its name, the role whose task queue runs it, its input and its result.

This table is the one source of truth. Workflows call activities through its entries
(`workflows.calls.run_activity(Activities.plan, request, ...)`, so mypy checks the argument and the
result); implementations say which entry they implement (`activities.registry.implements`); workers
register each role's activities from it; temporal.yaml may configure only the names listed here, and
only timeouts and retry counts: which failures never retry is declared here, once.

It imports only the contracts, so the workflow sandbox stays free of heavy modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from schemas.access import Authorization, AuthorizeRequest
from schemas.campaign import CampaignSpec
from schemas.campaign_run import ObserveRequest
from schemas.events import ControlAudit, ScopeMembers, ScopeStop, StopRecord, StopRecorded
from schemas.memory import Reflection, ReflectRequest
from schemas.news import NewsCheck, NewsFound
from schemas.payment import (
    AssessRequest,
    PaymentAssessment,
    PaymentConfirmation,
    PaymentEvent,
    PaymentInput,
    PaymentReservation,
    PaymentSettle,
    Prepared,
    ReserveRequest,
    SendRequest,
    WalletSent,
)
from schemas.plan import Observation, TaskPlan
from schemas.policy import JudgeScores
from schemas.review import ReviewRecord
from schemas.task import (
    BudgetRequest,
    CommitInput,
    CommitResult,
    ContentTaskInput,
    JudgeInput,
    OutcomeRecord,
    PlanRequest,
    PublishInput,
    PublishResult,
    Reservation,
    SettleRequest,
    TaskResult,
    VerdictRecord,
)

Role = Literal["planner", "worker", "judge"]
ROLES: tuple[Role, ...] = ("planner", "worker", "judge")

In = TypeVar("In")
Out = TypeVar("Out")


class Failure(StrEnum):
    """The error types activities fail with (`ApplicationError.type`). Retried unless an entry says never."""

    INVALID_PLAN = "InvalidPlan"  # the planner's plan breaks the rules: planning again gives the same plan
    INVALID_TASK = "InvalidTask"  # the model cannot write this task at all
    STATE_CONFLICT = "StateConflict"  # what the task read has changed: the campaign re-plans instead
    CAMPAIGN_STOPPED = "CampaignStopped"  # an emergency stop: nothing more is committed or published
    PUBLISH_REFUSED = "PublishRefused"  # the platform refused this post: the same post cannot succeed
    ALREADY_DONE = "AlreadyDone"  # the task's goal is met already (the mention has a reply): nothing to re-plan
    RATE_LIMITED = "RateLimited"  # retried after the platform's retry-after (a durable wait)
    RETRY_LATER = "RetryLater"  # retried after the service's retry-after
    TOOL_FAILED = "ToolFailed"  # a tool the draft needs failed; retried
    MODEL_UNAVAILABLE = "ModelUnavailable"  # overloaded, 5xx or a timeout: retried; the tier's fallback takes over
    MODEL_MISCONFIGURED = "ModelMisconfigured"  # a key, model id or request the provider refuses: fix the setting
    MODEL_REFUSED = "ModelRefused"  # the model declined the task: the campaign re-plans instead
    BUDGET_EXHAUSTED = "BudgetExhausted"  # no budget left today for this step
    ACCOUNT_TAKEN = "AccountTaken"  # a persona's handle is another tenant's or agent's account (specs/accounts.md)
    INVALID_ACCOUNT = "InvalidAccount"  # a persona's handle names no account
    INVALID_PAYMENT = "InvalidPayment"  # the request cannot be paid at all (unknown campaign, agent or payee)
    PAYMENT_FAILED = "PaymentFailed"  # the wallet or the chain refused it (funds, conflict): resending cannot help


@dataclass(frozen=True)
class ActivityDef(Generic[In, Out]):
    name: str
    role: Role
    input: type[In]
    result: type[Out]
    never_retry: frozenset[Failure] = frozenset()


def _never(*failures: Failure) -> frozenset[Failure]:
    return frozenset(failures)


class Activities:
    """The table, in the order a campaign and a task use them."""

    register_campaign = ActivityDef(
        "register_campaign", "planner", CampaignSpec, type(None), _never(Failure.ACCOUNT_TAKEN, Failure.INVALID_ACCOUNT)
    )
    # Every change a person sends is checked here before a workflow applies it (chimera/access).
    authorize = ActivityDef("authorize", "planner", AuthorizeRequest, Authorization)
    record_scope_stop = ActivityDef("record_scope_stop", "planner", StopRecord, StopRecorded)
    find_in_scope = ActivityDef("find_in_scope", "planner", ScopeStop, ScopeMembers)
    # The Judge looks back first: engagement of earlier posts, and conversations old enough to archive.
    reflect = ActivityDef("reflect", "judge", ReflectRequest, Reflection)
    observe = ActivityDef("observe", "planner", ObserveRequest, Observation)
    watch_news = ActivityDef("watch_news", "planner", NewsCheck, NewsFound)
    plan = ActivityDef(
        "plan",
        "planner",
        PlanRequest,
        TaskPlan,
        _never(Failure.INVALID_PLAN, Failure.MODEL_MISCONFIGURED, Failure.MODEL_REFUSED, Failure.BUDGET_EXHAUSTED),
    )
    record_control = ActivityDef("record_control", "planner", ControlAudit, type(None))
    reserve_budget = ActivityDef("reserve_budget", "planner", BudgetRequest, Reservation)
    execute_task = ActivityDef(
        "execute_task",
        "worker",
        ContentTaskInput,
        TaskResult,
        _never(Failure.INVALID_TASK, Failure.ALREADY_DONE, Failure.MODEL_MISCONFIGURED, Failure.MODEL_REFUSED),
    )
    judge_result = ActivityDef("judge_result", "judge", JudgeInput, JudgeScores)
    record_verdict = ActivityDef("record_verdict", "judge", VerdictRecord, type(None))
    record_review = ActivityDef("record_review", "judge", ReviewRecord, type(None))
    commit_result = ActivityDef(
        "commit_result",
        "judge",
        CommitInput,
        CommitResult,
        _never(Failure.STATE_CONFLICT, Failure.ALREADY_DONE, Failure.CAMPAIGN_STOPPED),
    )
    publish = ActivityDef(
        "publish",
        "worker",
        PublishInput,
        PublishResult,
        _never(Failure.PUBLISH_REFUSED, Failure.ALREADY_DONE, Failure.CAMPAIGN_STOPPED),
    )
    settle_budget = ActivityDef("settle_budget", "planner", SettleRequest, Reservation)
    record_outcome = ActivityDef("record_outcome", "judge", OutcomeRecord, type(None))

    # PaymentWorkflow (specs/payments.md): resolve, reserve, assess, (record), send, confirm, settle.
    prepare_payment = ActivityDef(
        "prepare_payment", "worker", PaymentInput, Prepared, _never(Failure.INVALID_PAYMENT, Failure.PAYMENT_FAILED)
    )
    reserve_payment = ActivityDef("reserve_payment", "planner", ReserveRequest, PaymentReservation)
    assess_payment = ActivityDef("assess_payment", "judge", AssessRequest, PaymentAssessment)
    # A status move the ledger refuses (InvalidPayment) is a bug: retrying repeats it.
    record_payment = ActivityDef("record_payment", "judge", PaymentEvent, type(None), _never(Failure.INVALID_PAYMENT))
    send_payment = ActivityDef(
        "send_payment", "worker", SendRequest, WalletSent, _never(Failure.PAYMENT_FAILED, Failure.CAMPAIGN_STOPPED)
    )
    payment_status = ActivityDef("payment_status", "worker", SendRequest, PaymentConfirmation)
    settle_payment = ActivityDef(
        "settle_payment", "planner", PaymentSettle, type(None), _never(Failure.INVALID_PAYMENT)
    )

    @classmethod
    def all(cls) -> tuple[ActivityDef[Any, Any], ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, ActivityDef))

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(d.name for d in cls.all())
