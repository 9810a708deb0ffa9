"""What a diagram can make the engine do in one request is bounded: a loop that never
ends, a multi-instance activity of a million instances and data that cannot be stored
each become the instance's incident (a 422 naming the element), not a request that never
returns or a 500."""

from __future__ import annotations

import pytest
from lxml import etree

from app.workflow import runtime, specs
from app.workflow.walk import MAX_ENGINE_STEPS

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="probe" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
"""
TAIL = """    <bpmn:endEvent id="end"><bpmn:incoming>f_end</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

LOOP = (
    HEAD
    + """    <bpmn:scriptTask id="count" scriptFormat="python"><bpmn:incoming>f1</bpmn:incoming><bpmn:incoming>f_again</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>n = n + 1 if "n" in locals_ else 1</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="again" default="f_end"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f_again</bpmn:outgoing><bpmn:outgoing>f_end</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="count"/>
    <bpmn:sequenceFlow id="f2" sourceRef="count" targetRef="again"/>
    <bpmn:sequenceFlow id="f_again" sourceRef="again" targetRef="count">
      <bpmn:conditionExpression>True</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_end" sourceRef="again" targetRef="end"/>
"""
    + TAIL
)


def _script_then_end(script: str, loop: str = "") -> str:
    return (
        HEAD
        + f"""    <bpmn:scriptTask id="work" scriptFormat="python"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f_end</bpmn:outgoing>{loop}<bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:sequenceFlow id="f_end" sourceRef="work" targetRef="end"/>
"""
        + TAIL
    )


def _workflow(xml: str):  # type: ignore[no-untyped-def]
    parser = specs.YdxParser()
    parser.add_bpmn_xml(etree.ElementTree(etree.fromstring(xml.encode())), filename="probe.bpmn")
    return specs.YdxWorkflow(
        parser.get_spec("probe"), parser.get_subprocess_specs("probe"), script_engine=specs.SCRIPT_ENGINE
    )


def test_a_loop_that_never_ends_stops_after_the_step_limit_naming_an_element_of_it():
    workflow = _workflow(LOOP.replace('n = n + 1 if "n" in locals_ else 1', "n = 1"))
    with pytest.raises(runtime.WorkflowFailure) as failure:
        runtime._run(workflow.do_engine_steps)
    assert failure.value.element in ("count", "again")
    assert f"more than {MAX_ENGINE_STEPS} engine steps" in failure.value.reason


def cardinality(value: str) -> str:
    return (
        '<bpmn:multiInstanceLoopCharacteristics isSequential="false">'
        f"<bpmn:loopCardinality>{value}</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>"
    )


def test_a_multi_instance_activity_of_more_than_the_limit_is_refused_naming_it():
    workflow = _workflow(_script_then_end("x = 1", cardinality(str(specs.MAX_INSTANCES + 1))))
    with pytest.raises(runtime.WorkflowFailure) as failure:
        runtime._run(workflow.do_engine_steps)
    assert failure.value.element == "work" and "loop cardinality" in failure.value.reason


def test_a_multi_instance_activity_within_the_limit_runs():
    workflow = _workflow(_script_then_end("x = 1", cardinality("3")))
    runtime._run(workflow.do_engine_steps)
    assert workflow.completed


def test_data_that_holds_itself_is_an_incident_not_a_500():
    workflow = _workflow(_script_then_end("d = {}\nd['k'] = d"))
    runtime._run(workflow.do_engine_steps)
    with pytest.raises(runtime.WorkflowFailure) as failure:
        runtime._dumped(workflow)
    assert "cannot be stored" in failure.value.reason


def _collection_workflow(count: int):  # type: ignore[no-untyped-def]
    xml = (
        HEAD
        + f"""    <bpmn:scriptTask id="make" scriptFormat="python"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>items = [0] * {count}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="each"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f_end</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics><bpmn:loopDataInputRef>items</bpmn:loopDataInputRef>
        <bpmn:inputDataItem id="item" name="item" /></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="make"/>
    <bpmn:sequenceFlow id="f2" sourceRef="make" targetRef="each"/>
    <bpmn:sequenceFlow id="f_end" sourceRef="each" targetRef="end"/>
"""
        + TAIL
    )
    parser = specs.YdxParser()
    parser.add_bpmn_xml(etree.ElementTree(etree.fromstring(xml.encode())), filename="probe.bpmn")
    text = specs.spec_to_json(parser.get_spec("probe"), parser.get_subprocess_specs("probe"), {})
    return specs.new_workflow(specs._bounded(specs.spec_from_json(text)))


def test_a_multi_instance_activity_over_a_collection_larger_than_the_limit_is_refused():
    """One child per item is built in a single step: 20,000 items took 10 s (and would
    have been 20,000 inbox rows); the cardinality bound did not see a collection."""
    workflow = _collection_workflow(specs.MAX_INSTANCES + 1)
    with pytest.raises(runtime.WorkflowFailure) as failure:
        runtime._run(workflow.do_engine_steps)
    assert failure.value.element == "each" and "more than" in failure.value.reason
    fine = _collection_workflow(3)
    runtime._run(fine.do_engine_steps)
    assert len([t for t in fine.get_tasks() if t.task_spec.bpmn_id == "each" and t.task_spec.manual]) == 3


def test_a_loop_that_restarts_deep_in_an_old_instance_fails_instead_of_stalling(monkeypatch):
    """The step bound is per advance, the library's depth limit per instance life: a loop
    entered deep in the tree stalled silently before reaching 900 steps."""
    from app.workflow import walk

    monkeypatch.setattr(walk, "_DEEPEST", 100)  # as if the tree were already 840 levels deep
    workflow = _workflow(LOOP.replace('n = n + 1 if "n" in locals_ else 1', "n = 1"))
    with pytest.raises(runtime.WorkflowFailure) as failure:
        runtime._run(workflow.do_engine_steps)
    assert "levels deep" in failure.value.reason
