"""The activity table is the one source of truth: implementations, workers and temporal.yaml follow it."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest

from activities.access import AccessActivities
from activities.budget import BudgetActivities
from activities.content import ContentActivities
from activities.judging import JudgeActivities
from activities.payments import PaymentActivities
from activities.planning import PlannerActivities
from activities.registry import RegistryError, by_role, entry_of, implementations, implements
from chimera.temporal_config import ConfigError, TemporalConfig, load_temporal_config
from schemas.activity_table import ROLES, Activities, Failure
from schemas.options import RuntimeOptions
from schemas.task import Reservation, SettleRequest
from workflows.calls import activity_options

ROOT = Path(__file__).resolve().parents[2]
CLASSES = (AccessActivities, PlannerActivities, BudgetActivities, ContentActivities, JudgeActivities, PaymentActivities)


def instances() -> list[object]:
    # The registry reads the methods only; the dependencies are never touched here.
    return [cls.__new__(cls) for cls in CLASSES]


def test_every_entry_has_exactly_one_implementation_with_its_types() -> None:
    found = implementations(instances())
    assert set(found) == Activities.names()
    for entry in Activities.all():
        method = found[entry.name]
        hints = typing.get_type_hints(method)
        params = list(inspect.signature(method).parameters)
        assert len(params) == 1, f"{entry.name} takes one input"
        assert hints[params[0]] is entry.input, entry.name
        assert hints["return"] is entry.result, entry.name


def test_each_role_registers_its_entries_and_nothing_else() -> None:
    registered = {role: [entry_of(m) for m in by_role(role, instances())] for role in ROLES}
    for role, entries in registered.items():
        assert entries == [e for e in Activities.all() if e.role == role]
    assert sum(len(v) for v in registered.values()) == len(Activities.all())


def test_a_missing_or_doubled_implementation_stops_the_worker() -> None:
    with pytest.raises(RegistryError, match=r"no implementation of the activities .*execute_task"):
        implementations([PlannerActivities.__new__(PlannerActivities)])

    class Again:
        @implements(Activities.settle_budget)
        def settle_again(self, req: SettleRequest) -> Reservation:
            raise AssertionError("never called")

    with pytest.raises(RegistryError, match="settle_budget is implemented twice"):
        implementations([*instances(), Again()])


def test_failures_that_never_retry_come_from_the_table() -> None:
    runtime = load_temporal_config(ROOT / "temporal.yaml").runtime_options()
    commit = activity_options(runtime, Activities.commit_result)["retry_policy"]
    assert set(commit.non_retryable_error_types) == {
        Failure.STATE_CONFLICT,
        Failure.ALREADY_DONE,
        Failure.CAMPAIGN_STOPPED,
    }
    publish = activity_options(runtime, Activities.publish)
    assert publish["task_queue"] == runtime.task_queues.worker
    assert publish["retry_policy"].maximum_attempts == 10  # temporal.yaml still sets counts and intervals
    assert activity_options(runtime, Activities.observe)["retry_policy"].non_retryable_error_types == []


def test_temporal_yaml_names_only_table_activities_and_no_error_types(tmp_path: Path) -> None:
    assert set(load_temporal_config(ROOT / "temporal.yaml").activities) == Activities.names()
    with pytest.raises(ValueError, match=r"unknown activities: \['publsh'\]"):
        TemporalConfig.model_validate({"activities": {"publsh": {}}}).runtime_options()
    bad = tmp_path / "temporal.yaml"
    bad.write_text("activities:\n  plan:\n    retry: {non_retryable_error_types: [InvalidPlan]}\n")
    with pytest.raises(ConfigError, match="declared in code, once per activity"):
        load_temporal_config(bad)
    bad.write_text("activities:\n  plan:\n    retry: {maximum_atempts: 3}\n")
    with pytest.raises(ConfigError, match="maximum_atempts"):
        load_temporal_config(bad)


def test_inputs_recorded_with_error_types_still_parse() -> None:
    # Workflow inputs in recorded histories carry the old key; it must not break their replay.
    old = {"activities": {"plan": {"retry": {"maximum_attempts": 5, "non_retryable_error_types": ["InvalidPlan"]}}}}
    assert RuntimeOptions.model_validate(old).activity("plan").retry.maximum_attempts == 5
