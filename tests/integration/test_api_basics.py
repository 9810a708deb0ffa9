"""What every API client relies on: health, the OpenAPI document, the error format, and
that no input, however wrong, makes the server fail (a 5xx is a bug)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import application_body


def assert_error_format(response, status: int | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """{"error": {"code", "message", ...}} as JSON."""
    if status is not None:
        assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.is_json, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_health_reports_the_database_ok(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"] == "ok"


def test_the_openapi_document_lists_the_public_and_task_endpoints(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.get_data(as_text=True))
    assert {"/api/v1/public/applications", "/api/v1/tasks", "/api/v1/auth/login"} <= set(document["paths"])
    assert document["components"]["schemas"]["Task"]["properties"]["title"]["type"] == "string"


def test_the_api_docs_page_is_html(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "openapi.json" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v1/applications/x/y/z", "/api/v2/health"])
def test_an_unknown_api_path_is_a_json_404(client, path):
    assert_error_format(client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/auth/login"), ("delete", "/api/v1/health"), ("put", "/api/v1/public/applications")],
)
def test_a_wrong_method_is_a_json_405(client, method, path):
    assert_error_format(getattr(client, method)(path), 405)


def test_an_unknown_task_is_a_json_404(api):
    assert_error_format(api.get("lead_hka", "/api/v1/tasks/987654"), 404)


# --- no junk input makes the server fail --------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000
JUNK_RAW: list[str | bytes] = [
    "",
    "{",
    "not json",
    "[]",
    '"a string"',
    "null",
    "true",
    "42",
    "1e400",
    "9" * 5000,
    "[{}]",
    '{"a": NaN}',
    DEEP,
    b"\xff\xfe invalid utf-8 \xc3\x28",
]


BAD_VALUES: list[Any] = [
    None,
    [],
    {},
    True,
    "",
    "x" * 100_000,
    "\u0000",
    "a\u0000b",
    -1,
    0,
    10**30,
    -(10**30),
    1.5,
    "1e30",
    "9" * 40,
    "-0",
    {"$ne": None},
    ["nested", ["deep"]],
]


def junk_objects(valid: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, body): `valid` with each field in turn replaced by a value of the wrong
    type or an absurd size, plus an empty object and an unexpected extra field."""
    variants: list[tuple[str, Any]] = [("{}", {})]
    for key in valid:
        for value in BAD_VALUES:
            variants.append((f"{key}={str(value)[:30]!r}", {**valid, key: value}))
    variants.append(("unexpected field", {**valid, "unexpected": "field"}))
    return variants


def fuzz(send, valid: dict[str, Any]) -> list[str]:  # type: ignore[no-untyped-def]
    """Send every junk body; describe each answer that is a 5xx or not in the error format."""
    problems = []
    for raw in JUNK_RAW:
        response = send(data=raw, content_type="application/json")
        problems += check(response, f"raw body {raw[:30]!r} ({len(raw)} chars)")
    for label, body in junk_objects(valid):
        problems += check(send(json=body), f"json {label}")
    return problems


def check(response, label: str) -> list[str]:  # type: ignore[no-untyped-def]
    if response.status_code >= 500:
        return [f"{label} -> {response.status_code}"]
    if response.status_code >= 400:
        try:
            assert_error_format(response)
        except (AssertionError, KeyError, TypeError):
            return [f"{label} -> {response.status_code} without the error format"]
    return []


def test_junk_public_applications_never_fail_the_server(client):
    problems = fuzz(lambda **kw: client.post("/api/v1/public/applications", **kw), application_body())
    assert not problems, "\n".join(problems)


def test_junk_logins_never_fail_the_server(client):
    problems = fuzz(
        lambda **kw: client.post("/api/v1/auth/login", **kw), {"username": "lead_hka", "password": "wrong-password"}
    )
    assert not problems, "\n".join(problems)


