"""Process versions, instances and the decision service (F7, F19)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.auth.permissions import Caller
from app.errors import ApiError, not_found
from app.extensions import db
from app.loans.services import in_scope
from app.models import Application, HumanTask, ProcessDefinition, ProcessInstance, StageEntry
from app.workflow import decisions, runtime, sandbox


def list_versions() -> list[dict[str, Any]]:
    """Every deployed version, newest first within each key."""
    rows = db.session.scalars(
        select(ProcessDefinition).order_by(
            ProcessDefinition.kind, ProcessDefinition.key, ProcessDefinition.version.desc()
        )
    )
    return [describe(row) for row in rows]


def describe(row: ProcessDefinition) -> dict[str, Any]:
    """The public fields of a deployed version."""
    return {
        "kind": row.kind,
        "key": row.key,
        "version": row.version,
        "name": row.name,
        "checksum": row.checksum,
        "file_name": row.file_name,
        "bound_decisions": row.bound_decisions,
        "deployed_by_id": row.deployed_by_id,
        "deployed_at": row.deployed_at.isoformat(),
    }


def get_version(kind: str, key: str, version: int | None = None) -> ProcessDefinition:
    """One version (the newest when `version` is None), else 404."""
    query = select(ProcessDefinition).where(ProcessDefinition.kind == kind, ProcessDefinition.key == key)
    if version is not None:
        query = query.where(ProcessDefinition.version == version)
    row = db.session.scalar(query.order_by(ProcessDefinition.version.desc()).limit(1))
    if row is None:
        raise not_found(kind)
    return row


def evaluate(decision_id: str, inputs: Any, version: int | None) -> dict[str, Any]:
    """Evaluate a deployed decision table with the checks of `decisions.evaluate_table`."""
    if not isinstance(inputs, dict):
        raise ApiError("bad_request", "the body must be a JSON object of the decision's inputs", 400)
    row = get_version("decision", decision_id, version)
    try:
        outputs = decisions.evaluate_table(
            decision_id, decisions.deployed_table(row.id, row.source), decisions.coerce_inputs(inputs)
        )
    except decisions.DecisionError as exc:
        raise ApiError("decision_error", str(exc), 422, fields={"inputs": [str(exc)]}) from exc
    except sandbox.UnsafeExpression as exc:
        raise ApiError("decision_error", str(exc), 422) from exc
    return {"decision_id": decision_id, "version": row.version, "outputs": {k: _plain(v) for k, v in outputs.items()}}


def _plain(value: Any) -> Any:
    """Decimal outputs as decimal strings, money-style (two places) when they fit."""
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)
    return value


def instance_view(instance_id: int, who: Caller) -> dict[str, Any]:
    """State, version, current tasks and history of one instance within the caller's scope."""
    instance = db.session.get(ProcessInstance, instance_id)
    if instance is None:
        raise not_found("process instance")
    if who.scope("process.view") != "all":
        application = db.session.get(Application, instance.application_id) if instance.application_id else None
        if application is None or not in_scope(application, who, "process.view"):
            raise not_found("process instance")
    definition = db.session.get(ProcessDefinition, instance.definition_id)
    tasks = db.session.scalars(
        select(HumanTask).where(HumanTask.instance_id == instance.id).order_by(HumanTask.id)
    ).all()
    history = []
    if instance.application_id:
        history = [
            {"stage": e.stage, "actor_id": e.actor_id, "at": e.at.isoformat()}
            for e in db.session.scalars(
                select(StageEntry).where(StageEntry.application_id == instance.application_id).order_by(StageEntry.id)
            )
        ]
    return {
        "id": instance.id,
        "business_key": instance.business_key,
        "state": instance.status,
        "status": instance.status,
        "process_key": definition.key,
        "process_version": definition.version,
        "version": instance.version,
        "current_tasks": [
            {"id": t.id, "task_key": t.task_key, "assignee_id": t.assignee_id, "candidate_role": t.candidate_role}
            for t in tasks
            if t.status == "open"
        ],
        "completed_tasks": [
            {
                "id": t.id,
                "task_key": t.task_key,
                "completed_by_id": t.completed_by_id,
                "completed_at": t.completed_at.isoformat(),
            }
            for t in tasks
            if t.status == "completed" and t.completed_at
        ],
        "pending_effects": runtime.open_outbox_count(instance.id),
        "history": history,
    }
