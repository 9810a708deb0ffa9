"""Parsing, serializing and caching process specs; the only place that builds SpiffWorkflow objects.

A spec is parsed once at deployment, stored as JSON once per version, and restored into
a per-process cache keyed by the definition id: requests never re-parse XML and instance
rows never carry the spec (see ../shared/notes/spiffworkflow-3.2.md, "Cost").
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_STATE_VERSION
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.dmn.specs.model import DecisionTable
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import BusinessRuleTask, ServiceTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from app import jsontext
from app.workflow.sandbox import SandboxEnvironment, UnsafeExpression
from app.workflow.walk import YdxWorkflow

SERIALIZER_VERSION = f"ydx1/{SPIFF_STATE_VERSION}"


class AsyncServiceTask(ServiceTask):
    """A service task that waits: reaching it leaves the task STARTED and the engine
    layer writes an outbox row; the worker's result completes it later."""

    def _execute(self, task):  # type: ignore[no-untyped-def]
        task.internal_data["service_params"] = {
            name: spec["value"] for name, spec in self.evaluate_params(task).items()
        }
        return None


def _id_text(task: Task) -> str:
    """`str(task.id)`, kept on the task: a state names every task id two or three times
    (id, parent, children), every dump again, and `UUID.__str__` is Python code. It lives
    and dies with the task object."""
    text = task.__dict__.get("_ydx_id_text")
    if text is None:
        text = task.__dict__["_ydx_id_text"] = str(task.id)
    return text


class _Memo(dict):  # type: ignore[type-arg]
    """`convert(key)` remembered for the length of one load: a state names every task id
    two or three times (id, parent, children) and `UUID(text)` is Python code. Per call,
    so nothing outlives the state it served."""

    __slots__ = ("convert",)

    def __init__(self, convert: Any) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.convert(key)
        return value


