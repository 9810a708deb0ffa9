"""Running instances: start, complete a user task, finish a service task.

Every verb runs inside the caller's transaction and touches the database a handful of
times: lock the instance row, write its state with a version check, bulk-insert new inbox
rows, mark the completed/cancelled ones, append outbox rows and the stage history. The
inbox (`human_task`), the stage and the outbox are projections rewritten after every
advance; nothing else reads the serialized state.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from flask import g, has_app_context
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Integer, bindparam, case, func, insert, null, select, update

from app.errors import ApiError
from app.extensions import db
from app.fastsql import Hot, on_postgresql
from app.models import Application, HumanTask, Outbox, ProcessDefinition, ProcessInstance, StageEntry
from app.models.base import utcnow
from app.workflow import live, sandbox
from app.workflow.decisions import DecisionError
from app.workflow.specs import (
    REGISTRY,
    SERIALIZER_VERSION,
    AsyncServiceTask,
    ProcessSpec,
    cached_spec,
    dump_state,
    load_state,
    new_workflow,
    newest_data,
    newest_data_in_state,
)

log = logging.getLogger(__name__)
_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
OPEN_KEY = "ydx_open"
STAGE_KEY = "ydx_stage"
CONTEXT_KEY = "ydx_context"


def parse_duration(text: str) -> timedelta | None:
    """ISO-8601 durations of weeks, days, hours, minutes, seconds (`P2D`, `PT4H`)."""
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT") or text.endswith("T"):
        return None
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


class WorkflowFailure(ApiError):
    """The diagram or a rule failed while advancing; names the BPMN element.

    Raised in a request that tried to advance an instance (`on_instance`), it is also an
    incident: the request's writes are rolled back (the task stays open), and an audit row
    `workflow.error` records the element and the reason for the process administrators;
    `GET /process-instances/{id}` lists it under `incidents` until the instance advances."""

    def __init__(self, element: str, message: str) -> None:
        super().__init__("workflow_error", f"{element}: {message}", 422, fields={"element": element})
        self.element, self.reason = element, message
        self.instance_id: int | None = None
        self.actor_id: int | None = None
        self.task_id: int | None = None

    def on_instance(self, instance_id: int, actor_id: int | None, task_id: int | None = None) -> WorkflowFailure:
        """Make this failure an incident of the instance, raised by `actor_id` acting on the
        inbox task `task_id` (the incident stays listed while that task is open)."""
        self.instance_id, self.actor_id, self.task_id = instance_id, actor_id, task_id
        self.message = (
            f"流程在 '{self.element}' 处出错，已记录，请联系流程管理员 "
            f"(the process failed at '{self.element}': {self.reason}; recorded for the process administrators)"
        )
        return self

    def after_rollback(self) -> None:
        if self.instance_id is not None:
            from app import audit

            log.error("instance %s failed at %s: %s", self.instance_id, self.element, self.reason)
            audit.record(
                "workflow.error",
                self.actor_id,
                "process_instance",
                self.instance_id,
                after={"element": self.element, "task_id": self.task_id},
                outcome="failed",
                detail=self.reason[:2000],
            )


def _run(action: Any) -> None:
    """Run engine steps, turning library errors into a failure that names the element."""
    try:
        action()
    except SpiffWorkflowException as exc:
        task_spec = getattr(exc, "task_spec", None)
        element = getattr(task_spec, "bpmn_id", None) or "workflow"
        cause = getattr(exc, "exception", None) or exc.__cause__ or exc.__context__ or exc
        if isinstance(cause, (sandbox.UnsafeExpression, DecisionError)):
            raise WorkflowFailure(element, str(cause)) from exc
        raise WorkflowFailure(element, str(exc)) from exc
    except (DecisionError, sandbox.UnsafeExpression) as exc:
        raise WorkflowFailure("workflow", str(exc)) from exc
    except NameError as exc:  # SpiffWorkflow's error path itself raises NameError (notes)
        raise WorkflowFailure("workflow", f"engine error: {exc}") from exc
    except ApiError:
        raise
    except Exception as exc:  # anything else the engine lets through: still this instance's incident
        log.exception("engine error")
        raise WorkflowFailure("workflow", f"engine error: {sandbox.error_text(exc)}") from exc


@dataclass
class Projection:
    """What one advance changed, ready to be written in bulk."""

    new_tasks: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    stage: str | None = None


def _properties(task: Any) -> dict[str, str]:
    return (getattr(task.task_spec, "extensions", None) or {}).get("properties", {})


def _due_from(task: Any, expression: str | None, now: datetime) -> datetime:
    """Where a task's `due` period starts: now, or — with a `due_from` property — the later
    of now and the time its expression gives (e.g. the registered meeting time, so the
    committee's record is not overdue before the meeting). A missing or unreadable time
    falls back to now: a deadline must not stop the process."""
    if not expression:
        return now
    try:
        value = sandbox.evaluate(expression, task.data)
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except Exception:  # any failure of the data means "no later start"
        log.warning("due_from of %s gave no time; the deadline counts from now", task.task_spec.bpmn_id)
        return now
    if moment.tzinfo is None:
        return now
    return max(now, moment)


def _project(workflow: Any, definition: DefinitionInfo, now: datetime, completed: str | None = None) -> Projection:
    """Compare the workflow's waiting points with what the projection already holds
    (`completed` is the task the caller already closed in the inbox)."""
    projection = Projection()
    context = workflow.data.get(CONTEXT_KEY, {})
    known_open = set(workflow.data.get(OPEN_KEY, [])) - {completed}
    ready, started = [], []
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.STARTED):  # one walk of the tree
        if task.state == TaskState.READY and task.task_spec.manual:
            ready.append(task)
        elif task.state == TaskState.STARTED and isinstance(task.task_spec, AsyncServiceTask):
            started.append(task)
    ready_ids = {str(task.id) for task in ready}
    for task in ready:
        spiff_id = str(task.id)
        if spiff_id in known_open:
            continue
        props = _properties(task)
        assignee = None
        if props.get("assignee"):
            try:
                value = sandbox.evaluate(props["assignee"], task.data)
            except Exception as exc:
                raise WorkflowFailure(
                    task.task_spec.bpmn_id, f"assignee expression failed: {sandbox.error_text(exc)}"
                ) from exc
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise WorkflowFailure(task.task_spec.bpmn_id, f"assignee expression gave {value!r}, not a user id")
            assignee = value
        due = parse_duration(props.get("due", ""))
        due_from = _due_from(task, props.get("due_from"), now)
        projection.new_tasks.append(
            {
                "spiff_task_id": spiff_id,
                "task_key": task.task_spec.bpmn_id,
                "title": (task.task_spec.bpmn_name or task.task_spec.bpmn_id)[:128],
                "process_key": definition.key,
                "process_version": definition.version,
                "application_id": context.get("application_id"),
                "application_no": context.get("application_no"),
                "team_id": context.get("team_id"),
                "region_id": context.get("region_id"),
                "candidate_role": props.get("candidate_role"),
                "assignee_id": assignee,
                "status": "open",
                "priority": int(props.get("priority", 50)),
                "created_at": now,
                "due_at": due_from + due if due else None,
            }
        )
        projection.stage = props.get("stage") or projection.stage
    projection.cancelled = sorted(known_open - ready_ids)
    for task in started:
        if task.internal_data.get("outbox"):
            continue
        task.internal_data["outbox"] = True
        projection.outbox.append(
            {
                "spiff_task_id": str(task.id),
                "operation": task.task_spec.operation_name,
                "payload": {
                    "data": REGISTRY.convert(REGISTRY.clean(task.data)),
                    "params": REGISTRY.convert(task.internal_data.get("service_params", {})),
                    "result_variable": task.task_spec.result_variable,
                    "element": task.task_spec.bpmn_id,
                },
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "available_at": now,
            }
        )
        projection.stage = _properties(task).get("stage") or projection.stage
    workflow.data[OPEN_KEY] = sorted(ready_ids)
    if projection.stage == workflow.data.get(STAGE_KEY):
        projection.stage = None
    elif projection.stage:
        workflow.data[STAGE_KEY] = projection.stage
    return projection


# Hot statements are built once against the tables (plain Core: no ORM bulk path, no
# per-call statement construction); each advance only binds values.
_INSTANCES = ProcessInstance.__table__
_INSERT_INSTANCE = Hot(insert(_INSTANCES).returning(_INSTANCES.c.id))
_INSERT_TASKS = Hot(insert(HumanTask.__table__))
_INSERT_STAGE = Hot(insert(StageEntry.__table__))
_INSERT_OUTBOX = Hot(insert(Outbox.__table__).returning(Outbox.__table__.c.id))
_SET_STAGE = Hot(
    update(Application.__table__)
    .where(Application.__table__.c.id == bindparam("application_id_"))
    .values(stage=bindparam("stage_"), updated_at=bindparam("now_"))
)
# Locks the row; the state comes back only when the cached workflow is not the committed one.
_LOCK = Hot(
    select(
        _INSTANCES.c.version,
        _INSTANCES.c.definition_id,
        _INSTANCES.c.serializer_version,
        case((_INSTANCES.c.version == bindparam("cached_", type_=Integer), null()), else_=_INSTANCES.c.state).label(
            "state"
        ),
    )
    .where(_INSTANCES.c.id == bindparam("instance_id_"))
    .with_for_update()
)
_READ_HEADER = Hot(
    select(_INSTANCES.c.version, _INSTANCES.c.definition_id).where(_INSTANCES.c.id == bindparam("instance_id_"))
)
_READ_STATE = Hot(select(_INSTANCES.c.state).where(_INSTANCES.c.id == bindparam("instance_id_")))
_SAVE_STATE = Hot(
    update(_INSTANCES)
    .where(_INSTANCES.c.id == bindparam("instance_id_"), _INSTANCES.c.version == bindparam("expected_"))
    .values(
        state=bindparam("state_"),
        version=_INSTANCES.c.version + 1,
        status=bindparam("status_"),
        updated_at=bindparam("now_"),
        completed_at=bindparam("completed_"),
    )
)


def _remember_outbox(instance_id: int) -> Callable[[list[int]], None]:
    """Collect (outbox id, instance id) of the rows this transaction writes, to dispatch
    after the commit (the instance id lets an in-process run claim and lock in one go)."""

    def remember(ids: list[int]) -> None:
        if has_app_context():
            g.setdefault("ydx_outbox", []).extend((outbox_id, instance_id) for outbox_id in ids)

    return remember


def _write(instance_id: int, projection: Projection, workflow: Any, actor_id: int | None, now: datetime) -> None:
    """Queue the projection's writes; they reach the database with the transaction's other
    queued writes (app/fastsql.py, `Hot.defer`)."""
    if projection.new_tasks:
        _INSERT_TASKS.defer([dict(row, instance_id=instance_id) for row in projection.new_tasks])
    if projection.cancelled:
        db.session.execute(
            update(HumanTask)
            .where(HumanTask.instance_id == instance_id, HumanTask.spiff_task_id.in_(projection.cancelled))
            .where(HumanTask.status == "open")
            .values(status="cancelled", completed_at=now)
        )
    if projection.outbox:
        _INSERT_OUTBOX.defer(
            [dict(row, instance_id=instance_id) for row in projection.outbox], on_ids=_remember_outbox(instance_id)
        )
    application_id = workflow.data.get(CONTEXT_KEY, {}).get("application_id")
    if projection.stage and application_id:
        _SET_STAGE.defer({"application_id_": application_id, "stage_": projection.stage, "now_": now})
        _INSERT_STAGE.defer(
            {"application_id": application_id, "stage": projection.stage, "actor_id": actor_id, "at": now}
        )


_DEFINITIONS = ProcessDefinition.__table__
# Identity only: the row also holds the XML and the serialized spec (tens of KB).
_NEWEST_DEFINITION = Hot(
    select(_DEFINITIONS.c.id, _DEFINITIONS.c.key, _DEFINITIONS.c.version)
    .where(_DEFINITIONS.c.kind == "process", _DEFINITIONS.c.key == bindparam("key_"))
    .order_by(_DEFINITIONS.c.version.desc())
    .limit(1)
)


def newest_definition_id(process_key: Any) -> Any:
    """A scalar subquery for the id of the newest deployed version of a process, for a
    caller that reads it alongside other rows (pass the result to `start(definition_id=)`)."""
    return (
        select(_DEFINITIONS.c.id)
        .where(_DEFINITIONS.c.kind == "process", _DEFINITIONS.c.key == process_key)
        .order_by(_DEFINITIONS.c.version.desc())
        .limit(1)
        .scalar_subquery()
    )


def latest_definition(process_key: str) -> DefinitionInfo:
    """The newest deployed version of a process (new instances always start on it)."""
    row = _NEWEST_DEFINITION.execute({"key_": process_key}).first()
    if row is None:
        raise ApiError("process_not_deployed", f"process '{process_key}' is not deployed", 409)
    return DefinitionInfo(row.id, row.key, row.version)


def _process(definition_id: int) -> ProcessSpec:
    def load() -> str:
        return db.session.scalar(select(ProcessDefinition.spec_json).where(ProcessDefinition.id == definition_id))

    return cached_spec(definition_id, load)


def start(
    process_key: str,
    business_key: str,
    data: dict[str, Any],
    *,
    context: dict[str, Any],
    actor_id: int | None = None,
    stage: str | None = None,
    definition_id: int | None = None,
) -> int:
    """Start the newest version of `process_key`, run it to its first waiting points and
    return the new instance id.

    `stage` is the stage the business row was created in, so reaching it again is not
    recorded as a change. `definition_id`: the newest version's id, when the caller has
    already read it in this transaction (`newest_definition_id`)."""
    if definition_id is None:
        definition = latest_definition(process_key)
    else:
        definition = _definition(definition_id)
        if definition.key != process_key:
            raise ValueError(f"definition {definition_id} is not a version of {process_key}")
    workflow = new_workflow(_process(definition.id))
    workflow.data[CONTEXT_KEY] = context
    if stage:
        workflow.data[STAGE_KEY] = stage
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(data)
    now = utcnow()
    try:
        _run(workflow.do_engine_steps)
        projection = _project(workflow, definition, now)  # (it records the open tasks in the state)
        state = _dumped(workflow)
    except WorkflowFailure as exc:  # nothing was stored; the administrators learn it from the log
        log.error("%s v%s failed at start (%s): %s", process_key, definition.version, exc.element, exc.reason)
        raise
    instance_id = _INSERT_INSTANCE.execute(
        {
            "definition_id": definition.id,
            "business_key": business_key,
            "application_id": context.get("application_id"),
            "status": "completed" if workflow.completed else "running",
            "state": state,
            "serializer_version": SERIALIZER_VERSION,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "completed_at": now if workflow.completed else None,
        }
    ).scalar()
    _write(instance_id, projection, workflow, actor_id, now)
    live.stage(db.session(), instance_id, 1, workflow)
    return int(instance_id)


@dataclass(frozen=True)
class DefinitionInfo:
    """The immutable identity of a deployed version."""

    id: int
    key: str
    version: int


_definitions: dict[int, DefinitionInfo] = {}


def forget_definitions() -> None:
    """Forget cached definition identities (tests that rebuild the database reuse ids)."""
    _definitions.clear()


def _definition(definition_id: int) -> DefinitionInfo:
    """Deployed versions never change, so their identity is cached per process."""
    found = _definitions.get(definition_id)
    if found is None:
        row = db.session.execute(
            select(ProcessDefinition.key, ProcessDefinition.version).where(ProcessDefinition.id == definition_id)
        ).one()
        found = _definitions[definition_id] = DefinitionInfo(definition_id, row.key, row.version)
    return found


@dataclass
class Loaded:
    """An instance row locked for update, its definition and its live workflow."""

    instance_id: int
    version: int
    definition: DefinitionInfo
    workflow: Any
    closed: Any = None  # what the `Closing` UPDATE returned, if any


@dataclass(frozen=True)
class Closing:
    """A conditional UPDATE that must match exactly one row of a table with an
    `instance_id` column before the instance may be locked — closing the inbox row of the
    task being completed, claiming an outbox row — and what to raise when it matches none
    (built only then: a translated message costs a catalog lookup). Its RETURNING columns
    come back as `Loaded.closed`."""

    statement: Hot
    params: dict[str, Any]
    error: Callable[[], Exception]


_CLOSE_AND_LOCK: dict[Hot, Hot] = {}  # by the closing statement itself (identity)


def _close_and_lock(closing: Closing) -> Hot:
    """PostgreSQL: the closing UPDATE as a data-modifying CTE of the locking SELECT, so
    both cost one statement; no row back means the UPDATE matched nothing."""
    found = _CLOSE_AND_LOCK.get(closing.statement)
    if found is None:
        update_: Any = closing.statement.statement
        if not any(column.key == "instance_id" for column in update_._returning):
            update_ = update_.returning(update_.table.c.instance_id)
        closed = update_.cte("closed")
        found = _CLOSE_AND_LOCK[closing.statement] = Hot(
            _LOCK.statement.add_columns(*closed.c)
            .select_from(_INSTANCES.join(closed, _INSTANCES.c.id == closed.c.instance_id))
            .with_for_update(of=_INSTANCES)
        )
    return found


def lock(instance_id: int, closing: Closing | None = None) -> Loaded:
    """Lock the instance row and get its workflow: from the live cache when the cached
    version is the committed one, else rebuilt from the stored state (one statement,
    including `closing` on PostgreSQL)."""
    cached = live.take_any(instance_id)
    params = {"instance_id_": instance_id, "cached_": cached[0] if cached else -1}
    closed = None
    if closing is None:
        header = _LOCK.execute(params).first()
    elif on_postgresql():
        header = closed = _close_and_lock(closing).execute({**closing.params, **params}).first()
        if header is None:
            raise closing.error()
    else:
        result = closing.statement.execute(closing.params)
        rows = result.all()
        if (len(rows) if closing.statement.statement._returning else result.rowcount) != 1:  # type: ignore[attr-defined]
            raise closing.error()
        closed = rows[0] if rows else None
        header = _LOCK.execute(params).first()
    if header is None:
        raise ApiError("not_found", "process instance not found", 404)
    if header.serializer_version != SERIALIZER_VERSION:
        raise ApiError("unsupported_state", f"instance state format {header.serializer_version} is not supported", 409)
    if cached is not None and cached[0] == header.version:
        workflow = cached[1]
    else:
        state = header.state
        if state is None:  # a concurrent commit moved the version under a CASE already evaluated
            state = _READ_STATE.execute({"instance_id_": instance_id}).scalar()
        workflow = load_state(_process(header.definition_id), state)
    return Loaded(instance_id, header.version, _definition(header.definition_id), workflow, closed)


def _dumped(workflow: Any) -> str:
    """The state to store; data a script left that cannot be stored (a structure that holds
    itself, one too large to write out) is this instance's incident, not a 500."""
    try:
        return dump_state(workflow)
    except (ValueError, TypeError, RecursionError, OverflowError, MemoryError) as exc:
        last = getattr(workflow, "last_task", None)
        element = getattr(getattr(last, "task_spec", None), "bpmn_id", None) or "workflow"
        raise WorkflowFailure(element, f"the instance's data cannot be stored: {sandbox.error_text(exc)}") from exc


def _persist(loaded: Loaded, actor_id: int | None, completed: str | None = None) -> None:
    """Write state with an optimistic version check, then the projections."""
    now = utcnow()
    projection = _project(loaded.workflow, loaded.definition, now, completed)
    done = loaded.workflow.completed
    _SAVE_STATE.defer(
        {
            "instance_id_": loaded.instance_id,
            "expected_": loaded.version,
            "state_": _dumped(loaded.workflow),
            "status_": "completed" if done else "running",
            "now_": now,
            "completed_": now if done else None,
        },
        expect_one=ApiError("stale_version", "the process instance was changed by someone else; reload and retry", 409),
    )
    _write(loaded.instance_id, projection, loaded.workflow, actor_id, now)
    live.stage(db.session(), loaded.instance_id, loaded.version + 1, loaded.workflow)


def complete_user_task(task: Any, actor_id: int, form: dict[str, Any], closing: Closing) -> None:
    """Advance the instance past a user task with validated form data.

    `closing` closes the inbox row (status open → completed) before the instance is
    locked, so of two concurrent completions of the same task only one gets past it.
    """
    loaded = lock(task.instance_id, closing)
    spiff_task = loaded.workflow.get_task_from_id(UUID(task.spiff_task_id))
    if spiff_task is None or spiff_task.state != TaskState.READY:
        raise ApiError("conflict", "task is no longer open", 409)
    parent_spec = spiff_task.parent.task_spec if spiff_task.parent else None
    if isinstance(parent_spec, MultiInstanceTask) and parent_spec.output_item is not None:
        item = dict(form)
        if parent_spec.input_item is not None:
            item[parent_spec.input_item.bpmn_id] = spiff_task.data.get(parent_spec.input_item.bpmn_id)
        spiff_task.data[parent_spec.output_item.bpmn_id] = item
    else:
        spiff_task.data[task.task_key] = dict(form)
    try:
        _run(spiff_task.run)
        _run(loaded.workflow.do_engine_steps)
        _persist(loaded, actor_id, completed=task.spiff_task_id)  # (its projection evaluates assignees)
    except WorkflowFailure as exc:  # (the workflow ran ahead of the row: lock() took it out of the live cache)
        exc.on_instance(task.instance_id, actor_id, task.id)
        raise


def set_task_data(task: Any, key: str, value: Any, actor_id: int | None = None) -> None:
    """Change one variable of an open user task (under the instance lock), so what
    follows it in the diagram sees the new value (e.g. a handed-over officer)."""
    loaded = lock(task.instance_id)
    spiff_task = loaded.workflow.get_task_from_id(UUID(task.spiff_task_id))
    if spiff_task is None or spiff_task.state != TaskState.READY:
        raise ApiError("conflict", "task is no longer open", 409)
    spiff_task.data[key] = value
    try:
        _persist(loaded, None)  # (its projection evaluates assignee expressions)
    except WorkflowFailure as exc:
        exc.on_instance(task.instance_id, actor_id, task.id)
        raise


def finish_service(instance_id: int, spiff_task_id: str, result: dict[str, Any], loaded: Loaded | None = None) -> None:
    """The worker's way back in: store a service task's result and advance (`loaded`: the
    instance the caller already locked)."""
    loaded = loaded or lock(instance_id)
    spiff_task = loaded.workflow.get_task_from_id(UUID(spiff_task_id))
    if spiff_task is None or spiff_task.state != TaskState.STARTED:
        raise ApiError("conflict", "service task is not waiting for a result", 409)
    spiff_task.data[spiff_task.task_spec.result_variable] = result
    _run(spiff_task.complete)
    _run(loaded.workflow.do_engine_steps)
    _persist(loaded, None)


def instance_data(instance_id: int) -> dict[str, Any]:
    """The newest task data of an instance (read-only; for detail views and handlers)."""
    header = _READ_HEADER.execute({"instance_id_": instance_id}).first()
    return _data_of(instance_id, header.version, header.definition_id) if header is not None else {}


def instance_data_at(instance_id: int, version: int, definition_id: int) -> dict[str, Any]:
    """The newest task data of an instance whose committed version the caller has read
    (no query when that version is cached)."""
    return _data_of(instance_id, version, definition_id)


def _data_of(instance_id: int, version: int, definition_id: int) -> dict[str, Any]:
    cached = live.read(instance_id, version, newest_data)
    if cached is not None:
        return cached
    state = _READ_STATE.execute({"instance_id_": instance_id}).scalar()
    found = newest_data_in_state(state)
    return found if found is not None else newest_data(load_state(_process(definition_id), state))


def open_outbox_count(instance_id: int) -> int:
    """Pending effects of an instance (diagnostics)."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Outbox)
            .where(Outbox.instance_id == instance_id, Outbox.status == "pending")
        )
        or 0
    )
