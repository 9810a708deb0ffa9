"""Deploying BPMN and DMN files (F19): versions, running instances keep their rule,
refused uploads name the file and element and store nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE = (ROOT / "bpmn" / "loan_lifecycle.bpmn").read_text(encoding="utf-8")
LOAN_AMOUNT = (ROOT / "rules" / "loan_amount.dmn").read_text(encoding="utf-8")
STRICTER_AMOUNT = LOAN_AMOUNT.replace("0.10", "0.05")


def deploy(api, files: list[tuple[str, str | bytes]], user: str = "analyst"):  # type: ignore[no-untyped-def]
    data = {"file": [(BytesIO(c.encode() if isinstance(c, str) else c), name) for name, c in files]}
    return api.post(user, "/api/v1/processes/deployments", data=data, content_type="multipart/form-data")


def versions(api) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    response = api.get("analyst", "/api/v1/processes")
    assert response.status_code == 200, response.get_json()
    return sorted((i["kind"], i["key"], i["version"]) for i in response.get_json()["items"])


def all_files() -> list[tuple[str, bytes]]:
    paths = sorted((ROOT / "bpmn").glob("*.bpmn")) + sorted((ROOT / "rules").glob("*.dmn"))
    return [(p.name, p.read_bytes()) for p in paths]


def edited(text: str, old: str, new: str) -> str:
    assert old in text, f"fixture text not found: {old}"
    return text.replace(old, new)


def test_processes_list_the_deployed_keys_and_versions(api):
    assert {("process", "loan_lifecycle", 1), ("decision", "loan_amount", 1), ("decision", "loan_term", 1)} <= set(
        versions(api)
    )


def test_redeploying_unchanged_files_creates_no_version_and_names_the_current_ones(api):
    before = versions(api)
    response = deploy(api, all_files())
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["created"] == []
    assert versions(api) == before
    current = {(v["kind"], v["key"], v["version"], v["new"]) for v in response.get_json()["versions"]}
    assert {("process", "loan_lifecycle", 1, False), ("decision", "loan_amount", 1, False)} <= current
    assert len(current) == len({(kind, key) for kind, key, _version, _new in current})  # one per key


def test_a_deployment_names_the_current_version_of_everything_it_touched(api):
    """The rule changes (new), the process calling it is re-versioned (new, though its file
    was not sent), and a file sent back unchanged keeps its version (not new)."""
    response = deploy(api, [("loan_amount.dmn", STRICTER_AMOUNT), ("loan_term.dmn", all_files_named("loan_term.dmn"))])
    assert response.status_code == 201, response.get_json()
    current = {(v["kind"], v["key"], v["version"], v["new"]) for v in response.get_json()["versions"]}
    assert current == {
        ("decision", "loan_amount", 2, True),
        ("decision", "loan_term", 1, False),
        ("process", "loan_lifecycle", 2, True),
    }
    back = deploy(api, [("loan_amount.dmn", LOAN_AMOUNT)])  # the original text again: a third version
    assert {(v["key"], v["version"], v["new"]) for v in back.get_json()["versions"]} == {
        ("loan_amount", 3, True),
        ("loan_lifecycle", 3, True),
    }


def test_the_same_file_sent_twice_in_one_upload_counts_once(api):
    response = deploy(api, [("loan_amount.dmn", STRICTER_AMOUNT), ("copy_of_loan_amount.dmn", STRICTER_AMOUNT)])
    assert response.status_code == 201, response.get_json()
    assert [(c["key"], c["version"]) for c in response.get_json()["created"] if c["kind"] == "decision"] == [
        ("loan_amount", 2)
    ]
    assert [v for kind, key, v in versions(api) if (kind, key) == ("decision", "loan_amount")] == [1, 2]


def test_malformed_xml_names_its_line_once(api):
    response = deploy(api, [("broken.bpmn", "<definitions>\n<process id='x'>\n</definitions>")])
    assert response.status_code == 422
    (message,) = response.get_json()["error"]["fields"]["broken.bpmn"]
    assert message.count("line 3") == 1, message


def all_files_named(name: str) -> bytes:
    return dict(all_files())[name]


def test_changing_a_rule_versions_the_rule_and_the_process_that_calls_it(api):
    response = deploy(api, [("loan_amount.dmn", STRICTER_AMOUNT)])
    assert response.status_code == 201, response.get_json()
    created = {(c["kind"], c["key"], c["version"]) for c in response.get_json()["created"]}
    assert created == {("decision", "loan_amount", 2), ("process", "loan_lifecycle", 2)}
    assert ("decision", "loan_term", 2) not in versions(api)


def test_application_started_before_a_rule_change_keeps_the_old_rule(api):
    before = api.submit(region="HK")
    assert deploy(api, [("loan_amount.dmn", STRICTER_AMOUNT)]).status_code == 201
    after = api.submit(region="HK")
    for no in (before, after):
        api.to_approval(no)
        assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
        assert api.approve("approver2", no, "approve", "93000", 12).status_code == 200

    old_rule = api.application("lead_hka", before)["decision"]
    new_rule = api.application("lead_hka", after)["decision"]
    assert (old_rule["amount_strategy"], Decimal(old_rule["final_amount"])) == ("lowest", Decimal("93000"))
    assert (new_rule["amount_strategy"], Decimal(new_rule["final_amount"])) == ("median", Decimal("96500"))


def test_tasks_carry_the_process_version_their_instance_started_on(api):
    before = api.submit(region="HK")
    assert deploy(api, [("loan_amount.dmn", STRICTER_AMOUNT)]).status_code == 201
    after = api.submit(region="HK")
    assert api.task("lead_hka", before, "assign_officer", "candidate")["process_version"] == 1
    assert api.task("lead_hka", after, "assign_officer", "candidate")["process_version"] == 2
    for no, version in ((before, 1), (after, 2)):
        instance_id = api.application("lead_hka", no)["process_instance_id"]
        view = api.get("analyst", f"/api/v1/process-instances/{instance_id}").get_json()
        assert (view["version"], view["process_version"]) == (version, version)


REFUSALS = {
    "malformed XML": ("broken.bpmn", LIFECYCLE[: len(LIFECYCLE) // 2], "broken.bpmn"),
    "user task without a form": (
        "loan_lifecycle.bpmn",
        edited(LIFECYCLE, '"onsite_visit"', '"home_visit"'),
        "home_visit",
    ),
    "business rule task calling a missing decision": (
        "loan_lifecycle.bpmn",
        edited(
            LIFECYCLE,
            "<spiffworkflow:calledDecisionId>loan_term</spiffworkflow:calledDecisionId>",
            "<spiffworkflow:calledDecisionId>loan_tenor</spiffworkflow:calledDecisionId>",
        ),
        "decide_term",
    ),
    "os.system in a script task": (
        "loan_lifecycle.bpmn",
        edited(LIFECYCLE, "loan_term = None</bpmn:script>", "loan_term = __import__('os').system('id')</bpmn:script>"),
        "tally_approvals",
    ),
    "os.system in a gateway condition": (
        "loan_lifecycle.bpmn",
        edited(LIFECYCLE, 'approval_mode == "committee"', "__import__('os').system('id') == 0"),
        "flow_committee",
    ),
    "open() in a DMN output cell": (
        "loan_amount.dmn",
        edited(LOAN_AMOUNT, "floor(min(amounts))", "open('/etc/passwd').read()"),
        "loan_amount_rule_1_out_final_amount",
    ),
    # What would fail every time an instance reached it is refused before it is stored:
    "string formatting in a DMN output cell": (
        "loan_amount.dmn",
        edited(LOAN_AMOUNT, "floor(min(amounts))", '"%s" % amounts'),
        "loan_amount_rule_1_out_final_amount",
    ),
    "a billion-character string in a DMN output cell": (
        "loan_amount.dmn",
        edited(LOAN_AMOUNT, "floor(min(amounts))", '"x" * 10 ** 9'),
        "loan_amount_rule_1_out_final_amount",
    ),
    "text in a number column": (
        "loan_amount.dmn",
        edited(LOAN_AMOUNT, "floor(min(amounts))", '"abc"'),
        "loan_amount_rule_1_out_final_amount",
    ),
    "an index past the end in a gateway condition": (
        "loan_lifecycle.bpmn",
        edited(LIFECYCLE, 'approval_mode == "committee"', 'approval_mode == ["committee"][1]'),
        "flow_committee",
    ),
    "a column of an unknown type": (
        "loan_amount.dmn",
        edited(LOAN_AMOUNT, 'typeRef="number"', 'typeRef="widget"'),
        "unknown typeRef 'widget'",
    ),
    "two elements with one id": (
        "loan_lifecycle.bpmn",
        edited(LIFECYCLE, '<bpmn:userTask id="collect_materials"', '<bpmn:userTask id="onsite_visit"'),
        "the id 'onsite_visit' is used by more than one element",
    ),
    "os.system in a standard loop's condition": (
        "loan_lifecycle.bpmn",
        edited(
            LIFECYCLE,
            "<bpmn:outgoing>flow_rejected_decision_made</bpmn:outgoing>",
            "<bpmn:outgoing>flow_rejected_decision_made</bpmn:outgoing><bpmn:standardLoopCharacteristics>"
            "<bpmn:loopCondition>__import__('os').system('id') != 0</bpmn:loopCondition>"
            "</bpmn:standardLoopCharacteristics>",
        ),
        "rejected_decision",
    ),
    "os.system in a correlation's message path": (
        "loan_lifecycle.bpmn",
        edited(
            LIFECYCLE,
            '<bpmn:process id="loan_lifecycle"',
            '<bpmn:correlationProperty id="probe_property"><bpmn:correlationPropertyRetrievalExpression '
            'messageRef="probe_message"><bpmn:messagePath>__import__("os").system("id")</bpmn:messagePath>'
            "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>"
            '<bpmn:message id="probe_message" name="probe" /><bpmn:process id="loan_lifecycle"',
        ),
        "probe_property",
    ),
    "os.system in any element typed as an expression": (
        "loan_lifecycle.bpmn",
        edited(
            LIFECYCLE,
            "<bpmn:documentation>All approvers rejected</bpmn:documentation>",
            "<bpmn:documentation>All approvers rejected</bpmn:documentation>"
            '<bpmn:extensionElements><bpmn:probe id="probe_expression" xsi:type="bpmn:tFormalExpression">'
            "__import__('os').system('id')</bpmn:probe></bpmn:extensionElements>",
        ),
        "probe_expression",
    ),
    "dunder walk in a DMN input entry": (
        "loan_amount.dmn",
        edited(LOAN_AMOUNT, "&lt;= 0.10</text>", "().__class__.__bases__</text>"),
        "loan_amount_rule_1_in",
    ),
}


@pytest.mark.parametrize(("file_name", "content", "element"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_unsound_upload_is_refused_naming_file_and_element(api, file_name, content, element):
    before = versions(api)
    response = deploy(api, [(file_name, content)])
    assert response.status_code == 422, response.get_json()
    error = json.dumps(response.get_json()["error"], ensure_ascii=False)
    assert file_name in error
    assert element in error
    assert versions(api) == before


def test_a_hundred_million_digit_integer_output_is_refused_at_once(api):
    """`1e100000000` in an integer column: checking it against the column's type wrote the
    number out (a hundred million digits) and the deployment hung, and the server with it."""
    before = versions(api)
    content = (
        (ROOT / "rules" / "loan_term.dmn").read_text(encoding="utf-8").replace("floor(median(terms))", "1e100000000")
    )
    response = deploy(api, [("loan_term.dmn", content)])
    assert response.status_code == 422, response.get_json()
    assert "final_term" in json.dumps(response.get_json()["error"], ensure_ascii=False)
    assert versions(api) == before


def test_refused_upload_stores_none_of_its_sound_files(api):
    before = versions(api)
    response = deploy(api, [("loan_amount.dmn", STRICTER_AMOUNT), ("broken.bpmn", "<bpmn:definitions")])
    assert response.status_code == 422
    assert versions(api) == before


@pytest.mark.parametrize(
    ("user", "status"), [("officer_hka1", 403), ("lead_hka", 403), ("gm", 403), ("analyst", 201), ("admin", 201)]
)
def test_only_analysts_and_admins_may_deploy(api, user, status):
    response = deploy(api, [("loan_amount.dmn", STRICTER_AMOUNT)], user=user)
    assert response.status_code == status


def test_diagram_returns_the_deployed_bpmn_xml(api):
    response = api.get("analyst", "/api/v1/processes/loan_lifecycle/versions/1/diagram")
    assert response.status_code == 200
    assert "xml" in response.content_type
    assert response.get_data(as_text=True) == LIFECYCLE


def test_every_listed_version_has_its_file_at_the_diagram_path(api):
    """`GET /processes` lists decisions too: each item's path answers its own XML."""
    for item in api.get("analyst", "/api/v1/processes?per_page=200").get_json()["items"]:
        response = api.get("analyst", f"/api/v1/processes/{item['key']}/versions/{item['version']}/diagram")
        assert response.status_code == 200, item
        namespace = "https://www.omg.org/spec/DMN/" if item["kind"] == "decision" else "http://www.omg.org/spec/BPMN/"
        assert namespace in response.get_data(as_text=True)[:600], item


