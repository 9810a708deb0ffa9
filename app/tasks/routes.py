"""Task inbox API: list, detail, claim/unclaim, assign, complete (api.md)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import Response, jsonify, request

from app.auth.permissions import caller, requires
from app.dispatch import commit_and_dispatch
from app.extensions import db
from app.hardening import Blueprint
from app.schemas import page_of
from app.tasks import services
from app.tasks.schemas import AssignArgs, TaskDetailSchema, TaskListArgs, TaskPage, TaskSchema, task_json

_TASK_FIELDS = tuple(TaskSchema().fields)
blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="任务收件箱 Task inbox")


def _task_response(task: services.TaskRow) -> Response:
    """The documented `TaskSchema`, serialized by `task_json` (same output, less CPU)."""
    return jsonify(task_json(task))


@blp.route("")
@blp.arguments(TaskListArgs(), location="query")
@blp.response(200, TaskPage)
@requires("task.inbox")
def list_tasks(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Tasks visible to the caller: mine, candidate (claimable), or the team pool."""
    items, total = services.list_tasks(
        caller(),
        args["scope"],
        args["status"],
        args["page"],
        args["per_page"],
        application_no=args["application_no"],
        task_key=args["task_key"],
    )
    return jsonify(page_of([task_json(task) for task in items], total, args))


@blp.route("/<int(max=2147483647):task_id>")
@blp.response(200, TaskDetailSchema)
@requires("task.inbox")
def get_task(task_id: int):  # type: ignore[no-untyped-def]
    """One task with its form schema and the data its performer needs."""
    who = caller()
    task = services.get_visible(task_id, who)
    fields = {name: getattr(task, name) for name in _TASK_FIELDS if hasattr(task, name)}
    detail = services.task_detail(task, who)
    db.session.commit()  # the views of full customer values it audited
    return SimpleNamespace(**fields, **detail)


@blp.route("/<int(max=2147483647):task_id>/claim", methods=["POST"])
@blp.response(200, TaskSchema)
@requires("task.inbox")
def claim(task_id: int):  # type: ignore[no-untyped-def]
    """Take a candidate task."""
    task = services.claim(task_id, caller())
    commit_and_dispatch()
    return _task_response(task)


@blp.route("/<int(max=2147483647):task_id>/unclaim", methods=["POST"])
@blp.response(200, TaskSchema)
@requires("task.inbox")
def unclaim(task_id: int):  # type: ignore[no-untyped-def]
    """Give a claimed task back."""
    task = services.unclaim(task_id, caller())
    commit_and_dispatch()
    return _task_response(task)


@blp.route("/<int(max=2147483647):task_id>/assign", methods=["POST"])
@blp.arguments(AssignArgs())
@blp.response(200, TaskSchema)
@requires("task.assign")
def assign(args: dict[str, Any], task_id: int):  # type: ignore[no-untyped-def]
    """A team lead assigns a task of the team to a member."""
    task = services.assign(task_id, caller(), args["user_id"])
    commit_and_dispatch()
    return _task_response(task)


_FORM_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "The task's form data; its fields per task_key are in GET /tasks/{id} → form "
                "(e.g. approve: {decision, amount, term_months, comment}).",
                "additionalProperties": True,
            }
        }
    },
}


@blp.route("/<int(max=2147483647):task_id>/complete", methods=["POST"])
@blp.doc(requestBody=_FORM_BODY)
@blp.response(200, TaskSchema)
@requires("task.inbox")
def complete(task_id: int):  # type: ignore[no-untyped-def]
    """Complete with form data: 409 if no longer open, 422 if invalid, 403 if not yours."""
    payload = request.get_json(silent=False) if request.data else {}
    task = services.complete(task_id, caller(), payload)
    commit_and_dispatch()
    return _task_response(task)
