"""`YdxWorkflow` walks the task tree as SpiffWorkflow's own iterator does.

Every walk the engine makes while these lifecycles run (READY tasks for the engine steps,
WAITING tasks after each completed task, our projection's READY|STARTED) is made both
ways and compared, and after every step a matrix of filters, starting points, `end_at_spec`
and `max_depth` values is compared too — on the real loan diagram down each of its paths,
and on a small diagram with an embedded subprocess, a parallel split and a timer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.util.task import TaskIterator, TaskState

from app.workflow import specs
from app.workflow.walk import YdxWorkflow, walk

ROOT = Path(__file__).resolve().parents[2]
DECISION_REFS = {"decide_amount": "loan_amount", "decide_term": "loan_term"}


class CheckedWorkflow(YdxWorkflow):
    """Makes every walk twice — ours and the library's — and insists they agree."""

    walks = 0

    def get_tasks_iterator(self, first_task=None, **kwargs):  # type: ignore[no-untyped-def]
        ours = list(super().get_tasks_iterator(first_task, **kwargs))
        theirs = list(BpmnTaskIterator(first_task or self.task_tree, **kwargs))
        assert _names(ours) == _names(theirs), kwargs
        CheckedWorkflow.walks += 1
        return iter(ours)

    def update_waiting_tasks(self) -> None:
        ours = list(walk(self.task_tree, _filter(state=TaskState.WAITING), into_subprocesses=False))
        theirs = list(TaskIterator(self.task_tree, state=TaskState.WAITING))
        assert _names(ours) == _names(theirs)
        CheckedWorkflow.walks += 1
        super().update_waiting_tasks()


def _filter(**kwargs):  # type: ignore[no-untyped-def]
    from SpiffWorkflow.bpmn.util.task import BpmnTaskFilter

    return BpmnTaskFilter(**kwargs)


def _names(tasks: list[Any]) -> list[tuple[str, str, int]]:
    return [(str(t.id), t.task_spec.name, t.state) for t in tasks]


STATES = [
    TaskState.ANY_MASK,
    TaskState.READY,
    TaskState.READY | TaskState.STARTED,
    TaskState.WAITING,
    TaskState.STARTED,
    TaskState.COMPLETED,
    TaskState.FINISHED_MASK,
    TaskState.NOT_FINISHED_MASK,
    TaskState.PREDICTED_MASK,
    TaskState.DEFINITE_MASK,
    TaskState.MAYBE,
    TaskState.CANCELLED,
]