class StateConverter(BpmnWorkflowConverter):
    """Serializes an instance without its spec (the spec is stored once per version)."""

    fast_tasks = True  # tests switch it off to compare with the library's own converter

    def to_dict(self, workflow):  # type: ignore[no-untyped-def]
        if self.fast_tasks and self.registry._encoder_mode:
            registry = self.registry
            dct = {
                "data": registry.convert(registry.clean(workflow.data)),
                "correlations": workflow.correlations,
                "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
                "success": workflow.success,
                "completed": workflow.completed,
                "tasks": self._tasks_to_dict(workflow.tasks),
                "root": str(workflow.task_tree.id),
            }
        else:
            dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def _tasks_from_dict(self, tasks: dict[str, Any], workflow: Any) -> None:
        """The library's TaskConverter.from_dict for every task, in the stored order (a
        parent before its children), without the per-task dispatch through the registry,
        and each id parsed once per load (`UUID()` is Python code, two or three per
        task): a load is ~2 times faster. It runs whenever a worker advances an instance it
        has not cached — with several workers, most completions. Task.__init__ puts each
        task into `workflow.tasks`, as the library's restore does before it replaces the
        dict with an equal one. `tests/unit/test_state_converter.py` compares the result."""
        restore = self.registry.restore
        spec_of = workflow.spec.task_specs.get
        restored = workflow.tasks
        id_of = _Memo(UUID)
        for raw in tasks.values():
            if raw.get("typename") != "Task":
                restore(raw, workflow=workflow)
                continue
            task_spec = spec_of(raw["task_spec"])
            task = Task(workflow, task_spec, state=raw["state"], id=id_of[raw["id"]])
            parent_id = raw["parent"]
            task._parent = id_of[parent_id] if parent_id is not None else None
            task._children = [id_of[child] for child in raw["children"]]
            task.last_state_change = raw["last_state_change"]
            task.triggered = raw["triggered"]
            internal = raw["internal_data"]
            task.internal_data = restore(internal) if internal else {}
            if isinstance(task_spec, CatchingEvent) and task._state & TaskState.WAITING:
                workflow.top_workflow.event_manager.add_task(task)
            delta = raw.get("delta")
            parent = restored.get(task._parent) if task._parent is not None else None
            if delta and parent is not None:
                data = DeepMerge.merge({}, parent.data)
                data.update(restore(delta.get("updates", {})))
                for key in delta.get("deletions", {}):
                    if key in data:
                        del data[key]
            else:
                data = restore(raw["data"])
            task.data = data

    def _tasks_to_dict(self, tasks: dict[UUID, Any]) -> dict[str, Any]:
        """The library's TaskConverter.to_dict for every task, in encoder mode (values are
        left to the JSON encoder's `default`), without its per-task dispatch through the
        registry, its three lookups of the parent and repeated `str()` of every id: a
        state dump is ~2.5 times faster (it runs after every step of every instance).
        `tests/unit/test_state_dump.py` compares the JSON with the library's at every step."""
        convert = self.registry.convert
        out: dict[str, Any] = {}
        for task_id, task in tasks.items():
            if type(task) is not Task:
                out[str(task_id)] = convert(task)
                continue
            parent_id = task._parent
            parent = tasks.get(parent_id) if parent_id is not None else None
            if parent is None:
                data, delta = task.data, {}
            else:  # only what differs from the parent's data (DeepMerge.get_updated/deleted_keys)
                mine, theirs = task.data, parent.data
                data = {}
                delta = {
                    "updates": {k: v for k, v in mine.items() if k not in theirs or v != theirs[k]},
                    "deletions": [k for k in theirs if k not in mine],
                }
            key = _id_text(task)
            internal = task.internal_data
            out[key] = {
                "id": key,
                "parent": _id_text(parent) if parent is not None else None,
                "children": [_id_text(tasks[child]) if child in tasks else str(child) for child in task._children],
                "last_state_change": task.last_state_change,
                "state": task._state,
                "task_spec": task.task_spec.name,
                "triggered": task.triggered,
                "internal_data": convert(internal) if internal else {},
                "data": data,
                "delta": delta,
                "typename": "Task",
            }
        return out

    def from_dict(self, dct, spec=None, subprocess_specs=None):  # type: ignore[no-untyped-def]
        workflow = YdxWorkflow(spec, subprocess_specs, deserializing=True)
        if self.fast_tasks:
            self._tasks_from_dict(dct["tasks"], workflow)
        else:
            workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _build_registry():  # type: ignore[no-untyped-def]
    config = dict(SPIFF_CONFIG)
    config[AsyncServiceTask] = ServiceTaskConverter
    config[BpmnWorkflow] = StateConverter
    registry = BpmnWorkflowSerializer.configure(config)
    # Our instances are YdxWorkflow objects stored under the library's type name, so states
    # written before (and by the library) restore unchanged.
    registry.typenames[YdxWorkflow] = registry.typenames[BpmnWorkflow]
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    return registry


REGISTRY = _build_registry()
# Dumping state uses SpiffWorkflow's encoder mode: containers are passed to the JSON
# encoder as they are and only non-JSON values (Decimal, date, UUID, …) are converted, in
# the encoder's `default` hook, instead of a recursive copy of every task's data first
# (a quarter less time per dump, measured on the final lifecycle state). It is a separate registry because the mode is a flag
# on the registry object, and REGISTRY is shared by threads for everything else.
_DUMP_REGISTRY = _build_registry()
_DUMP_REGISTRY._encoder_mode = True
_DumpEncoder = create_encoder(_DUMP_REGISTRY)


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        typename = REGISTRY.typenames.get(type(o))
        if typename is not None:
            return REGISTRY.convert_to_dict[typename](o)
        return super().default(o)


class YdxParser(SpiffBpmnParser):
    """The spiff parser with our waiting service task."""

    OVERRIDE_PARSER_CLASSES: ClassVar[dict[str, Any]] = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (
            SpiffBpmnParser.OVERRIDE_PARSER_CLASSES[full_tag("serviceTask")][0],
            AsyncServiceTask,
        ),
    }

    def __init__(self) -> None:
        super().__init__(validator=VALIDATOR)


