"""Activity implementations name their entry in the activity table; workers register them from it.

    @implements(Activities.plan)
    async def plan(self, req: PlanRequest) -> TaskPlan: ...

registers the method under the entry's name, and mypy checks that it takes the entry's input and
returns its result. `by_role` then finds, for a role, the bound method of every entry of that role,
and refuses to start a worker whose implementations do not cover the table exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar, overload

from temporalio import activity

from schemas.activity_table import Activities, ActivityDef, Role

In = TypeVar("In")
Out = TypeVar("Out")
S = TypeVar("S")

_ENTRY = "__chimera_activity__"


class implements(Generic[In, Out]):
    def __init__(self, entry: ActivityDef[In, Out]) -> None:
        self._entry = entry

    @overload
    def __call__(
        self, fn: Callable[[S, In], Coroutine[Any, Any, Out]]
    ) -> Callable[[S, In], Coroutine[Any, Any, Out]]: ...

    @overload
    def __call__(self, fn: Callable[[S, In], Out]) -> Callable[[S, In], Out]: ...

    def __call__(self, fn: Callable[[S, In], Any]) -> Callable[[S, In], Any]:
        defined = activity.defn(name=self._entry.name)(fn)
        setattr(defined, _ENTRY, self._entry)
        return defined


def entry_of(method: Callable[..., Any]) -> ActivityDef[Any, Any] | None:
    entry = getattr(method, _ENTRY, None)
    return entry if isinstance(entry, ActivityDef) else None


class RegistryError(Exception):
    """The implementations do not match the activity table."""


def implementations(instances: Iterable[object]) -> dict[str, Callable[..., Any]]:
    """Every table entry's bound method, by name; missing or doubled implementations are an error."""
    found: dict[str, Callable[..., Any]] = {}
    for instance in instances:
        for attr in dir(type(instance)):
            method = getattr(instance, attr)
            entry = entry_of(method) if callable(method) else None
            if entry is None:
                continue
            if entry.name in found:
                raise RegistryError(f"activity {entry.name} is implemented twice")
            found[entry.name] = method
    missing = sorted(Activities.names() - set(found))
    if missing:
        raise RegistryError(f"no implementation of the activities {missing}")
    return found


def by_role(role: Role, instances: Iterable[object]) -> list[Callable[..., Any]]:
    """The bound methods a worker of `role` registers, in table order."""
    found = implementations(instances)
    return [found[entry.name] for entry in Activities.all() if entry.role == role]
