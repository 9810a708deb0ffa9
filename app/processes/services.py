"""Process versions, instances and the decision service (F7, F19)."""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from app.auth.permissions import Caller
from app.errors import ApiError, not_found
from app.extensions import db
from app.loans.services import in_scope
from app.models import Application, AuditLog, HumanTask, ProcessDefinition, ProcessInstance, StageEntry
from app.processes.inputs import check_inputs
from app.workflow import decisions, outbox, runtime, sandbox

log = logging.getLogger(__name__)


def list_versions(page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
    """One page of the deployed versions, newest first within each key, and their count."""
    total = db.session.scalar(select(func.count()).select_from(ProcessDefinition)) or 0
    rows = db.session.scalars(
        select(ProcessDefinition)
        .order_by(ProcessDefinition.kind, ProcessDefinition.key, ProcessDefinition.version.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return [describe(row) for row in rows], total


def current_versions(contents: list[bytes]) -> list[ProcessDefinition]:
    """After a deployment: the version now current for every process and decision the
    uploaded files define, new or unchanged (the newest version stored with a file's
    checksum is that file's current one: a file that differs from the newest version of
    its key always makes a new version)."""
    checksums = sorted({hashlib.sha256(content).hexdigest() for content in contents})
    rows = db.session.scalars(
        select(ProcessDefinition)
        .where(ProcessDefinition.checksum.in_(checksums))
        .order_by(ProcessDefinition.kind, ProcessDefinition.key, ProcessDefinition.version.desc())
    )
    current: dict[tuple[str, str], ProcessDefinition] = {}
    for row in rows:
        current.setdefault((row.kind, row.key), row)
    return list(current.values())


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
    """Evaluate a deployed decision table with the checks of `decisions.evaluate_table`,
    after `check_inputs` has refused inputs the table cannot use (422 naming them).

    A table that still fails answers a 422 in words a user can act on; the engine's
    detail (which may quote a Python exception) goes to the log only."""
    if not isinstance(inputs, dict):
        raise ApiError("bad_request", _("请求体须为由决策输入组成的 JSON 对象"), 400)
    row = get_version("decision", decision_id, version)
    table = decisions.deployed_table(row.id, row.source)
    clean = check_inputs(table, inputs)
    try:
        outputs = decisions.evaluate_table(decision_id, table, clean)
    except decisions.DecisionError as exc:
        log.warning("decision %s v%s could not be evaluated: %s", decision_id, row.version, exc, exc_info=exc.__cause__)
        message, fields = _decision_failure(exc)
        raise ApiError("decision_error", message, 422, fields=fields) from exc
    except sandbox.UnsafeExpression as exc:
        log.warning("decision %s v%s refused by the sandbox: %s", decision_id, row.version, exc)
        raise ApiError("decision_error", _("决策表的表达式超出了允许的计算范围，请检查决策表或输入"), 422) from exc
    return {"decision_id": decision_id, "version": row.version, "outputs": {k: _plain(v) for k, v in outputs.items()}}


def _decision_failure(exc: decisions.DecisionError) -> tuple[str, dict[str, list[str]]]:
    """A failed evaluation as a translated message, plus the input names it concerns."""
    params = exc.params
    if exc.kind == "input_failed":
        message = _("决策表的输入“%(input)s”无法用所给数据计算，请检查输入的类型和取值", input=params["input"])
        return message, {name: [message] for name in params["names"]} or {"inputs": [message]}
    if exc.kind == "rule_failed":
        message = _("规则 %(rule)s 无法用所给数据判断，请检查输入的类型和取值", rule=params["rule"])
        return message, {name: [message] for name in params["names"]} or {"inputs": [message]}
    if exc.kind == "no_match":
        message = _("没有规则匹配这些输入：%(values)s", values=params["values"])
    elif exc.kind == "ambiguous":
        rules = "、".join(str(index) for index in params["rules"])
        message = _("命中策略为 UNIQUE，但第 %(rules)s 条规则同时匹配", rules=rules)
    elif exc.kind == "output_failed":
        message = _("输出“%(output)s”无法用所给数据计算", output=params["output"])
    elif exc.kind == "output_type":
        message = _("输出“%(output)s”的值不是声明的类型 %(type)s", output=params["output"], type=params["type"])
    else:
        message = _("决策无法计算")
    return message, {"inputs": [message]}


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
        # api.md's `version`: the process version the instance runs on (it stays on it);
        # the stored state's optimistic counter is `revision`.
        "version": definition.version,
        "revision": instance.version,
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
            for t in sorted(tasks, key=lambda t: (t.completed_at or t.created_at, t.id))
            if t.status == "completed" and t.completed_at
        ],
        "pending_effects": runtime.open_outbox_count(instance.id),
        # Service tasks that used up their attempts: the instance waits for an administrator.
        "failed_effects": [
            {
                "id": row.id,
                "operation": row.operation,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "retry": f"flask --app wsgi outbox retry {row.id}",
            }
            for row in outbox.failed_rows(instance.id)
        ],
        "incidents": _open_incidents(instance, tasks),
        "history": history,
    }


def _open_incidents(instance: ProcessInstance, tasks: list[HumanTask]) -> list[dict[str, Any]]:
    """Engine failures that still hold a task: each was raised by acting on an inbox task
    (completing it, handing it over) and stays listed while that task is open — one entry
    per task, element and reason, with how often and when it last happened. (A parallel
    approver's completion does not clear another's.)"""
    open_ids = {t.id for t in tasks if t.status == "open"}
    if not open_ids:
        return []
    rows = db.session.scalars(
        select(AuditLog)
        .where(
            AuditLog.action == "workflow.error",
            AuditLog.object_type == "process_instance",
            AuditLog.object_id == str(instance.id),
            AuditLog.at >= instance.created_at,
        )
        .order_by(AuditLog.id.desc())
        .limit(500)
    )
    grouped: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for row in rows:  # newest first
        after = row.after or {}
        if after.get("task_id") not in open_ids:
            continue
        key = (after.get("task_id"), after.get("element"), row.detail)
        entry = grouped.get(key)
        if entry is None:
            grouped[key] = {
                "at": row.at.isoformat(),
                "task_id": after.get("task_id"),
                "element": after.get("element"),
                "reason": row.detail,
                "actor_id": row.actor_id,
                "count": 1,
            }
        else:
            entry["count"] += 1
    return list(grouped.values())
