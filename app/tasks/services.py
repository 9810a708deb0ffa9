"""The task inbox: who sees which task, who may act on it, and the verbs of api.md.

Visibility and action rights come from the same grants as everything else:
`task.work` (own → tasks assigned to me; team/region/all → candidate tasks of those teams
for roles I hold) and `task.view` (team pools for leads and managers).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import ColumnElement, and_, bindparam, false, or_, select, update

from app import audit
from app.auth.permissions import Caller, load_profile, one_of, row_in_scope, scope_filter
from app.errors import ApiError, not_found
from app.extensions import db
from app.fastsql import Hot
from app.models import Application, AuditLog, HumanTask, LoanProduct, Role, User
from app.models.base import utcnow
from app.requestctx import is_internal_client
from app.schemas import jsonable
from app.workflow import registry, runtime
from app.workflow.registry import FormContext

_TASKS = HumanTask.__table__
_TASK_COLUMNS = tuple(column.key for column in _TASKS.columns)


class TaskRow:
    """One inbox row as read: plain attributes, no ORM identity or unit of work.

    Changes are made by conditional UPDATEs (exactly one concurrent caller wins) and
    mirrored here with `_set_loaded`, so the response shows what was written."""

    __slots__ = _TASK_COLUMNS

    def __init__(self, row: Any) -> None:
        for name, value in zip(_TASK_COLUMNS, row, strict=True):
            setattr(self, name, value)


_SELECT_TASKS = select(*_TASKS.columns)
_GET_TASK = Hot(_SELECT_TASKS.where(_TASKS.c.id == bindparam("task_id_")))
_APPLICATIONS, _PRODUCTS = Application.__table__, LoanProduct.__table__
# For a completion: the task and the limits of its application's product (approval forms
# check amount and term against them), by primary keys in one query.
_GET_TASK_AND_LIMITS = Hot(
    select(
        *_TASKS.columns,
        _PRODUCTS.c.min_amount,
        _PRODUCTS.c.max_amount,
        _PRODUCTS.c.min_term,
        _PRODUCTS.c.max_term,
    )
    .select_from(
        _TASKS.outerjoin(_APPLICATIONS, _APPLICATIONS.c.id == _TASKS.c.application_id).outerjoin(
            _PRODUCTS, _PRODUCTS.c.id == _APPLICATIONS.c.product_id
        )
    )
    .where(_TASKS.c.id == bindparam("task_id_"))
)


@dataclass(frozen=True)
class ProductLimits:
    min_amount: Decimal
    max_amount: Decimal
    min_term: int
    max_term: int


def _candidate(who: Caller) -> ColumnElement[bool]:
    scope = who.scope("task.work")
    if scope in (None, "own") or not who.roles:
        return false()
    return and_(
        HumanTask.assignee_id.is_(None),
        one_of(HumanTask.candidate_role, who.roles),
        scope_filter(who, scope, team=HumanTask.team_id, region=HumanTask.region_id),
    )


def _team(who: Caller) -> ColumnElement[bool]:
    scope = who.scope("task.view")
    if scope is None:
        return false()
    return scope_filter(who, scope, own=HumanTask.assignee_id, team=HumanTask.team_id, region=HumanTask.region_id)


def visibility(who: Caller, scope: str | None = None) -> ColumnElement[bool]:
    """WHERE clause of the tasks `who` sees in `scope` (mine | candidate | team | None=all)."""
    mine = HumanTask.assignee_id == who.id
    if scope == "mine":
        return mine
    if scope == "candidate":
        return _candidate(who)
    if scope == "team":
        return _team(who)
    return or_(mine, HumanTask.completed_by_id == who.id, _candidate(who), _team(who))


# Escalated (overdue) tasks first, then the newest first, as Camunda's and Flowable's task
# lists show them: a task that just arrived is on the first page, however full the pool.
_INBOX_ORDER = (_TASKS.c.priority.desc(), _TASKS.c.id.desc())
_MINE_PAGES: dict[tuple[bool, bool, str], Hot] = {}


def _mine_page(by_application: bool, by_key: bool, status: str) -> Hot:
    """`scope=mine` (every officer's and approver's inbox) has a handful of fixed shapes:
    each is built once and bound per call."""
    shape = (by_application, by_key, status)
    found = _MINE_PAGES.get(shape)
    if found is None:
        found = _MINE_PAGES[shape] = _page([_TASKS.c.assignee_id == bindparam("me_")], by_application, by_key, status)
    return found


def _page(where: list[ColumnElement[bool]], by_application: bool, by_key: bool, status: str) -> Hot:
    """A page of inbox rows: `where` plus the optional application/key/status filters,
    in inbox order, limit and offset bound per call."""
    if by_application:
        where.append(_TASKS.c.application_no == bindparam("application_no_"))
    if by_key:
        where.append(_TASKS.c.task_key == bindparam("task_key_"))
    if status != "all":
        where.append(_TASKS.c.status == status)
    return Hot(
        _SELECT_TASKS.where(*where).order_by(*_INBOX_ORDER).limit(bindparam("limit_")).offset(bindparam("offset_"))
    )


_CANDIDATE_PAGES: dict[tuple[Any, ...], Hot] = {}


def _candidate_page(who: Caller, by_application: bool, by_key: bool, status: str, params: dict[str, Any]) -> Hot | None:
    """`scope=candidate` (a lead's pool, the committee's register) as a prebuilt statement:
    the shape depends on the caller's scope and how many roles/teams/regions they hold, the
    values are bound (the same rows as `_candidate`). None when nothing can match."""
    scope = who.scope("task.work")
    if scope not in ("team", "region", "all") or not who.roles:
        return None
    roles, teams = sorted(who.roles), sorted(who.team_ids)
    regions = sorted(who.region_ids) if scope == "region" else []
    if scope != "all" and not teams and not regions:
        return None
    shape = ("all" if scope == "all" else "", len(roles), len(teams), len(regions), by_application, by_key, status)
    for prefix, values in (("role", roles), ("team", teams), ("region", regions)):
        params.update({f"{prefix}{i}_": value for i, value in enumerate(values)})
    found = _CANDIDATE_PAGES.get(shape)
    if found is None:

        def among(column: Any, prefix: str, count: int) -> ColumnElement[bool]:
            return column.in_([bindparam(f"{prefix}{i}_") for i in range(count)])

        where = [_TASKS.c.assignee_id.is_(None), among(_TASKS.c.candidate_role, "role", len(roles))]
        if scope != "all":
            where.append(
                or_(
                    *([among(_TASKS.c.team_id, "team", len(teams))] if teams else []),
                    *([among(_TASKS.c.region_id, "region", len(regions))] if regions else []),
                )
            )
        found = _CANDIDATE_PAGES[shape] = _page(where, by_application, by_key, status)
    return found


def list_tasks(
    who: Caller,
    scope: str | None,
    status: str,
    page: int,
    per_page: int,
    *,
    application_no: str | None = None,
    task_key: str | None = None,
) -> tuple[list[TaskRow], int]:
    """A page of visible tasks, escalated first, then the newest (optionally of one application / key)."""
    from sqlalchemy import func

    def conditions() -> list[ColumnElement[bool]]:
        where = [visibility(who, scope)]
        if application_no:
            where.append(HumanTask.application_no == application_no)
        if task_key:
            where.append(HumanTask.task_key == task_key)
        if status != "all":
            where.append(HumanTask.status == status)
        return where

    params: dict[str, Any] = {"me_": who.id, "limit_": per_page, "offset_": (page - 1) * per_page}
    if application_no:
        params["application_no_"] = application_no
    if task_key:
        params["task_key_"] = task_key
    if scope == "mine":
        rows = _mine_page(bool(application_no), bool(task_key), status).execute(params).all()
    elif scope == "candidate":
        page_statement = _candidate_page(who, bool(application_no), bool(task_key), status, params)
        rows = page_statement.execute(params).all() if page_statement is not None else []
    else:
        rows = db.session.execute(
            _SELECT_TASKS.where(*conditions()).order_by(*_INBOX_ORDER).limit(per_page).offset((page - 1) * per_page)
        ).all()
    items = [TaskRow(row) for row in rows]
    if page == 1 and len(items) < per_page:
        return items, len(items)  # the page holds everything: no COUNT needed
    total = db.session.scalar(select(func.count()).select_from(HumanTask).where(*conditions())) or 0
    # The count is a statement of its own: never answer fewer than the rows a page shows
    # (an empty page past the end shows none, and the count stands).
    return items, max(total, (page - 1) * per_page + len(items)) if items else total


def get_actionable(task_id: int, who: Caller) -> TaskRow:
    """`get_visible` for claiming, completing and giving back: a candidate of the task's
    role in scope who lost the race to a colleague (another supervisor claimed or completed
    it) is told the task's state — a 409, as for anyone who can see it — not "not yours"."""
    row = _GET_TASK.execute({"task_id_": task_id}).first()
    return _actionable(TaskRow(row) if row is not None else None, who)