@dataclass
class ProcessSpec:
    """A restored, ready-to-run spec with the decision each business rule task calls."""

    spec: Any
    subprocess_specs: dict[str, Any]
    decision_refs: dict[str, str]  # business rule task id → decision id


def spec_to_json(spec: Any, subprocess_specs: dict[str, Any], decision_refs: dict[str, str]) -> str:
    """Serialize a parsed spec once, at deployment."""
    return json.dumps(
        {
            "spec": REGISTRY.convert(spec),
            "subprocess_specs": {k: REGISTRY.convert(v) for k, v in subprocess_specs.items()},
            "decision_refs": decision_refs,
        },
        cls=_Encoder,
    )


def spec_from_json(text: str) -> ProcessSpec:
    """Restore a stored spec (the serializer wires multi-instance tasks) and put our
    checked decision evaluator behind every business rule task."""
    from app.workflow.decisions import CheckedDecisionEngine

    raw = json.loads(text)
    spec = REGISTRY.restore(raw["spec"])
    subprocess_specs = {k: REGISTRY.restore(v) for k, v in raw["subprocess_specs"].items()}
    refs = raw["decision_refs"]
    for container in (spec, *subprocess_specs.values()):
        for task_spec in container.task_specs.values():
            if isinstance(task_spec, BusinessRuleTask):
                table: DecisionTable = task_spec.dmnEngine.decision_table
                task_spec.dmnEngine = CheckedDecisionEngine(refs[task_spec.bpmn_id], table)
    return ProcessSpec(spec, subprocess_specs, refs)


_cache: dict[int, ProcessSpec] = {}
_cache_lock = threading.Lock()


def cached_spec(definition_id: int, spec_json_loader) -> ProcessSpec:  # type: ignore[no-untyped-def]
    """The runnable spec of a deployed version; `spec_json_loader()` is called on a miss."""
    found = _cache.get(definition_id)
    if found is None:
        restored = _bounded(spec_from_json(spec_json_loader()))
        with _cache_lock:
            found = _cache.setdefault(definition_id, restored)
    return found


def clear_cache() -> None:
    """Forget restored specs (tests that rebuild the database reuse ids)."""
    with _cache_lock:
        _cache.clear()


MAX_INSTANCES = 200
"""Most parallel or sequential instances one multi-instance activity may have (a loan has a
handful of approvers): a cardinality of 10**6 would build a million tasks in one request.
Below the engine's step limit (`walk.MAX_ENGINE_STEPS`), so script instances all run."""