def test_diagram_of_an_unknown_version_is_not_found(api):
    response = api.get("analyst", "/api/v1/processes/loan_lifecycle/versions/9/diagram")
    assert response.status_code == 404
    assert "(process)" in response.get_json()["error"]["message"]


LOAN_TERM = (ROOT / "rules" / "loan_term.dmn").read_text(encoding="utf-8")
LEAVE = (ROOT / "rules" / "leave_authority.dmn").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("file_name", "content", "problem"),
    [
        # A gap: a gap of 7..100 months would match no rule and leave the approver stuck.
        ("loan_term.dmn", edited(LOAN_TERM, "&gt; 6", "&gt; 100"), "no rule matches the input value 7"),
        # An overlap under UNIQUE: spreads in (0.10, 0.20] match rules 1 and 2.
        (
            "loan_amount.dmn",
            edited(LOAN_AMOUNT, "&lt;= 0.10", "&lt;= 0.20"),
            "rules 1 (loan_amount_rule_1), 2 (loan_amount_rule_2) all match",
        ),
        # A number input compared with a text or a boolean never matches as meant (the
        # check used to stop judging a table at the first cell that was not a comparison).
        ("loan_amount.dmn", edited(LOAN_AMOUNT, "&lt;= 0.10", '"low"'), "rule 1 (loan_amount_rule_1): the entry"),
        ("loan_amount.dmn", edited(LOAN_AMOUNT, "&lt;= 0.10", "True"), "compares the number input with a text"),
        ("leave_authority.dmn", edited(LEAVE, "&lt;= 3", '"abc"'), "rule 1 (leave_authority_rule_1)"),
        # FEEL's negation is a Python expression here (`days == (not (4, 5, 6))`): days 1-3 match nothing.
        ("leave_authority.dmn", edited(LEAVE, "&lt;= 3", "not(4,5,6)"), "no rule matches the input value 3"),
    ],
)
def test_a_rule_table_with_a_gap_or_an_overlap_is_refused(api, file_name, content, problem):
    before = versions(api)
    response = deploy(api, [(file_name, content)])
    assert response.status_code == 422, response.get_json()
    assert any(problem in message for message in response.get_json()["error"]["fields"][file_name])
    assert versions(api) == before


