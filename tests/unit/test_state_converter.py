"""The state converter's fast task paths write and read exactly what SpiffWorkflow's
converter writes and reads: the same JSON text, and the same tasks restored from it, at
every step of every path of the loan diagram."""

from __future__ import annotations

import json
from decimal import Decimal
from uuid import uuid4

import pytest
from test_walk import FIELD, _drive, _start, loan_process  # noqa: F401 - loan_process is a fixture

from app.workflow import specs

DUMP_STATE = specs.dump_state
LOAD_STATE = specs.load_state


def _the_library_way(action, *args):  # type: ignore[no-untyped-def]
    specs.StateConverter.fast_tasks = False
    try:
        return action(*args)
    finally:
        specs.StateConverter.fast_tasks = True


def _library_dump(workflow) -> str:  # type: ignore[no-untyped-def]
    return _the_library_way(DUMP_STATE, workflow)


def _task_facts(workflow):  # type: ignore[no-untyped-def]
    return [
        (
            task_id,
            task.id,
            task._parent,
            task._children,
            task._state,
            task.task_spec,
            task.triggered,
            task.last_state_change,
            task.data,
            task.internal_data,
        )
        for task_id, task in workflow.tasks.items()
    ]


def assert_loads_alike(process, text: str) -> None:  # type: ignore[no-untyped-def]
    ours = LOAD_STATE(process, text)
    theirs = _the_library_way(LOAD_STATE, process, text)
    assert _task_facts(ours) == _task_facts(theirs)
    assert ours.task_tree.id == theirs.task_tree.id
    assert (ours.last_task and ours.last_task.id) == (theirs.last_task and theirs.last_task.id)
    assert sorted(map(str, ours.event_manager.tasks)) == sorted(map(str, theirs.event_manager.tasks))
    for mine, library in zip(ours.tasks.values(), theirs.tasks.values(), strict=True):
        assert mine.data is not library.data and mine.workflow is ours
        assert (mine.parent is None) == (library.parent is None)
    assert _library_dump(ours) == _library_dump(theirs)


@pytest.fixture
def compared(monkeypatch):  # type: ignore[no-untyped-def]
    """Every dump the driven lifecycle makes is also made the library's way and compared."""
    dumps = []

    def checked(workflow):  # type: ignore[no-untyped-def]
        ours = DUMP_STATE(workflow)
        assert ours == _library_dump(workflow)
        dumps.append(ours)
        return ours

    def loaded(process, text):  # type: ignore[no-untyped-def]
        assert_loads_alike(process, text)
        return LOAD_STATE(process, text)

    monkeypatch.setattr(specs, "dump_state", checked)
    monkeypatch.setattr(specs, "load_state", loaded)
    return dumps


@pytest.mark.parametrize(
    ("answers", "committee"),
    [
        ({101: ("approve", "100000", 12), 102: ("approve", "95000", 12)}, None),
        ({101: ("approve", "100000", 12), 102: ("reject", "0", 0)}, None),
        ({101: ("reject", "0", 0), 102: ("reject", "0", 0)}, None),
        ({}, "approve"),
        ({}, "reject"),
    ],
    ids=["all-approve", "mixed", "all-reject", "committee-approve", "committee-reject"],
)
def test_every_state_of_a_lifecycle_is_written_as_the_library_writes_it(loan_process, compared, answers, committee):  # noqa: F811
    start = _start("committee", []) if committee else _start("centralized", [101, 102])
    keys, _ = _drive(loan_process, start, answers, committee=committee or "approve", round_trip=True)
    assert keys[:3] == FIELD
    assert len(compared) == len(keys) + 3  # a dump after the start, each user task and each service task
    assert all(json.loads(text)["tasks"] for text in compared)


def test_unusual_task_data_is_written_as_the_library_writes_it(loan_process):  # noqa: F811
    workflow = specs.new_workflow(loan_process)
    (first,) = workflow.get_tasks()[:1]
    first.data.update({"amount": Decimal("1.50"), "ids": [uuid4()], "nested": {"a": [1, {"b": None}]}, "big": 10**30})
    workflow.do_engine_steps()
    child = workflow.get_tasks()[-1]
    child.data.pop("amount", None)  # a deletion relative to the parent
    child.data["extra"] = "文本"
    assert specs.dump_state(workflow) == _library_dump(workflow)
    assert_loads_alike(loan_process, specs.dump_state(workflow))
