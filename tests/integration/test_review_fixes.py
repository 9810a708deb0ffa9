"""Regressions found in review: customer data, racing first submissions, hostile JSON."""

import threading

import pytest

from tests.conftest import MEETING_AT, application_body, resident_id


def test_a_public_form_never_rewrites_an_existing_customers_contact(api):
    no = api.submit()
    intruder = api.client.post(
        "/api/v1/public/applications", json=application_body(name="冒名者", phone="13700000000")
    ).get_json()["application_no"]
    assert api.client.get(f"/api/v1/public/applications/{no}?phone=13800138000").status_code == 200
    assert api.client.get(f"/api/v1/public/applications/{intruder}?phone=13700000000").status_code == 200
    customer = api.application("gm", no, full=True)["customer"]
    assert (customer["name"], customer["phone"]) == ("张三", "13800138000")


def test_racing_first_submissions_of_one_new_customer_all_succeed(fresh):
    body = application_body(id_number=resident_id("46010019900101777"))
    start = threading.Barrier(4)
    statuses: list[int] = []

    def submit() -> None:
        client = fresh.test_client()
        start.wait()
        statuses.append(client.post("/api/v1/public/applications", json=body).status_code)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201, 201, 201, 201]


def test_json_nested_deeper_than_the_walker_could_recurse_is_refused_cleanly(client):
    body = b'{"name": ' + b"[" * 700 + b"]" * 700 + b"}"
    response = client.post("/api/v1/public/applications", data=body, content_type="application/json")
    assert response.status_code == 422
    assert "name" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "\\ud800"}',
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
        b'{"amount": 1e999}',
    ],
)
def test_hostile_json_is_a_400(client, body):
    response = client.post("/api/v1/public/applications", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {}


def test_a_nul_in_a_console_form_is_a_400(client):
    assert client.post("/login", data={"username": "gm\x00", "password": "x"}).status_code == 400


def test_the_committee_decision_is_shown_only_to_those_granted_it(api):
    no = api.submit(region="SY")
    api.to_approval(no, lead="lead_sya", officer="officer_sya1")
    meeting = {"meeting_at": MEETING_AT, "members": ["张主任", "李委员"]}
    api.complete("lead_sya", no, "register_committee", meeting, "candidate")
    decision = {"decision": "approve", "amount": "50000", "term_months": 6, "minutes": "同意"}
    api.complete("lead_sya", no, "record_committee_decision", decision, "candidate")
    assert api.application("officer_sya1", no)["committee"]["decision"]["decision"] == "approve"
    seen_by_supervisor = api.application("supervisor", no)
    assert "decision" not in seen_by_supervisor["committee"]
    assert "decision" not in seen_by_supervisor


def test_an_approved_amount_outside_the_product_is_refused(api):
    no = api.submit()
    api.to_approval(no)
    too_much = api.approve("approver1", no, "approve", "2000000", 12)
    assert too_much.status_code == 422
    assert "amount" in too_much.get_json()["error"]["fields"]
    too_long = api.approve("approver1", no, "approve", "100000", 120)
    assert "term_months" in too_long.get_json()["error"]["fields"]


def _lifecycle_with(replace: tuple[str, str]) -> bytes:
    from tests.conftest import ROOT

    source = (ROOT / "bpmn" / "loan_lifecycle.bpmn").read_text(encoding="utf-8")
    assert replace[0] in source
    return source.replace(replace[0], replace[1], 1).encode("utf-8")


def _deploy(api, name: str, content: bytes):  # type: ignore[no-untyped-def]
    from io import BytesIO

    return api.post(
        "analyst",
        "/api/v1/processes/deployments",
        data={"file": [(BytesIO(content), name)]},
        content_type="multipart/form-data",
    )


def test_a_manual_task_without_a_form_is_refused_at_deployment(api):
    import re

    source = _lifecycle_with(("", "")).decode()
    manual = (
        re.sub(
            r'<bpmn:userTask id="onsite_visit"(.*?)</bpmn:userTask>',
            lambda m: '<bpmn:manualTask id="onsite_visit"' + m.group(1) + "</bpmn:manualTask>",
            source,
            count=1,
            flags=re.S,
        )
        .replace('id="onsite_visit"', 'id="phone_call"')
        .replace('"onsite_visit"', '"phone_call"')
    )
    manual = re.sub(r'(Ref|bpmnElement)="onsite_visit"', r'\1="phone_call"', manual)
    response = _deploy(api, "loan_lifecycle.bpmn", manual.encode())
    assert response.status_code == 422
    assert "phone_call" in str(response.get_json()["error"]["fields"])


def test_a_due_time_in_months_is_refused_at_deployment(api):
    content = _lifecycle_with(('name="due" value="P1D"', 'name="due" value="P1M"'))
    response = _deploy(api, "loan_lifecycle.bpmn", content)
    assert response.status_code == 422
    assert "P1M" in str(response.get_json()["error"]["fields"])


def test_a_file_not_in_utf8_is_refused_at_deployment(api):
    from tests.conftest import ROOT

    source = (ROOT / "rules" / "loan_term.dmn").read_text(encoding="utf-8")
    gbk = source.replace('encoding="UTF-8"', 'encoding="GBK"').encode("gbk")
    response = _deploy(api, "loan_term.dmn", gbk)
    assert response.status_code == 422