def test_a_table_written_for_whole_months_is_not_a_gap(api):
    response = deploy(api, [("loan_term.dmn", edited(LOAN_TERM, "&gt; 6", "&gt;= 7"))])
    assert response.status_code == 201, response.get_json()


def test_a_table_may_start_where_its_input_does(api):
    leave = (ROOT / "rules" / "leave_authority.dmn").read_text(encoding="utf-8")
    response = deploy(api, [("leave_authority.dmn", edited(leave, "&lt;= 3</text>", "1 &lt;= ? &lt;= 3</text>"))])
    assert response.status_code == 201, response.get_json()
    overlap = edited(leave, "3 &lt; ? &lt;= 10</text>", "3 &lt; ? &lt;= 11</text>")
    response = deploy(api, [("leave_authority.dmn", overlap)])
    assert response.status_code == 422
    assert "input value 11" in response.get_json()["error"]["fields"]["leave_authority.dmn"][0]


def test_one_upload_may_not_define_a_decision_twice_differently(api):
    before = versions(api)
    looser = LOAN_AMOUNT.replace("0.10", "0.12")
    response = deploy(api, [("loan_amount.dmn", STRICTER_AMOUNT), ("loan_amount_v2.dmn", looser)])
    assert response.status_code == 422, response.get_json()
    assert "loan_amount.dmn" in json.dumps(response.get_json(), ensure_ascii=False)
    assert "loan_amount_v2.dmn" in response.get_json()["error"]["fields"]
    assert versions(api) == before
    same_twice = deploy(api, [("loan_amount.dmn", LOAN_AMOUNT), ("copy.dmn", LOAN_AMOUNT)])
    assert same_twice.status_code in (200, 201) and same_twice.get_json()["created"] == []


