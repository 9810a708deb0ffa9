"""The workflow class our instances run on: SpiffWorkflow's BpmnWorkflow with a cheaper
walk of the task tree.

The engine walks the whole task tree far more often than one would guess: every task
that completes walks it for WAITING tasks (`update_waiting_tasks`), every pass of
`do_engine_steps` walks it for READY ones, and our inbox projection walks it once per
step. SpiffWorkflow's iterator pays, for every task it visits, a list pop from the front,
a `children` list built through the workflow's task dict, a subprocess lookup and a walk
up the parents to keep its depth count — UUID hashes in Python, each of them. Profiled
over whole lifecycles, the walks were the largest single item of the engine's time.

`YdxWorkflow.get_tasks_iterator` visits the same tasks in the same order (depth first,
pre-order; a task's children are entered only when its state is at least the lowest state
the filter can match — predicted states let every branch in, definite ones stop at
predicted tasks, finished-only filters stop at unfinished ones; a subprocess's tree is
entered before the task's own children unless skipped or finished), prunes at the same
`end_at_spec`, and applies the library's own `BpmnTaskFilter`. It keeps its place on a
stack of (task, depth) pairs, so a visit costs one dict lookup per child. `max_depth`
counts a task's true depth below the start. The library's counter agrees except after
leaving a subprocess task that has no children of its own, where it stays one level too
deep (its leaf handling only walks back up to the subprocess's root); so with a subprocess
of that shape the two can prune differently at small `max_depth` values — an edge no
engine walk (all at the default of 1000) reaches short of a thousand-step loop.
Breadth-first iteration is left to the library. `tests/unit/test_walk.py` checks it
against `BpmnTaskIterator` for every filter the engine and we use, at every step of the
lifecycles.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.util.task import BpmnTaskFilter
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskFilter, TaskState

_PREDICTED = TaskState.PREDICTED_MASK
_DEFINITE = TaskState.DEFINITE_MASK
_FINISHED = TaskState.FINISHED_MASK
_MAYBE = TaskState.MAYBE
_FUTURE = TaskState.FUTURE
_COMPLETED = TaskState.COMPLETED
_WAITING = TaskState.WAITING


def _min_state(state: int) -> int:
    """The lowest state whose children the library's iterator enters for this filter."""
    if state & _PREDICTED:
        return _MAYBE
    if state & _DEFINITE:
        return _FUTURE
    return _COMPLETED


def _only_state(task_filter: TaskFilter) -> bool:
    """True when the filter tests nothing but the state (most walks): the state test is
    then done inline instead of through `matches`."""
    return (
        type(task_filter) in (TaskFilter, BpmnTaskFilter)
        and task_filter.updated_ts == 0
        and task_filter.manual is None
        and task_filter.spec_name is None
        and task_filter.spec_class is None
        and getattr(task_filter, "catches_event", None) is None
        and getattr(task_filter, "lane", None) is None
    )


def walk(
    first: Any,
    task_filter: TaskFilter,
    *,
    end_at_spec: str | None = None,
    max_depth: int = 1000,
    skip_subprocesses: bool = False,
    into_subprocesses: bool = True,
) -> Iterator[Any]:
    """Tasks under (and including) `first` that match `task_filter`, depth first in
    pre-order, pruned as the library prunes. `into_subprocesses=False` walks like the
    plain `TaskIterator` (used by `update_waiting_tasks`), which never enters them."""
    state = task_filter.state
    min_state = _min_state(state)
    only_state = _only_state(task_filter)
    matches = task_filter.matches
    subprocesses = first.workflow.top_workflow.subprocesses if into_subprocesses else {}
    stack = [(first, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        task, depth = pop()
        subprocess = subprocesses.get(task.id) if subprocesses else None
        if (
            (task._children or subprocess is not None)
            and (task._state >= min_state or subprocess is not None)
            and depth < max_depth
            and task.task_spec.name != end_at_spec
        ):
            # Pushed in reverse so that the first child is visited next; a subprocess's
            # tree goes before the task's own children, as in the library.
            tasks = task.workflow.tasks
            for child_id in reversed(task._children):
                push((tasks[child_id], depth + 1))
            if subprocess is not None and not (skip_subprocesses or (task._state >= _FINISHED and state <= _FINISHED)):
                push((subprocess.task_tree, depth + 1))
        if (task._state & state) if only_state else matches(task):
            yield task


MAX_ENGINE_STEPS = 900
"""Most engine tasks (scripts, gateways, rules, events) one advance may run: a loan's
advance runs a few dozen. A loop whose condition never turns must fail loudly, naming an
element of it: the library's walks stop at depth 1000, so without this the loop would
stall there silently, the instance neither advancing nor failing."""


_WALK_DEPTH = 1000  # the library's walks see no task deeper than this (`max_depth`)
_DEEPEST = _WALK_DEPTH - 60  # checked every 50 steps, so never reached unseen


class YdxWorkflow(BpmnWorkflow):
    """BpmnWorkflow whose task-tree walks go through `walk`, and whose engine steps stop
    after `MAX_ENGINE_STEPS` in one advance."""

    def do_engine_steps(self, will_complete_task: Any = None, did_complete_task: Any = None) -> None:
        taken = 0

        def counted(task: Any) -> None:
            nonlocal taken
            taken += 1
            if taken > MAX_ENGINE_STEPS:
                raise WorkflowTaskException(
                    f"more than {MAX_ENGINE_STEPS} engine steps in one advance (a loop that never ends?)", task=task
                )
            if taken % 50 == 0 and task.depth >= _DEEPEST:  # (depth walks up the tree: not every step)
                raise WorkflowTaskException(
                    f"the task tree is {task.depth} levels deep, near the engine's limit of {_WALK_DEPTH} "
                    "(a loop that has run too often over the instance's life)",
                    task=task,
                )
            if did_complete_task is not None:
                did_complete_task(task)

        super().do_engine_steps(will_complete_task, counted)

    def get_tasks_iterator(  # type: ignore[override]
        self,
        first_task: Any = None,
        end_at_spec: str | None = None,
        max_depth: int = 1000,
        depth_first: bool = True,
        skip_subprocesses: bool = False,
        task_filter: TaskFilter | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        if not depth_first:
            return super().get_tasks_iterator(
                first_task,
                end_at_spec=end_at_spec,
                max_depth=max_depth,
                depth_first=False,
                skip_subprocesses=skip_subprocesses,
                task_filter=task_filter,
                **kwargs,
            )
        return walk(
            first_task or self.task_tree,
            task_filter or BpmnTaskFilter(**kwargs),
            end_at_spec=end_at_spec,
            max_depth=max_depth,
            skip_subprocesses=skip_subprocesses,
        )

    def update_waiting_tasks(self) -> None:
        for task in walk(self.task_tree, _WAITING_FILTER, into_subprocesses=False):
            task.task_spec._update(task)


_WAITING_FILTER = TaskFilter(state=_WAITING)