def test_junk_password_changes_never_fail_the_server(api):
    problems = fuzz(
        lambda **kw: api.post("officer_hka2", "/api/v1/auth/password", **kw),
        {"current_password": "wrong-password", "new_password": "a-new-secret-9"},
    )
    assert not problems, "\n".join(problems)


def test_junk_task_completions_never_fail_the_server(api):
    number = api.submit()
    task = api.task("lead_hka", number, "assign_officer", "candidate")
    problems = fuzz(
        lambda **kw: api.post("lead_hka", f"/api/v1/tasks/{task['id']}/complete", **kw),
        {"officer_id": api.user_id("officer_hka2") * 1000},
    )
    assert not problems, "\n".join(problems)


def test_junk_approvals_never_fail_the_server(api):
    number = api.submit()
    api.to_approval(number)
    task = api.task("approver1", number, "approve")
    problems = fuzz(
        lambda **kw: api.post("approver1", f"/api/v1/tasks/{task['id']}/complete", **kw),
        {"decision": "maybe", "amount": "90000", "term_months": 12, "comment": ""},
    )
    assert not problems, "\n".join(problems)


def test_junk_task_assignments_never_fail_the_server(api):
    number = api.submit()
    task = api.task("lead_hka", number, "assign_officer", "candidate")
    problems = fuzz(
        lambda **kw: api.post("lead_hka", f"/api/v1/tasks/{task['id']}/assign", **kw),
        {"user_id": api.user_id("officer_sya1")},
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("decision", "valid"),
    [
        ("loan_amount", {"amounts": ["100000", "80000"]}),
        ("loan_term", {"terms": [12, 18]}),
        ("leave_authority", {"days": 5}),
    ],
)
def test_junk_decision_inputs_never_fail_the_server(api, decision, valid):
    problems = fuzz(lambda **kw: api.post("analyst", f"/api/v1/decisions/{decision}/evaluate", **kw), valid)
    assert not problems, "\n".join(problems)


JUNK_QUERIES = [
    "page=abc",
    "page=0",
    "page=-1",
    "page=99999999999999999999999",
    "per_page=100000",
    "per_page=99999999999999999999999",
    "per_page=1.5",
    "scope=everything",
    "status=maybe",
    "q=%00",
    "q=%25%25%25",
    "q=" + "x" * 5000,
    "stage=%00",
    "page=1&page=2",
]


@pytest.mark.parametrize("path", ["/api/v1/applications", "/api/v1/tasks", "/api/v1/customers"])
def test_junk_list_queries_never_fail_the_server(api, path):
    problems = []
    for query in JUNK_QUERIES:
        problems += check(api.get("gm", f"{path}?{query}"), f"{path}?{query[:40]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tasks/99999999999999999999999",
        "/api/v1/customers/99999999999999999999999",
        "/api/v1/loans/99999999999999999999999",
        "/api/v1/loans/99999999999999999999999/schedule",
        "/api/v1/applications/%00",
        "/api/v1/public/applications/%00?phone=%00",
        "/api/v1/process-instances/99999999999999999999999",
    ],
)
def test_absurd_ids_in_the_path_never_fail_the_server(api, path):
    user = "analyst" if "process-instances" in path else "gm"
    response = api.get(user, path)
    assert response.status_code < 500, (path, response.status_code)
    assert_error_format(response)