def test_a_rule_that_fails_on_an_instances_data_is_an_incident_and_the_task_stays_open(api):
    """What deployment cannot know — a division by a difference of the approvers' amounts —
    fails when an approval reaches it: the approver's answer is not stored, the failure is
    recorded and shown on the instance until it advances."""
    fragile = edited(LOAN_AMOUNT, "floor(min(amounts))", "floor(min(amounts) / (max(amounts) - 100000))")
    assert deploy(api, [("loan_amount.dmn", fragile)]).status_code == 201
    no = api.submit(region="HK")
    api.to_approval(no)
    assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
    failed = api.approve("approver2", no, "approve", "95000", 12)
    assert failed.status_code == 422
    error = failed.get_json()["error"]
    assert (error["code"], error["fields"]) == ("workflow_error", {"element": "decide_amount"})
    assert "recorded for the process administrators" in error["message"]

    instance_id = api.application("lead_hka", no)["process_instance_id"]
    view = api.get("analyst", f"/api/v1/process-instances/{instance_id}").get_json()
    again = api.approve("approver2", no, "approve", "95000", 12)  # a retry fails alike: one incident, counted
    assert again.status_code == 422
    view = api.get("analyst", f"/api/v1/process-instances/{instance_id}").get_json()
    (incident,) = view["incidents"]
    assert incident["element"] == "decide_amount" and incident["actor_id"] == api.user_id("approver2")
    assert incident["count"] == 2
    assert "DivisionByZero" in incident["reason"] or "division" in incident["reason"].lower(), incident
    assert api.task("approver2", no, "approve")["status"] == "open"  # nothing of the answer was kept

    assert api.approve("approver2", no, "reject", "95000", 12).status_code == 200  # another answer goes through
    view = api.get("analyst", f"/api/v1/process-instances/{instance_id}").get_json()
    assert view["incidents"] == []
    assert [t["task_key"] for t in view["current_tasks"]] == ["supervisor_decide"]