def _actionable(task: TaskRow | None, who: Caller) -> TaskRow:
    if task is not None and task.candidate_role is not None and not _visible_row(task, who):
        if _candidate_ok(who, task.candidate_role, task.team_id, task.region_id):
            _require_open(task)
            raise ApiError("conflict", _("任务已被他人领取"), 409)
    return _visible(task, who)


def get_visible(task_id: int, who: Caller) -> TaskRow:
    """The task if `who` may see it. A task that exists but is not the caller's (a
    colleague's, or another team's) answers 403, as api.md has it ("403 if not yours");
    only an id that names no task is a 404. Task ids are sequential, so the 403 tells
    nothing an id did not: no field of the task is shown."""
    row = _GET_TASK.execute({"task_id_": task_id}).first()  # by primary key; visibility checked in Python
    return _visible(TaskRow(row) if row is not None else None, who)


def _actionable_with_limits(task_id: int, who: Caller) -> tuple[TaskRow, ProductLimits | None]:
    """`get_actionable`, and the limits of the application's product."""
    row = _GET_TASK_AND_LIMITS.execute({"task_id_": task_id}).first()
    if row is None:
        return _actionable(None, who), None
    width = len(_TASK_COLUMNS)
    limits = ProductLimits(*row[width:]) if row[width] is not None else None
    return _actionable(TaskRow(row[:width]), who), limits


