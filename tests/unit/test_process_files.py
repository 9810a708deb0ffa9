"""Structural checks of the process files (bpmn/*.bpmn, rules/*.dmn).

These are the files a business analyst opens in bpmn-js / Camunda Modeler and
that SpiffWorkflow executes, so we check both sides: they parse (with schema
validation) in SpiffWorkflow, and they carry complete, readable diagram
interchange (DI) data so the modeler can draw them.
"""

from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parents[2]
BPMN_DIR = ROOT / "bpmn"
RULES_DIR = ROOT / "rules"
BPMN_FILES = sorted(BPMN_DIR.glob("*.bpmn"))
DMN_FILES = sorted(RULES_DIR.glob("*.dmn"))

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {
    "bpmn": BPMN_NS,
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}

FLOW_NODE_TAGS = {
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "task",
    "userTask",
    "manualTask",
    "serviceTask",
    "scriptTask",
    "businessRuleTask",
    "sendTask",
    "receiveTask",
    "callActivity",
    "subProcess",
    "transaction",
    "adHocSubProcess",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "complexGateway",
}
# Shapes that legitimately contain other shapes when drawn expanded.
CONTAINER_TAGS = {"subProcess", "transaction", "adHocSubProcess", "participant", "lane", "group"}

LOAN_USER_TASKS = {
    "assign_officer",
    "onsite_visit",
    "collect_materials",
    "approve",
    "supervisor_decide",
    "register_committee",
    "record_committee_decision",
}

START_DATA = {
    "application_no": "YDX-TEST-0001",
    "team_id": "team-1",
    "region_code": "330100",
    "approval_mode": "committee",
    "approvers": ["u1", "u2"],
    "product_code": "micro",
    "amount_requested": 100000,
    "term_requested": 12,
}


def _ids(paths):
    return [p.name for p in paths]


@cache
def _tree(path):
    return etree.parse(str(path))


def _local(el):
    return etree.QName(el).localname


def _processes(path):
    return _tree(path).getroot().findall("bpmn:process", NS)


def _flow_nodes(process):
    return [el for el in process.iter(f"{{{BPMN_NS}}}*") if _local(el) in FLOW_NODE_TAGS]


def _sequence_flows(process):
    return process.findall(".//bpmn:sequenceFlow", NS)


def _new_parser():
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_dmn_files([str(p) for p in DMN_FILES])
    return parser


@cache
def _loan_spec():
    parser = _new_parser()
    parser.add_bpmn_files([str(p) for p in BPMN_FILES])
    return parser.get_spec("loan_lifecycle")


def _bounds(el):
    b = el.find("dc:Bounds", NS)
    return tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))


# --------------------------------------------------------------------------- BPMN: parsing


def test_process_files_exist():
    assert BPMN_DIR / "loan_lifecycle.bpmn" in BPMN_FILES
    assert {p.name for p in DMN_FILES} >= {"loan_amount.dmn", "loan_term.dmn", "leave_authority.dmn"}


@pytest.mark.parametrize("path", BPMN_FILES, ids=_ids(BPMN_FILES))
def test_bpmn_parses_with_spiff(path):
    parser = _new_parser()
    parser.add_bpmn_file(str(path))  # schema validation happens here
    for process in _processes(path):
        if process.get("isExecutable") == "true":
            spec = parser.get_spec(process.get("id"))
            assert spec.name == process.get("id")


def test_loan_lifecycle_spec_loads():
    spec = _loan_spec()
    assert spec.name == "loan_lifecycle"
    assert spec.task_specs["decide_amount"].dmnEngine.decision_table.hit_policy == "UNIQUE"


@pytest.mark.parametrize("path", BPMN_FILES, ids=_ids(BPMN_FILES))
def test_service_operator_ids_do_not_shadow_element_ids(path):
    # SpiffWorkflow indexes every element that has an ``id`` attribute, extension
    # elements included: an operator named like its task hides the task and the
    # parser fails with "There is no support implemented for this task type".
    root = _tree(path).getroot()
    element_ids = {el.get("id") for el in root.iter(f"{{{BPMN_NS}}}*") if el.get("id")}
    clashes = sorted(
        op.get("id") for op in root.iterfind(".//spiffworkflow:serviceTaskOperator", NS) if op.get("id") in element_ids
    )
    assert not clashes, f"{path.name}: serviceTaskOperator ids equal to element ids: {clashes}"


# --------------------------------------------------------------------------- BPMN: diagram (DI)


@pytest.mark.parametrize("path", BPMN_FILES, ids=_ids(BPMN_FILES))
def test_every_flow_node_has_exactly_one_shape(path):
    root = _tree(path).getroot()
    shape_refs = [s.get("bpmnElement") for s in root.iterfind(".//bpmndi:BPMNShape", NS)]
    bad = []
    for process in _processes(path):
        for el in _flow_nodes(process):
            count = shape_refs.count(el.get("id"))
            if count != 1:
                bad.append(f"{el.get('id')} ({count} shapes)")
    assert not bad, f"{path.name}: flow nodes without exactly one BPMNShape: {bad}"


@pytest.mark.parametrize("path", BPMN_FILES, ids=_ids(BPMN_FILES))
def test_every_sequence_flow_has_exactly_one_edge(path):
    root = _tree(path).getroot()
    edge_refs = [e.get("bpmnElement") for e in root.iterfind(".//bpmndi:BPMNEdge", NS)]
    bad = []
    for process in _processes(path):
        for flow in _sequence_flows(process):
            count = edge_refs.count(flow.get("id"))
            if count != 1:
                bad.append(f"{flow.get('id')} ({count} edges)")
    assert not bad, f"{path.name}: sequence flows without exactly one BPMNEdge: {bad}"