def test_comments_anywhere_in_a_file_are_ignored(api):
    """Modelers leave comments; one inside a decision table was a 500."""
    commented = edited(LOAN_AMOUNT, "<rule ", "<!-- reviewed 2026 --><rule ").replace(
        "0.10", "0.05"
    )  # a change, so that a version is created
    response = deploy(api, [("loan_amount.dmn", commented)])
    assert response.status_code == 201, response.get_json()
    assert {(c["kind"], c["key"]) for c in response.get_json()["created"]} >= {("decision", "loan_amount")}


@pytest.mark.parametrize(
    ("old", "new", "element", "failing"),
    [
        # a script dividing by zero in decimal (its error carries no text: this was a 500)
        (
            "loan_term = None</bpmn:script>",
            "loan_term = None\nratio = 1 / (len(approvals) - len(approvals))</bpmn:script>",
            "tally_approvals",
            "approve",
        ),
        # an assignee expression that fails on the data (it failed after the new try block)
        (
            """value='assign_officer["officer_id"]'""",
            """value='[0][assign_officer["officer_id"]]'""",
            "onsite_visit",
            "assign_officer",
        ),
    ],
    ids=["decimal-division-in-a-script", "assignee-expression"],
)
def test_every_kind_of_engine_failure_in_a_completion_is_an_incident(api, old, new, element, failing):
    assert deploy(api, [("loan_lifecycle.bpmn", edited(LIFECYCLE, old, new))]).status_code == 201
    no = api.submit(region="HK")
    if failing == "assign_officer":
        task = api.task("lead_hka", no, "assign_officer", "candidate")
        response = api.post(
            "lead_hka", f"/api/v1/tasks/{task['id']}/complete", json={"officer_id": api.user_id("officer_hka1")}
        )
    else:
        api.to_approval(no)
        assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
        response = api.approve("approver2", no, "approve", "95000", 12)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["fields"] == {"element": element}
    instance_id = api.application("lead_hka", no)["process_instance_id"]
    (incident,) = api.get("analyst", f"/api/v1/process-instances/{instance_id}").get_json()["incidents"]
    assert incident["element"] == element