def _visible(task: TaskRow | None, who: Caller) -> TaskRow:
    if task is not None and _visible_row(task, who):
        return task
    if task is not None:
        raise ApiError("forbidden", _("这不是你的任务"), 403)
    raise not_found("task")


def _visible_row(task: TaskRow, who: Caller) -> bool:
    """The Python twin of `visibility(who)` for one loaded row."""
    if who.id in (task.assignee_id, task.completed_by_id):
        return True
    if _may_perform(task, who):
        return True
    view = who.scope("task.view")
    return view is not None and row_in_scope(who, view, team_id=task.team_id, region_id=task.region_id)


def _may_perform(task: TaskRow, who: Caller) -> bool:
    """Assigned to me, or an unassigned candidate task for a role I hold in my scope."""
    if task.assignee_id is not None:
        return task.assignee_id == who.id
    return _candidate_ok(who, task.candidate_role, task.team_id, task.region_id)


def _candidate_ok(who: Caller, role: str | None, team_id: int | None, region_id: int | None) -> bool:
    """Whether `who` may take a candidate task for `role` of that team/region."""
    scope = who.scope("task.work")
    return (
        scope not in (None, "own")
        and role in who.roles
        and row_in_scope(who, scope, team_id=team_id, region_id=region_id)
    )


def _require_open(task: TaskRow) -> None:
    if task.status != "open":
        raise ApiError("conflict", _("任务已结束"), 409)


def _outside_network(task: TaskRow) -> bool:
    """An approval task seen from outside the bank's internal network (F21)."""
    handler = registry.FORMS.get(task.task_key)
    return bool(handler and handler.approval and not is_internal_client())


def _require_internal(task: TaskRow, who: Caller, action: str) -> None:
    """Approval actions only from the bank's internal network (F21); refusals are audited."""
    if _outside_network(task):
        audit.record_refusal(action, who.id, "task", task.id, f"{task.task_key} from outside the internal network")
        raise ApiError("internal_network_required", _("审批操作只能在行内网络进行"), 403)