def assert_same_walks(workflow: YdxWorkflow) -> None:
    """Compare ours with the library's for a matrix of iteration parameters."""
    everything = list(BpmnTaskIterator(workflow.task_tree))
    starts = [None, *everything[1 : len(everything) : max(1, len(everything) // 4)]]
    names = sorted({t.task_spec.name for t in everything})[:6]
    cases: list[dict[str, Any]] = [{"state": s} for s in STATES]
    cases += [{"state": TaskState.READY, "manual": m} for m in (True, False)]
    cases += [{"spec_name": n} for n in names]
    cases += [{"end_at_spec": n} for n in names]
    cases += [{"max_depth": d} for d in (0, 1, 3, 7)]
    cases += [{"skip_subprocesses": True}, {"skip_subprocesses": True, "state": TaskState.READY}]
    cases += [{"updated_ts": everything[len(everything) // 2].last_state_change}]
    for first in starts:
        for kwargs in cases:
            ours = list(YdxWorkflow.get_tasks_iterator(workflow, first, **kwargs))
            theirs = list(BpmnTaskIterator(first or workflow.task_tree, **kwargs))
            assert _names(ours) == _names(theirs), (first, kwargs)
    # Breadth first goes to the library unchanged.
    ours = list(YdxWorkflow.get_tasks_iterator(workflow, depth_first=False))
    assert _names(ours) == _names(list(BpmnTaskIterator(workflow.task_tree, depth_first=False)))


# --- the loan diagram ------------------------------------------------------------------


@pytest.fixture(scope="module")
def loan_process():
    parser = specs.YdxParser()
    for path in sorted((ROOT / "rules").glob("*.dmn")):
        parser.add_dmn_xml(etree.fromstring(path.read_bytes()), filename=path.name)
    bpmn = ROOT / "bpmn" / "loan_lifecycle.bpmn"
    parser.add_bpmn_xml(etree.ElementTree(etree.fromstring(bpmn.read_bytes())), filename=bpmn.name)
    spec = parser.get_spec("loan_lifecycle")
    subprocess_specs = parser.get_subprocess_specs("loan_lifecycle")
    return specs.spec_from_json(specs.spec_to_json(spec, subprocess_specs, DECISION_REFS))


def _start(mode: str, approvers: list[int]) -> dict[str, Any]:
    return {
        "application_id": 1,
        "application_no": "YDXWALK0001",
        "team_id": 1,
        "region_id": 1,
        "region_code": "HK",
        "approval_mode": mode,
        "approvers": approvers,
        "product_code": "BIZ-EQ",
        "amount_requested": Decimal("100000.00"),
        "term_requested": 12,
    }


def _form(task: Any, answers: dict[int, tuple[str, str, int]], committee: str, supervisor: str) -> None:
    key = task.task_spec.bpmn_id
    if key == "approve":
        approver_id = task.data["approver_id"]
        decision, amount, term = answers[approver_id]
        task.data["approval"] = {
            "decision": decision,
            "amount": Decimal(amount) if decision == "approve" else None,
            "term_months": term if decision == "approve" else None,
            "comment": "",
            "by": approver_id,
            "approver_id": approver_id,
        }
        return
    forms: dict[str, dict[str, Any]] = {
        "assign_officer": {"officer_id": 7, "by": 3},
        "onsite_visit": {"visited_at": datetime(2026, 11, 20, 10, 0), "notes": "", "by": 7},
        "collect_materials": {"customer": {}, "attachments": [], "notes": "", "by": 7},
        "register_committee": {"meeting_at": datetime(2026, 11, 25, 10, 0), "members": [11, 12], "by": 3},
        "record_committee_decision": (
            {"decision": committee, "amount": Decimal("90000"), "term_months": 12, "by": 3}
            if committee == "approve"
            else {"decision": committee, "by": 3}
        ),
        "supervisor_decide": (
            {"decision": supervisor, "amount": Decimal("80000"), "term_months": 12, "by": 4}
            if supervisor == "approve"
            else {"decision": supervisor, "by": 4}
        ),
    }
    task.data[key] = forms[key]


def _drive(process: Any, start: dict[str, Any], answers, committee="approve", supervisor="approve", round_trip=False):
    workflow = CheckedWorkflow(process.spec, process.subprocess_specs, script_engine=specs.SCRIPT_ENGINE)

    def step(workflow: Any) -> Any:
        workflow.do_engine_steps()
        assert_same_walks(workflow)
        if round_trip:
            workflow.__class__ = YdxWorkflow  # the serializer knows the class it stores
            workflow = specs.load_state(process, specs.dump_state(workflow))
            assert type(workflow) is YdxWorkflow
            workflow.__class__ = CheckedWorkflow
        return workflow

    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(start)
    workflow = step(workflow)
    keys = []
    for _ in range(40):
        if workflow.completed:
            break
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if ready:
            _form(ready[0], answers, committee, supervisor)
            keys.append(ready[0].task_spec.bpmn_id)
            ready[0].run()
        else:
            (task,) = workflow.get_tasks(state=TaskState.STARTED)[:1]
            task.data[task.task_spec.result_variable] = {"status": "unavailable", "loan_id": 1}
            task.complete()
        workflow = step(workflow)
    assert workflow.completed
    return keys, workflow.last_task.data


FIELD = ["assign_officer", "onsite_visit", "collect_materials"]


@pytest.mark.parametrize("round_trip", [False, True], ids=["in-memory", "state-round-trip"])
@pytest.mark.parametrize(
    ("answers", "path", "outcome"),
    [
        ({101: ("approve", "100000", 12), 102: ("approve", "95000", 12)}, ["approve", "approve"], "approved"),
        (
            {101: ("approve", "100000", 12), 102: ("reject", "0", 0)},
            ["approve", "approve", "supervisor_decide"],
            "approved",
        ),
        ({101: ("reject", "0", 0), 102: ("reject", "0", 0)}, ["approve", "approve"], "rejected"),
        (
            {101: ("approve", "100000", 6), 102: ("approve", "50000", 36)},
            ["approve", "approve", "supervisor_decide"],
            "approved",
        ),
    ],
    ids=["all-approve", "mixed", "all-reject", "escalated"],
)
def test_centralized_paths_walk_alike(loan_process, answers, path, outcome, round_trip):
    before = CheckedWorkflow.walks
    keys, data = _drive(loan_process, _start("centralized", [101, 102]), answers, round_trip=round_trip)
    assert keys == FIELD + path
    assert data["decision"]["outcome"] == outcome
    assert CheckedWorkflow.walks - before > 30  # the engine's own walks went through the check


@pytest.mark.parametrize("committee", ["approve", "reject"])
def test_committee_paths_walk_alike(loan_process, committee):
    keys, data = _drive(loan_process, _start("committee", []), {}, committee=committee, round_trip=True)
    assert keys == [*FIELD, "register_committee", "record_committee_decision"]
    assert data["decision"]["outcome"] == ("approved" if committee == "approve" else "rejected")


def test_a_rejected_supervisor_decision_walks_alike(loan_process):
    answers = {101: ("approve", "100000", 12), 102: ("reject", "0", 0)}
    keys, data = _drive(loan_process, _start("centralized", [101, 102]), answers, supervisor="reject")
    assert keys[-1] == "supervisor_decide"
    assert data["decision"]["outcome"] == "rejected"


# --- subprocesses, parallel branches, a timer -------------------------------------------

NESTED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="nested" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="split"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:subProcess id="sub"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:startEvent id="sub_start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:userTask id="inner"><bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing></bpmn:userTask>
      <bpmn:endEvent id="sub_end"><bpmn:incoming>s2</bpmn:incoming></bpmn:endEvent>
      <bpmn:sequenceFlow id="s1" sourceRef="sub_start" targetRef="inner"/>
      <bpmn:sequenceFlow id="s2" sourceRef="inner" targetRef="sub_end"/>
    </bpmn:subProcess>
    <bpmn:userTask id="outer"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="late" attachedToRef="outer" cancelActivity="false">
      <bpmn:outgoing>f6</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"P30D"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="late_end"><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
    <bpmn:parallelGateway id="join"><bpmn:incoming>f4</bpmn:incoming><bpmn:incoming>f5</bpmn:incoming><bpmn:outgoing>f7</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:endEvent id="end"><bpmn:incoming>f7</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="split"/>
    <bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="sub"/>
    <bpmn:sequenceFlow id="f3" sourceRef="split" targetRef="outer"/>
    <bpmn:sequenceFlow id="f4" sourceRef="sub" targetRef="join"/>
    <bpmn:sequenceFlow id="f5" sourceRef="outer" targetRef="join"/>
    <bpmn:sequenceFlow id="f6" sourceRef="late" targetRef="late_end"/>
    <bpmn:sequenceFlow id="f7" sourceRef="join" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.mark.parametrize("order", [["inner", "outer"], ["outer", "inner"]])
def test_subprocesses_and_timers_walk_alike(order):
    parser = specs.YdxParser()
    parser.add_bpmn_xml(etree.ElementTree(etree.fromstring(NESTED.encode())), filename="nested.bpmn")
    spec = parser.get_spec("nested")
    workflow = CheckedWorkflow(spec, parser.get_subprocess_specs("nested"), script_engine=specs.SCRIPT_ENGINE)
    workflow.do_engine_steps()
    assert workflow.subprocesses, "the embedded subprocess runs as its own workflow"
    assert_same_walks(workflow)
    assert any(isinstance(t.task_spec, BoundaryEvent) for t in workflow.get_tasks(state=TaskState.WAITING))
    for name in order:
        (task,) = workflow.get_tasks(state=TaskState.READY, manual=True, spec_name=name)
        task.run()
        workflow.do_engine_steps()
        assert_same_walks(workflow)
    assert workflow.completed
    assert_same_walks(workflow)