def test_a_refused_deployment_is_audited_and_files_are_known_by_their_own_names(api, fresh):
    """F21: a refused deployment (here an unsafe script) leaves an audit row and nothing
    else; a client's directories in a file name are not kept."""
    from tests.integration.test_audit import audit_rows

    unsafe = edited(LOAN_TERM, "&gt; 6", "&gt; __import__('os').getpid()")
    response = deploy(api, [("../../etc/loan_term.dmn", unsafe)])
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["loan_term.dmn"]
    refused = [row for row in audit_rows(fresh, "process.deploy") if row["outcome"] == "refused"]
    assert len(refused) == 1 and "loan_term.dmn" in refused[0]["detail"]
    assert refused[0]["actor_id"] == api.user_id("analyst")

    stricter = deploy(api, [("rules/v2/loan_amount.dmn", STRICTER_AMOUNT)])
    assert stricter.status_code == 201, stricter.get_json()
    assert [d["file_name"] for d in stricter.get_json()["created"] if d["key"] == "loan_amount"] == ["loan_amount.dmn"]


def test_a_refused_rule_cell_is_quoted_as_the_analyst_wrote_it(api):
    response = deploy(api, [("loan_amount.dmn", edited(LOAN_AMOUNT, "&lt;= 0.10</text>", "&lt;= = 0.10</text>"))])
    assert response.status_code == 422
    (message,) = response.get_json()["error"]["fields"]["loan_amount.dmn"]
    assert "`<= = 0.10`" in message and "input_value" not in message, message


def test_a_refused_script_is_quoted_at_the_line_that_goes_wrong(api):
    """A script of several lines is quoted at its offending line, not at its first."""
    unsafe = edited(
        LIFECYCLE, "loan_term = None</bpmn:script>", "loan_term = __import__('os').system('id')</bpmn:script>"
    )
    response = deploy(api, [("loan_lifecycle.bpmn", unsafe)])
    assert response.status_code == 422
    (message,) = response.get_json()["error"]["fields"]["loan_lifecycle.bpmn"]
    assert "tally_approvals" in message and "on line 5: `loan_term = __import__('os').system('id')`" in message


@pytest.mark.parametrize(
    ("file_name", "content"),
    [
        # Exact decimal boundaries: the text is Decimal's argument, not compared with the input.
        ("loan_amount.dmn", edited(LOAN_AMOUNT, "&lt;= 0.10", '&lt;= Decimal("0.10")')),
        # A null guard compares the input with None, not with a text.
        ("loan_amount.dmn", edited(LOAN_AMOUNT, "&lt;= 0.10", "? != None and ? &lt;= 0.10")),
        # FIRST: rule 2 is evaluated only where rule 1 did not match (never at 3 days).
        (
            "leave_authority.dmn",
            edited(
                edited(LEAVE, 'hitPolicy="UNIQUE"', 'hitPolicy="FIRST"'),
                "3 &lt; ? &lt;= 10",
                "30 / (? - 3) &gt;= 30 / 7",
            ),
        ),
    ],
)
def test_rule_tables_an_analyst_would_write_are_deployed(api, file_name, content):
    response = deploy(api, [(file_name, content)])
    assert response.status_code == 201, response.get_json()


def test_a_cell_the_sandbox_would_stop_on_every_run_is_refused_not_a_500(api):
    response = deploy(api, [("loan_amount.dmn", edited(LOAN_AMOUNT, "&lt;= 0.10", "round(?, 10**20) &lt;= 0.10"))])
    assert response.status_code == 422, response.get_json()
    assert (
        "rule 1 (loan_amount_rule_1) cannot be evaluated"
        in response.get_json()["error"]["fields"]["loan_amount.dmn"][0]
    )


def test_a_refused_condition_laid_out_on_several_lines_is_quoted_at_its_own_line(api):
    condition = '\n      (approval_mode == "committee"\n       and open("x"))\n    '
    unsafe = edited(LIFECYCLE, 'approval_mode == "committee"', condition)
    response = deploy(api, [("loan_lifecycle.bpmn", unsafe)])
    assert response.status_code == 422
    (message,) = response.get_json()["error"]["fields"]["loan_lifecycle.bpmn"]
    assert 'on line 2: `and open("x"))`' in message, message