def claim(task_id: int, who: Caller) -> TaskRow:
    """Take a candidate task; 409 if someone else holds it."""
    task = get_actionable(task_id, who)
    _require_open(task)
    _require_internal(task, who, "task.claim")
    if task.assignee_id == who.id:
        return task
    if task.assignee_id is not None:
        raise ApiError("conflict", _("任务已被他人领取"), 409)
    if not _may_perform(task, who):
        raise ApiError("forbidden", _("不能领取此任务"), 403)
    now = utcnow()  # the answer shows the time stored
    result = db.session.execute(
        update(HumanTask)
        .where(HumanTask.id == task.id, HumanTask.status == "open", HumanTask.assignee_id.is_(None))
        .values(assignee_id=who.id, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        current = get_visible(task_id, who)
        if current.status == "open" and current.assignee_id == who.id:
            return current  # the same person's concurrent claim won: claiming is idempotent
        raise ApiError("conflict", _("任务已被他人领取"), 409)
    _set_loaded(task, assignee_id=who.id, claimed_at=now)
    audit.record("task.claim", who.id, "task", task.id)
    return task


def unclaim(task_id: int, who: Caller) -> TaskRow:
    """Give a claimed candidate task back to the pool."""
    task = get_actionable(task_id, who)
    _require_open(task)
    if task.candidate_role is not None and task.assignee_id is None:  # a state, not a permission
        raise ApiError("conflict", _("任务未被领取，无需退回"), 409)
    if task.assignee_id != who.id or task.candidate_role is None:
        raise ApiError("forbidden", _("只能退回自己领取的候选任务"), 403)
    _reassign(task, expected=who.id, values={"assignee_id": None, "claimed_at": None})
    audit.record("task.unclaim", who.id, "task", task.id)
    return task


def _reassign(task: TaskRow, expected: int | None, values: dict[str, Any]) -> None:
    """Change who holds an open task only if nobody changed it meanwhile (else 409)."""
    holder = HumanTask.assignee_id.is_(None) if expected is None else HumanTask.assignee_id == expected
    result = db.session.execute(
        update(HumanTask)
        .where(HumanTask.id == task.id, HumanTask.status == "open", holder)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise ApiError("conflict", _("任务已被他人处理"), 409)
    _set_loaded(task, **values)


def _target_of(task: TaskRow, user_id: int) -> Caller:
    """The member a task is handed to, as a caller (their roles, teams and scopes)."""
    target = db.session.get(User, user_id)
    if target is None or not target.active:
        raise ApiError(
            "validation_error",
            _("分配对象不存在或已停用"),
            422,
            fields={"user_id": ["用户不存在或已停用 (no such active user)"]},
        )
    profile = load_profile(target.id, target.password_changed_at.timestamp())
    return Caller(target.id, profile.roles, profile.team_ids, profile.region_ids)


def assign(task_id: int, who: Caller, user_id: int) -> TaskRow:
    """A team lead hands an open task of their team to someone who may perform it.

    A candidate task goes to anyone holding its candidate role within scope. A task whose
    performer the process fixed (the assigned officer's visit and collection) is handed
    over through its form's `on_assign`, which moves the application to the new officer.
    Approval tasks of named approvers cannot be handed to anybody else."""
    task = get_visible(task_id, who)
    _require_open(task)
    if not row_in_scope(who, who.scope("task.assign"), team_id=task.team_id, region_id=task.region_id):
        raise ApiError("forbidden", _("没有分配此任务的权限"), 403)
    _require_internal(task, who, "task.assign")
    handler = registry.FORMS.get(task.task_key)
    target = _target_of(task, user_id)
    if task.candidate_role:
        if not _candidate_ok(target, task.candidate_role, task.team_id, task.region_id):
            if task.candidate_role in target.roles:  # the role, but for another team or region
                raise ApiError(
                    "validation_error",
                    _("只能分配给本团队成员"),
                    422,
                    fields={"user_id": ["不是本任务所属团队的成员 (not a member of this task's team)"]},
                )
            raise ApiError(
                "validation_error",
                _("该成员没有此任务所需的角色"),
                422,
                fields={
                    "user_id": [
                        f"不能办理本团队「{role_name(task.candidate_role)}」的任务 "
                        f"(cannot perform a {task.candidate_role.replace('_', ' ')} task of this team)"
                    ]
                },
            )
    elif handler is None or handler.on_assign is None:
        raise ApiError("conflict", _("此任务的办理人由流程确定，不能改派"), 409)
    before = {"assignee_id": task.assignee_id}
    # The inbox row first, as completing does (then the instance, then the application):
    # of an assignment and a completion at once, one waits for the other and then finds
    # the task changed (409) instead of the two deadlocking.
    _reassign(task, expected=task.assignee_id, values={"assignee_id": user_id, "claimed_at": utcnow()})
    if not task.candidate_role:
        handler.on_assign(task, target, who.id)
    audit.record("task.assign", who.id, "task", task.id, before=before, after={"assignee_id": user_id})
    return task


def role_name(code: str) -> str:
    """A role as its holders know it (the role table's name), its code if unnamed."""
    role = db.session.get(Role, code)
    return role.name if role is not None and role.name else code


def complete(task_id: int, who: Caller, payload: Any) -> TaskRow:
    """Validate and complete a task; exactly one of several concurrent calls succeeds."""
    task, limits = _actionable_with_limits(task_id, who)
    _require_open(task)
    if not _may_perform(task, who):
        raise ApiError("forbidden", _("这不是你的任务"), 403)
    _require_internal(task, who, "task.complete")
    if not isinstance(payload, dict):
        raise ApiError("bad_request", "表单数据须为 JSON 对象 (form data must be a JSON object)", 400)
    handler = registry.FORMS.get(task.task_key)
    if handler is None:
        raise ApiError("conflict", f"任务 '{task.task_key}' 没有登记表单 (no form is registered for it)", 409)
    data = runtime.instance_data(task.instance_id) if handler.needs_data else {}
    data.setdefault("application_id", task.application_id)
    try:
        clean = handler.validate(payload, FormContext(task.task_key, data, who.id, task.team_id, limits))
    except ValidationError as exc:
        raise ApiError("validation_error", _("表单数据无效"), 422, fields=exc.messages_dict) from exc
    done = {
        "status": "completed",
        "completed_at": utcnow(),
        "completed_by_id": who.id,
        "assignee_id": who.id,
        "form_data": jsonable(clean),
    }
    closing = runtime.Closing(
        _CLOSE_TASK,
        {"task_id_": task.id, "holder_": task.assignee_id, **{f"{k}_": v for k, v in done.items()}},
        lambda: _not_closed(task.id, task.assignee_id),
    )
    clean["by"] = who.id
    runtime.complete_user_task(task, who.id, clean, closing)
    _set_loaded(task, **done)
    if handler.after is not None:
        handler.after(task, clean)
    audit.record("task.complete", who.id, "task", task.id, after={"task_key": task.task_key, **done["form_data"]})
    return task


# Closing an open task: built once, bound per call (exactly one concurrent caller matches).
_CLOSE_TASK = Hot(
    update(_TASKS)
    .where(
        _TASKS.c.id == bindparam("task_id_"),
        _TASKS.c.status == "open",
        # still held by whoever held it when the caller's right to complete was checked (or
        # by the caller, whose own claim got in between): a hand-over, give-back or a
        # colleague's claim that committed meanwhile wins, and this completion is a 409
        or_(
            _TASKS.c.assignee_id.is_not_distinct_from(bindparam("holder_", type_=_TASKS.c.assignee_id.type)),
            _TASKS.c.assignee_id == bindparam("completed_by_id_"),
        ),
    )
    .values(
        status=bindparam("status_"),
        completed_at=bindparam("completed_at_"),
        completed_by_id=bindparam("completed_by_id_"),
        assignee_id=bindparam("assignee_id_"),
        form_data=bindparam("form_data_", type_=_TASKS.c.form_data.type),
    )
)


def _not_closed(task_id: int, holder: int | None) -> ApiError:
    """Why a completion found the task changed: ended, taken by a colleague from the pool,
    or handed over or given back."""
    row = db.session.execute(select(HumanTask.status, HumanTask.assignee_id).where(HumanTask.id == task_id)).first()
    if row is None or row.status != "open":
        return ApiError("conflict", _("任务已结束"), 409)
    if holder is None:
        return ApiError("conflict", _("任务已被他人领取"), 409)
    return ApiError("conflict", _("任务已被改派或退回，请刷新后重试"), 409)


def _set_loaded(task: TaskRow, **values: Any) -> None:
    """Mirror a conditional UPDATE on the loaded row without another round trip."""
    for name, value in values.items():
        setattr(task, name, value)


def task_detail(task: TaskRow, who: Caller) -> dict[str, Any]:
    """The task, its form schema and the data its performer needs."""
    from app.loans.services import application_context

    data = runtime.instance_data(task.instance_id)
    handler = registry.FORMS.get(task.task_key)
    needs = application_context(task, data, who)
    return {
        "form": handler.describe(data) if handler else {"fields": []},
        "data": jsonable(needs),
        "may_complete": task.status == "open" and _may_perform(task, who) and not _outside_network(task),
        "assignments": assignment_trail(task.id),
    }


_TRAIL_ACTIONS = ("task.assign", "task.claim", "task.unclaim")


def assignment_trail(task_id: int) -> list[dict[str, Any]]:
    """Who held the task, from the audit log: each assignment by a lead, claim and
    unclaim, with who did it and when (the inbox row keeps only the current holder)."""
    rows = db.session.execute(
        select(AuditLog.action, AuditLog.actor_id, AuditLog.before, AuditLog.after, AuditLog.at)
        .where(
            AuditLog.object_type == "task",
            AuditLog.object_id == str(task_id),
            AuditLog.action.in_(_TRAIL_ACTIONS),
            AuditLog.outcome == "ok",
        )
        .order_by(AuditLog.id)
    ).all()
    trail = []
    for action, actor_id, before, after, at in rows:
        kind = action.removeprefix("task.")
        if kind == "assign":
            assignee, previous = (after or {}).get("assignee_id"), (before or {}).get("assignee_id")
        else:  # a claim takes the task, an unclaim gives it back
            assignee, previous = (actor_id, None) if kind == "claim" else (None, actor_id)
        trail.append(
            {
                "action": kind,
                "by_id": actor_id,
                "assignee_id": assignee,
                "previous_assignee_id": previous,
                "at": at.isoformat(),
            }
        )
    return trail


ESCALATED_PRIORITY = 90


def escalate_overdue() -> int:
    """Deadline handling: an open task past its due time is escalated once — its priority
    rises to the top of the inbox and the team pool, and an audit row records it.

    One statement picks and changes the rows, so runs that overlap (a scheduler thread in
    every web process, beat beside a manual run) escalate and audit each task once, and a
    task completed meanwhile is left alone; rows another transaction holds (a completion
    in progress) are skipped, not waited for, and are taken on the next run if still open."""
    now = utcnow()
    overdue = (
        select(HumanTask.id)
        .where(HumanTask.status == "open", HumanTask.due_at < now, HumanTask.escalated_at.is_(None))
        .order_by(HumanTask.id)
        .with_for_update(skip_locked=True)
    )
    rows = db.session.execute(
        update(HumanTask)
        .where(
            HumanTask.id.in_(overdue.scalar_subquery()), HumanTask.status == "open", HumanTask.escalated_at.is_(None)
        )
        .values(priority=ESCALATED_PRIORITY, escalated_at=now)
        .returning(HumanTask.id, HumanTask.task_key, HumanTask.application_no, HumanTask.assignee_id)
        .execution_options(synchronize_session=False)
    ).all()
    for row in sorted(rows):
        audit.record(
            "task.overdue",
            None,
            "task",
            row.id,
            after={"task_key": row.task_key, "application_no": row.application_no, "assignee_id": row.assignee_id},
        )
    return len(rows)