class _BoundedInput:
    """A multi-instance activity's input collection, refused when it holds more than
    `MAX_INSTANCES` items: one child task per item is built in a single step (20,000 took
    10 s and would have been 20,000 inbox rows)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def get(self, my_task: Any) -> Any:
        value = self._inner.get(my_task)
        if hasattr(value, "__len__") and len(value) > MAX_INSTANCES:
            raise WorkflowTaskException(
                f"the multi-instance input holds {len(value)} items, more than {MAX_INSTANCES}", task=my_task
            )
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _bounded(process: ProcessSpec) -> ProcessSpec:
    """The runnable spec with every multi-instance input collection bounded (in memory only:
    the stored spec JSON is the library's own)."""
    for spec in (process.spec, *process.subprocess_specs.values()):
        for task_spec in spec.task_specs.values():
            data_input = getattr(task_spec, "data_input", None)
            if (
                data_input is not None
                and hasattr(task_spec, "cardinality")
                and not isinstance(data_input, _BoundedInput)
            ):
                task_spec.data_input = _BoundedInput(data_input)
    return process


class SandboxScriptEngine(PythonScriptEngine):
    """The library's engine on our sandbox, with a bound on multi-instance cardinality."""

    def evaluate(self, task: Any, expression: Any, external_context: Any = None) -> Any:
        value = super().evaluate(task, expression, external_context)
        if expression is not None and expression == getattr(task.task_spec, "cardinality", None):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INSTANCES:
                refused = UnsafeExpression(f"loop cardinality must be a whole number from 0 to {MAX_INSTANCES}")
                raise self.create_task_exec_exception(task, expression, refused)  # names the element
        return value


SCRIPT_ENGINE = SandboxScriptEngine(environment=SandboxEnvironment())


def new_workflow(process: ProcessSpec) -> BpmnWorkflow:
    """A fresh instance of a spec, running every expression in our sandbox."""
    return YdxWorkflow(process.spec, process.subprocess_specs, script_engine=SCRIPT_ENGINE)


_dump_default = _DumpEncoder().default


def dump_state(workflow: BpmnWorkflow) -> str:
    """Instance state as JSON, without the spec."""
    return jsontext.converted(_DUMP_REGISTRY.convert(workflow), _dump_default)


def load_state(process: ProcessSpec, state: str) -> BpmnWorkflow:
    """Rebuild an instance on its (cached) spec and attach the sandboxed script engine."""
    workflow = REGISTRY.restore(jsontext.parsed(state), spec=process.spec, subprocess_specs=process.subprocess_specs)
    workflow.script_engine = SCRIPT_ENGINE
    return workflow


_LIVE = TaskState.COMPLETED | TaskState.STARTED | TaskState.READY


def newest_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Task data merged in the order tasks changed state (later values win), the last
    task's data on top: what the instance knows now, for views and service handlers."""
    last = workflow.last_task or workflow.task_tree
    data: dict[str, Any] = {}
    for task in sorted(workflow.get_tasks(), key=lambda t: t.last_state_change):
        if task.state & _LIVE:
            data.update(task.data)
    data.update(last.data)
    return data


def newest_data_in_state(state: str) -> dict[str, Any] | None:
    """`newest_data` of a stored instance, read from its JSON without rebuilding the
    workflow (a read-only view needs the data, not a task tree that can run: rebuilding
    costs a deep copy of every task's data and an object per task). None for a state with
    subprocesses, which this reader does not follow; the caller loads those.

    The serializer stores the root task's data whole and every other task's as changes to
    its parent's (`delta`: top-level keys updated, keys deleted); a task's data here is a
    shallow copy of its parent's with those applied — the same values, only not copied
    deeper, which a reader does not need. Tasks are visited in the engine's depth-first
    order, so ties in `last_state_change` resolve as `newest_data` resolves them."""
    raw = jsontext.parsed(state)
    if raw.get("subprocesses"):
        return None
    tasks: dict[str, dict[str, Any]] = raw["tasks"]
    restore = REGISTRY.restore
    data_of: dict[str, dict[str, Any]] = {}

    def materialize(task_id: str) -> dict[str, Any]:
        chain = []  # this task and its ancestors whose data is not known yet, nearest first
        current = task_id
        while current not in data_of:
            chain.append(current)
            entry = tasks[current]
            if not entry.get("delta") or entry["parent"] not in tasks:
                break
            current = entry["parent"]
        for current in reversed(chain):
            entry = tasks[current]
            delta = entry.get("delta")
            if delta and entry["parent"] in tasks:
                data = dict(data_of[entry["parent"]])
                data.update(restore(delta.get("updates", {})))
                for key in delta.get("deletions", ()):
                    data.pop(key, None)
            else:
                data = restore(entry["data"])
            data_of[current] = data
        return data_of[task_id]

    order: list[dict[str, Any]] = []
    pending = [raw["root"]]
    while pending:
        entry = tasks[pending.pop()]
        order.append(entry)
        pending.extend(reversed(entry["children"]))
    merged: dict[str, Any] = {}
    for entry in sorted(order, key=lambda e: e["last_state_change"]):
        if entry["state"] & _LIVE:
            merged.update(materialize(entry["id"]))
    last = raw.get("last_task")
    merged.update(materialize(last if last in tasks else raw["root"]))
    return merged
