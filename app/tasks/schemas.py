"""Task inbox schemas (api.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, post_dump, validate

from app.messages import task_title
from app.models.base import utcnow
from app.schemas import PageArgs, PageFields


class TaskListArgs(PageArgs):
    scope = fields.String(load_default=None, validate=validate.OneOf(["mine", "candidate", "team"]))
    status = fields.String(load_default="open", validate=validate.OneOf(["open", "completed", "all"]))
    application_no = fields.String(load_default=None)
    task_key = fields.String(load_default=None)


class TaskSchema(Schema):
    id = fields.Integer(required=True)
    task_key = fields.String(required=True)
    title = fields.String(
        required=True, metadata={"description": "the diagram's name of the task, in the reader's language"}
    )
    process_key = fields.String(required=True)
    process_version = fields.Integer(required=True)
    application_no = fields.String(allow_none=True, required=True)
    assignee_id = fields.Integer(allow_none=True, required=True)
    candidate_role = fields.String(allow_none=True, required=True)
    team_id = fields.Integer(allow_none=True, required=True)
    status = fields.String()
    priority = fields.Integer()
    created_at = fields.AwareDateTime(required=True)
    claimed_at = fields.AwareDateTime(allow_none=True)
    completed_at = fields.AwareDateTime(allow_none=True)
    completed_by_id = fields.Integer(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True, required=True)
    escalated_at = fields.AwareDateTime(allow_none=True)
    overdue = fields.Method("_overdue", metadata={"type": "boolean"})

    @post_dump
    def _title_for_reader(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "title" in data:
            data["title"] = task_title(data["title"])
        return data

    def _overdue(self, task) -> bool:  # type: ignore[no-untyped-def]
        from app.models.base import utcnow

        return bool(task.status == "open" and task.due_at and task.due_at < utcnow())


_TASK_FIELDS = (
    "id",
    "task_key",
    "process_key",
    "process_version",
    "application_no",
    "assignee_id",
    "candidate_role",
    "team_id",
    "status",
    "priority",
    "completed_by_id",
)
_TASK_TIMES = ("created_at", "claimed_at", "completed_at", "due_at", "escalated_at")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def task_json(task: Any) -> dict[str, Any]:
    """What `TaskSchema().dump(task)` gives, without marshmallow's per-field machinery
    (~0.1 ms a row): the inbox lists and every task verb answer with it. The schema stays
    the documented contract; tests/test_task_json.py pins the two to each other."""
    out = {name: getattr(task, name) for name in _TASK_FIELDS}
    out["title"] = task_title(task.title)
    for name in _TASK_TIMES:
        out[name] = _iso(getattr(task, name))
    due = task.due_at
    out["overdue"] = bool(task.status == "open" and due and due < utcnow())
    return out


class TaskPage(PageFields):
    items = fields.List(fields.Nested(TaskSchema), required=True)


class _KeepUndeclared(Schema):
    """Dumps declared fields and keeps every other key of the object as it is: these
    schemas document what a form description holds; the form (app/tasks/forms.py) decides."""

    @post_dump(pass_original=True)
    def _keep_everything(self, data: dict[str, Any], original: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**original, **data}


class FormFieldSchema(_KeepUndeclared):
    """One field of a task's form, as `app/tasks/forms.py` describes it."""

    name = fields.String(required=True, metadata={"description": "the key to send in POST /tasks/{id}/complete"})
    type = fields.String(
        required=True,
        metadata={
            "description": "integer | decimal (money as a string) | string | datetime | object | array<integer> | "
            "array<integer|string> | enum:<value>|<value>… (e.g. enum:approve|reject)"
        },
    )
    # (`attribute`: a form field is a dict, and marshmallow would fall back to `dict.items`
    # for a field without the key; the post-dump keeps the real `items` of array fields)
    items = fields.String(attribute="items_", metadata={"description": "what one item of an array field is"})
    required = fields.Boolean(required=True)
    choices = fields.List(
        fields.Raw(),
        metadata={
            "description": "allowed values: strings (decision: approve | reject), or {value, label} "
            "objects (assign_officer: the team's active officers)"
        },
    )
    min = fields.Raw(metadata={"description": "lowest accepted value (the product's range; money as a string)"})
    max = fields.Raw(metadata={"description": "highest accepted value (the product's range; money as a string)"})
    required_when = fields.Dict(
        metadata={"description": "required only when these other fields have these values, e.g. {decision: approve}"}
    )
    decided = fields.Raw(
        metadata={"description": "already decided by the rules: nothing to enter, or the same value again"}
    )
    whole_yuan = fields.Boolean(
        metadata={"description": "the final amount: what is entered is rounded down to whole yuan (rules.md)"}
    )


class FormSchema(_KeepUndeclared):
    fields_ = fields.List(fields.Nested(FormFieldSchema), data_key="fields", attribute="fields")


class AssignmentSchema(Schema):
    action = fields.String(required=True, metadata={"description": "assign | claim | unclaim"})
    by_id = fields.Integer(required=True, allow_none=True)
    assignee_id = fields.Integer(required=True, allow_none=True, metadata={"description": "who holds it after"})
    previous_assignee_id = fields.Integer(required=True, allow_none=True)
    at = fields.String(required=True, metadata={"format": "date-time"})


class TaskDetailSchema(TaskSchema):
    form = fields.Nested(FormSchema)
    data = fields.Dict()
    may_complete = fields.Boolean()
    assignments = fields.List(
        fields.Nested(AssignmentSchema),
        metadata={"description": "who held the task: each assignment by a lead, claim and unclaim, oldest first"},
    )


class AssignArgs(Schema):
    user_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**31 - 1))
