"""What the business side plugs into the engine, by name.

BPMN refers to user tasks by element id (the public `task_key`) and to service tasks by
operation name. Business modules register a form handler per task key and a handler per
operation; deployment refuses diagrams that name anything not registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FormContext:
    """What a form handler may consult: the task's data and who completes it."""

    task_key: str
    data: dict[str, Any]
    actor_id: int
    team_id: int | None
    product_limits: Any = None  # min/max amount and term of the application's product, if read already


@dataclass(frozen=True)
class FormHandler:
    """Validates a task's submitted form; `describe` gives the form schema for clients."""

    validate: Callable[[dict[str, Any], FormContext], dict[str, Any]]
    describe: Callable[[dict[str, Any]], dict[str, Any]]
    approval: bool = False  # approval actions are refused outside the internal network (F21)
    after: Callable[[Any, dict[str, Any]], None] | None = None  # side effect on business rows
    needs_data: bool = False  # validation depends on the instance's data (loaded only then)
    on_assign: Callable[[Any, Any, int], None] | None = (
        None  # hands a process-assigned task over (task, target, actor id)
    )
    contact: bool = False  # its performer meets the customer: shown their name and phone (F10)


@dataclass(frozen=True)
class ServiceCall:
    """One outbox row handed to a service handler; `idempotency_key` is the outbox id."""

    operation: str
    idempotency_key: str
    instance_id: int
    data: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)


FORMS: dict[str, FormHandler] = {}
SERVICES: dict[str, Callable[[ServiceCall], dict[str, Any]]] = {}


def form(
    task_key: str,
    describe: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    approval: bool = False,
    after: Callable[[Any, dict[str, Any]], None] | None = None,
    needs_data: bool = False,
    on_assign: Callable[[Any, Any, int], None] | None = None,
    contact: bool = False,
):  # type: ignore[no-untyped-def]
    """Register the validator of `task_key`'s form (and what completing it changes)."""

    def decorate(fn: Callable[[dict[str, Any], FormContext], dict[str, Any]]):  # type: ignore[no-untyped-def]
        FORMS[task_key] = FormHandler(fn, describe, approval, after, needs_data, on_assign, contact)
        return fn

    return decorate


def service(operation: str):  # type: ignore[no-untyped-def]
    """Register the handler of a service-task operation."""

    def decorate(fn: Callable[[ServiceCall], dict[str, Any]]):  # type: ignore[no-untyped-def]
        SERVICES[operation] = fn
        return fn

    return decorate
