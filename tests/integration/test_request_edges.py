"""Requests a fuzzer sends and a careless client might: a multipart part without a name,
repeated JSON keys and query parameters, bodies without Content-Length beyond the caps,
a 401 without its scheme. Each answers a 4xx that says what is wrong, never a 5xx."""

from __future__ import annotations

import io
import json

import pytest

from tests.conftest import application_body

NAMELESS_PART = b"--XX\r\nContent-Disposition: form-data\r\n\r\nhello\r\n--XX--\r\n"
MULTIPART_XX = "multipart/form-data; boundary=XX"


@pytest.mark.parametrize(
    ("user", "path", "status"),
    [
        (None, "/api/v1/auth/login", 400),  # a login body must be JSON
        (None, "/api/v1/public/applications", 400),
        ("analyst", "/api/v1/processes/deployments", 422),  # no `file` among the parts
        (None, "/api/v1/health", 405),
    ],
)
def test_a_multipart_part_without_a_name_is_a_client_error(api, user, path, status):
    headers = api.headers(user) if user else {}
    response = api.client.post(path, data=NAMELESS_PART, content_type=MULTIPART_XX, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"]


def test_a_console_form_with_a_nameless_part_is_not_a_server_error(client):
    response = client.post("/login", data=NAMELESS_PART, content_type=MULTIPART_XX)
    assert response.status_code < 500


def test_a_repeated_json_key_is_refused_and_named(api):
    body = json.dumps(application_body())[:-1] + ', "amount": "70000"}'
    before = api.get("gm", "/api/v1/applications").get_json()["total"]
    response = api.client.post("/api/v1/public/applications", data=body, content_type="application/json")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["fields"] == {"amount": ["同一字段只能出现一次 (given more than once)"]}
    assert api.get("gm", "/api/v1/applications").get_json()["total"] == before


def test_a_repeated_key_in_a_task_form_leaves_the_task_open(api):
    no = api.submit()
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    officer = api.user_id("officer_hka1")
    body = f'{{"officer_id": {officer}, "officer_id": 999}}'
    response = api.post("lead_hka", f"/api/v1/tasks/{task['id']}/complete", data=body, content_type="application/json")
    assert response.status_code == 400
    assert set(response.get_json()["error"]["fields"]) == {"officer_id"}
    assert api.get("lead_hka", f"/api/v1/tasks/{task['id']}").get_json()["status"] == "open"


def test_a_repeated_key_inside_a_nested_object_is_refused_without_blaming_a_field(api):
    body = '{"amounts": ["100000", "80000"], "x": {"amounts": 1, "amounts": 2}}'
    response = api.post("analyst", "/api/v1/decisions/loan_amount/evaluate", data=body, content_type="application/json")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["fields"] == {}  # the top-level `amounts` is fine; the repeat is nested
    assert 'the key "amounts" is given more than once in a nested object' in error["message"]


def test_a_repeated_key_that_cannot_be_stored_is_not_echoed(api):
    body = '{"amounts": ["1"], "\\u0000": 1, "\\u0000": 2}'
    response = api.post("analyst", "/api/v1/decisions/loan_amount/evaluate", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {}
    assert "NUL" in response.get_json()["error"]["message"]


def test_a_repeated_query_parameter_is_a_400_naming_it(api):
    response = api.get("lead_hka", "/api/v1/tasks?per_page=1&per_page=500&scope=team")
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"per_page": ["同一字段只能出现一次 (given more than once)"]}
    assert api.get("lead_hka", "/api/v1/tasks?per_page=1&scope=team").status_code == 200


def test_an_unknown_path_is_a_404_whatever_its_query(api):
    assert api.get("lead_hka", "/api/v1/nope?a=1&a=2").status_code == 404


def test_a_repeated_phone_in_the_status_lookup_is_refused(api):
    no = api.submit()
    response = api.client.get(f"/api/v1/public/applications/{no}?phone=13800138000&phone=13900139000")
    assert response.status_code == 400
    assert set(response.get_json()["error"]["fields"]) == {"phone"}


def _chunked_post(client, path: str, body: bytes, content_type: str, headers=None):  # type: ignore[no-untyped-def]
    """A body without Content-Length, as a chunked request reaches the application."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        content_type=content_type,
        headers={**(headers or {}), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_json_body_over_the_json_limit_is_a_413(client):
    body = b'{"username": "' + b"a" * (2 * 1024 * 1024) + b'", "password": "x"}'
    response = _chunked_post(client, "/api/v1/auth/login", body, "application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


def test_a_small_chunked_json_body_is_read(client):
    body = json.dumps({"username": "lead_hka", "password": "demo1234"}).encode()
    response = _chunked_post(client, "/api/v1/auth/login", body, "application/json")
    assert response.status_code == 200, response.get_json()


def test_a_chunked_json_body_exactly_at_the_request_cap_is_read(client, app):
    app.config["MAX_CONTENT_LENGTH"], cap = 4096, app.config["MAX_CONTENT_LENGTH"]
    try:
        exact = b'{"username": "lead_hka", "password": "demo1234", "x": "'
        exact += b"a" * (4096 - len(exact) - 2) + b'"}'
        assert len(exact) == 4096
        response = _chunked_post(client, "/api/v1/auth/login", exact, "application/json")
        assert response.status_code == 422, response.get_json()  # read whole: "x" is an unknown field
        assert set(response.get_json()["error"]["fields"]) == {"x"}
        over = _chunked_post(client, "/api/v1/auth/login", exact[:-2] + b'a"}', "application/json")
        assert over.status_code == 413
    finally:
        app.config["MAX_CONTENT_LENGTH"] = cap


def test_a_chunked_upload_beyond_the_request_cap_is_a_413_not_a_missing_file(api, app):
    no = api.submit()
    cap = app.config["MAX_CONTENT_LENGTH"]
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0" + b"\0" * (cap + 1024) + b"\r\n--XX--\r\n"
    )
    response = _chunked_post(
        api.client, f"/api/v1/applications/{no}/attachments", body, MULTIPART_XX, api.headers("officer_hka1")
    )
    assert response.status_code == 413, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/v1/tasks", None), ("/api/v1/auth/login", {"username": "lead_hka", "password": "wrong-one"})],
)
def test_a_401_names_the_bearer_scheme(client, path, body):
    response = client.post(path, json=body) if body else client.get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_absurd_term_is_refused_by_the_evaluation(api):
    response = api.post("analyst", "/api/v1/decisions/loan_term/evaluate", json={"terms": [12, 9223372036854775808]})
    assert response.status_code == 422
    assert "terms" in response.get_json()["error"]["fields"]
    assert api.post("analyst", "/api/v1/decisions/loan_term/evaluate", json={"terms": [12, 600]}).status_code == 200


class _Sqlstate(Exception):
    sqlstate = "23505"  # as psycopg's UniqueViolation carries it


@pytest.mark.parametrize("orig", [_Sqlstate("duplicate key value"), Exception("UNIQUE constraint failed: x.y")])
def test_an_unforeseen_uniqueness_race_is_a_409_and_writes_nothing(fresh, orig):
    """The database refusing a duplicate that two requests raced to write is the client's
    conflict to retry, not a server failure."""
    from sqlalchemy.exc import IntegrityError

    from app.extensions import db
    from app.models import AuditLog

    with fresh.test_request_context("/api/v1/anything", method="POST"):
        before = db.session.query(AuditLog).count()
        db.session.add(AuditLog(action="race.test", outcome="ok"))
        db.session.flush()
        response = fresh.make_response(fresh.handle_user_exception(IntegrityError("INSERT …", {}, orig)))
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "conflict"
        assert db.session.query(AuditLog).count() == before  # rolled back


def test_any_other_integrity_failure_stays_a_500_for_the_monitoring(fresh):
    """A NOT NULL or reference failure is a bug: retrying would not help."""
    from sqlalchemy.exc import IntegrityError

    with fresh.test_request_context("/api/v1/anything", method="POST"):
        orig = Exception("NOT NULL constraint failed: audit_log.action")
        response = fresh.make_response(fresh.handle_user_exception(IntegrityError("INSERT …", {}, orig)))
        assert response.status_code == 500


def test_empty_query_parameters_mean_the_defaults(api):
    plain = api.get("lead_hka", "/api/v1/tasks").get_json()
    empty = api.get("lead_hka", "/api/v1/tasks?scope=&status=&page=&per_page=")
    assert empty.status_code == 200, empty.get_json()
    assert empty.get_json() == plain
    no = api.submit()
    assert api.get("gm", f"/api/v1/applications/{no}?full=").get_json()["customer"]["masked"] is True