def test_junk_uploads_never_fail_the_server(api):
    number = api.submit()
    api.complete("lead_hka", number, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    url = f"/api/v1/applications/{number}/attachments"
    attempts = [
        {"json": {"file": "not a file"}},
        {"data": {}, "content_type": "multipart/form-data"},
        {"data": {"file": (io.BytesIO(b""), "empty.png")}, "content_type": "multipart/form-data"},
        {"data": {"file": (io.BytesIO(b"plain text"), "notes.txt")}, "content_type": "multipart/form-data"},
        {"data": {"file": (io.BytesIO(b"\x89PNG\r\n\x1a\n"), "")}, "content_type": "multipart/form-data"},
        {"data": {"file": (io.BytesIO(b"<svg onload=alert(1)>"), "x.png")}, "content_type": "multipart/form-data"},
        {"data": "--boundary\r\nbroken", "content_type": "multipart/form-data; boundary=boundary"},
    ]
    problems = []
    for attempt in attempts:
        problems += check(api.post("officer_hka1", url, **attempt), str(attempt)[:80])
    assert not problems, "\n".join(problems)


def test_junk_deployments_never_fail_the_server(api):
    files = [
        ("loan.bpmn", b""),
        ("loan.bpmn", b"<not xml"),
        ("loan.bpmn", b"<?xml version='1.0'?><definitions/>"),
        ("rule.dmn", b"\xff\xfe\x00garbage"),
        ("rule.dmn", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><x>&a;</x>'),
        ("notes.txt", b"hello"),
        ("", b"<x/>"),
    ]
    problems = []
    for name, content in files:
        response = api.post(
            "analyst",
            "/api/v1/processes/deployments",
            data={"file": (io.BytesIO(content), name)},
            content_type="multipart/form-data",
        )
        problems += check(response, f"deploy {name!r} {content[:30]!r}")
        if response.status_code < 400:
            problems.append(f"deploy {name!r} {content[:30]!r} was accepted ({response.status_code})")
    assert not problems, "\n".join(problems)


def test_a_decision_file_with_an_xml_comment_deploys(api):
    source = (Path(__file__).resolve().parents[2] / "rules" / "loan_term.dmn").read_text(encoding="utf-8")
    commented = source.replace("&lt;= 6", "&lt;= 5").replace("&gt; 6", "&gt; 5")
    commented = commented.replace("<decisionTable", "<!-- 分析员注释 analyst's note -->\n    <decisionTable", 1)
    response = api.post(
        "analyst",
        "/api/v1/processes/deployments",
        data={"file": (io.BytesIO(commented.encode("utf-8")), "loan_term.dmn")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_data(as_text=True)[:300]


def test_an_unreachable_database_is_a_503_with_retry_after(fresh):
    from tests.conftest import make_app

    down = make_app(
        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:5499/none",
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}},
    ).test_client()
    response = down.post("/api/v1/auth/login", json={"username": "gm", "password": "demo1234"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "unavailable"


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_a_transaction_the_database_aborted_to_resolve_a_conflict_is_a_409_not_a_503(api, monkeypatch, sqlstate):
    """A deadlock or serialization failure wrote nothing and a retry may succeed: the
    database is not unavailable."""
    from sqlalchemy.exc import OperationalError

    from app.tasks import services

    class Aborted(Exception):
        pass

    aborted = Aborted("deadlock detected")
    aborted.sqlstate = sqlstate  # type: ignore[attr-defined]

    def abort(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("UPDATE human_task ...", {}, aborted)

    monkeypatch.setattr(services, "list_tasks", abort)
    response = api.get("lead_hka", "/api/v1/tasks?scope=team")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict" and "Retry-After" not in response.headers


def test_a_method_not_allowed_names_the_allowed_ones(client):
    response = client.delete("/api/v1/tasks/1")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_the_process_list_is_paginated(api):
    everything = api.get("analyst", "/api/v1/processes").get_json()
    assert everything["total"] == len(everything["items"]) >= 3
    page = api.get("analyst", "/api/v1/processes?per_page=1&page=2").get_json()
    assert page["total"] == everything["total"] and page["items"] == everything["items"][1:2]
    for bad in ("per_page=-5", "page=abc", "per_page=1.5", "page=0"):
        response = api.get("analyst", f"/api/v1/processes?{bad}")
        assert response.status_code == 422, bad
        assert set(response.get_json()["error"]["fields"]) <= {"page", "per_page"}
    largest = api.get("analyst", "/api/v1/processes?per_page=5000")  # "everything": the largest page
    assert largest.status_code == 200 and largest.get_json()["items"] == everything["items"]


def test_the_openapi_document_describes_the_error_body_the_server_sends(client):
    document = client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert schemas["Error"]["properties"] == {"error": {"$ref": "#/components/schemas/ErrorBody"}}
    assert set(schemas["ErrorBody"]["properties"]) == {"code", "message", "fields"}
    sent = client.get("/api/v1/tasks").get_json()  # a real error: no token
    assert set(sent) == {"error"} and set(sent["error"]) == set(schemas["ErrorBody"]["properties"])
    amount = schemas["ApplicationForm"]["properties"]["amount"]
    assert amount["type"] == "string" and amount["format"] == "decimal"


JSON_ENDPOINTS = [
    ("/api/v1/auth/login", None),
    ("/api/v1/public/applications", None),
    ("/api/v1/tasks/1/complete", "approver1"),
    ("/api/v1/tasks/1/assign", "lead_hka"),
    ("/api/v1/decisions/loan_amount/evaluate", "analyst"),
]


@pytest.mark.parametrize(("path", "user"), JSON_ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"username": "gm", "password": "demo1234"}', "text/plain"),
        ("username=gm&password=demo1234", "application/x-www-form-urlencoded"),
        ("[]", "application/json"),
        ('"text"', "application/json"),
        ("42", "application/json"),
        ("null", "application/json"),
    ],
)
def test_every_json_endpoint_answers_a_body_that_is_not_a_json_object_alike(api, path, user, body, content_type):
    headers = api.headers(user) if user else {}
    response = api.client.post(path, data=body, content_type=content_type, headers=headers)
    assert response.status_code == 400, (response.status_code, response.get_json())
    assert response.get_json()["error"]["code"] == "bad_request"
    assert "JSON" in response.get_json()["error"]["message"]


def test_an_attachment_upload_takes_one_file(api):
    from test_loans import png

    no = api.submit()
    files = {"file": [(io.BytesIO(png()), "a.png"), (io.BytesIO(png()), "b.png")]}
    response = api.post("lead_hka", f"/api/v1/applications/{no}/attachments", data=files)
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == ["file"]
    one = api.post("lead_hka", f"/api/v1/applications/{no}/attachments", data={"file": (io.BytesIO(png()), "a.png")})
    assert one.status_code == 201, one.get_json()


def test_every_api_operation_documents_its_success_answer(client):
    from openapi_spec_validator import validate

    document = client.get("/api/v1/openapi.json").get_json()
    validate(document)  # a valid OpenAPI 3 document, as client generators need
    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict)
        and not any(code.startswith("2") and answer.get("content") for code, answer in operation["responses"].items())
    ]
    assert missing == []


def test_an_unknown_stage_filter_is_refused_like_an_unknown_scope(api):
    response = api.get("lead_hka", "/api/v1/applications?stage=bogus")
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["stage"]
    assert api.get("lead_hka", "/api/v1/applications?stage=approval").status_code == 200


def test_a_real_application_detail_fits_its_published_schema(api):
    schemas = api.client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    no = api.submit()
    api.to_approval(no)
    detail = api.application("lead_hka", no)
    documented = schemas["ApplicationDetailDoc"]
    assert set(detail) <= set(documented["properties"]), set(detail) - set(documented["properties"])
    assert documented["additionalProperties"] is True  # answers may grow compatibly


def test_bodyless_actions_ignore_what_comes_with_them(api):
    no = api.submit()
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    headers = api.headers("lead_hka")
    claimed = api.client.post(f"/api/v1/tasks/{task['id']}/claim", data="{}", headers=headers)  # curl -d '{}'
    assert claimed.status_code == 200, claimed.get_json()
    chunked = api.client.post(
        f"/api/v1/tasks/{task['id']}/unclaim", data=b"", headers={**headers, "Transfer-Encoding": "chunked"}
    )
    assert chunked.status_code == 200, chunked.get_json()


def test_malformed_json_to_complete_is_explained(api):
    no = api.submit()
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    response = api.post(
        "lead_hka", f"/api/v1/tasks/{task['id']}/complete", data="{bad", content_type="application/json"
    )
    assert response.status_code == 400
    assert "line 1, column 2" in response.get_json()["error"]["message"]