@pytest.mark.parametrize("path", BPMN_FILES, ids=_ids(BPMN_FILES))
def test_every_edge_has_waypoints(path):
    root = _tree(path).getroot()
    bad = [
        e.get("bpmnElement") for e in root.iterfind(".//bpmndi:BPMNEdge", NS) if len(e.findall("di:waypoint", NS)) < 2
    ]
    assert not bad, f"{path.name}: edges with fewer than 2 waypoints: {bad}"


@pytest.mark.parametrize("path", BPMN_FILES, ids=_ids(BPMN_FILES))
def test_shapes_do_not_overlap(path):
    root = _tree(path).getroot()
    by_id = {el.get("id"): el for el in root.iter(f"{{{BPMN_NS}}}*") if el.get("id")}
    overlaps = []
    for plane in root.iterfind(".//bpmndi:BPMNPlane", NS):
        shapes = []
        for s in plane.findall("bpmndi:BPMNShape", NS):
            el = by_id.get(s.get("bpmnElement"))
            tag = _local(el) if el is not None else ""
            if tag in CONTAINER_TAGS and s.get("isExpanded") != "false":
                continue  # drawn around its children
            shapes.append((s.get("bpmnElement"), el, _bounds(s)))
        for i, (id1, el1, (x1, y1, w1, h1)) in enumerate(shapes):
            for id2, el2, (x2, y2, w2, h2) in shapes[i + 1 :]:
                attached = {el.get("attachedToRef") for el in (el1, el2) if el is not None} & {id1, id2}
                if attached:
                    continue  # boundary events sit on their host's border
                if x1 < x2 + w2 and x2 < x1 + w1 and y1 < y2 + h2 and y2 < y1 + h1:
                    overlaps.append(f"{id1}/{id2}")
    assert not overlaps, f"{path.name}: overlapping shapes: {overlaps}"


# --------------------------------------------------------------------------- BPMN: semantics


@pytest.mark.parametrize("path", BPMN_FILES, ids=_ids(BPMN_FILES))
def test_exclusive_gateways_have_a_default_flow(path):
    problems = []
    for process in _processes(path):
        flows = _sequence_flows(process)
        for gw in process.iterfind(".//bpmn:exclusiveGateway", NS):
            outgoing = [f for f in flows if f.get("sourceRef") == gw.get("id")]
            if len(outgoing) <= 1:
                continue
            default = gw.get("default")
            out_ids = {f.get("id") for f in outgoing}
            if default not in out_ids:
                problems.append(f"{gw.get('id')}: default={default!r} not one of {sorted(out_ids)}")
                continue
            for f in outgoing:
                has_cond = f.find("bpmn:conditionExpression", NS) is not None
                if f.get("id") == default and has_cond:
                    problems.append(f"{gw.get('id')}: default flow {default} has a condition")
                if f.get("id") != default and not has_cond:
                    problems.append(f"{gw.get('id')}: flow {f.get('id')} has no condition")
    assert not problems, f"{path.name}: {problems}"


def test_loan_lifecycle_user_tasks():
    (process,) = [p for p in _processes(BPMN_DIR / "loan_lifecycle.bpmn") if p.get("id") == "loan_lifecycle"]
    user_tasks = process.findall(".//bpmn:userTask", NS)
    assert {t.get("id") for t in user_tasks} == LOAN_USER_TASKS
    problems = []
    for task in user_tasks:
        props = {
            p.get("name"): p.get("value")
            for p in task.iterfind("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)
        }
        missing = {"stage", "due"} - props.keys()
        if missing:
            problems.append(f"{task.get('id')}: missing {sorted(missing)}")
        if ("candidate_role" in props) == ("assignee" in props):
            problems.append(f"{task.get('id')}: needs exactly one of candidate_role / assignee")
    assert not problems, problems


def test_loan_lifecycle_runs_to_first_user_task():
    """Structural smoke run with SpiffWorkflow's default script engine."""
    workflow = BpmnWorkflow(_loan_spec())
    workflow.get_tasks(state=TaskState.READY)[0].data.update(START_DATA)
    workflow.do_engine_steps()
    ready = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert [t.task_spec.name for t in ready] == ["assign_officer"]


# --------------------------------------------------------------------------- DMN


@pytest.mark.parametrize("path", DMN_FILES, ids=_ids(DMN_FILES))
def test_dmn_file(path):
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_dmn_file(str(path))  # schema validation happens here

    root = _tree(path).getroot()
    decisions = root.findall("{*}decision")
    assert len(decisions) == 1, f"{path.name}: expected one decision, found {len(decisions)}"
    decision = decisions[0]
    dec_id = decision.get("id")

    tables = decision.findall("{*}decisionTable")
    assert len(tables) == 1
    assert tables[0].get("hitPolicy") == "UNIQUE"
    rules = tables[0].findall("{*}rule")
    assert rules, f"{path.name}: no rules"
    undocumented = [r.get("id") for r in rules if not (r.findtext("{*}description") or "").strip()]
    assert not undocumented, f"{path.name}: rules without description: {undocumented}"

    shapes = root.findall("{*}DMNDI/{*}DMNDiagram/{*}DMNShape")
    assert [s.get("dmnElementRef") for s in shapes] == [dec_id], f"{path.name}: missing DMN DI"
    assert shapes[0].find("{*}Bounds") is not None

    engine = parser.get_engine(dec_id, None)
    assert engine.decision_table.hit_policy == "UNIQUE"
