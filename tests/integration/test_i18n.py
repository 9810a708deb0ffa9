"""User-facing messages are Chinese by default, English on request."""

import io
import json
import re

import pytest


def test_errors_are_chinese_by_default(client):
    body = client.post("/api/v1/auth/login", json={"username": "gm", "password": "nope"}).get_json()
    assert body["error"]["message"] == "用户名或密码错误"


def test_errors_are_english_when_asked(client):
    body = client.post(
        "/api/v1/auth/login", json={"username": "gm", "password": "nope"}, headers={"Accept-Language": "en"}
    ).get_json()
    assert body["error"]["message"] == "Wrong username or password"


CHINESE = re.compile("[\u3400-\u9fff]")
EN = {"Accept-Language": "en"}


def _no_chinese(value) -> bool:  # type: ignore[no-untyped-def]
    return not CHINESE.search(json.dumps(value, ensure_ascii=False))


def test_field_messages_and_malformed_bodies_are_english_only_when_asked(client):
    from tests.conftest import application_body

    invalid = client.post("/api/v1/public/applications", json=application_body(term_months="x"), headers=EN)
    assert invalid.status_code == 422
    assert invalid.get_json()["error"]["fields"]["term_months"] == ["not a valid integer"]
    malformed = client.post("/api/v1/auth/login", data='{"username": ', content_type="application/json", headers=EN)
    assert malformed.status_code == 400
    assert _no_chinese(malformed.get_json()) and "line 1" in malformed.get_json()["error"]["message"]
    chinese = client.post("/api/v1/public/applications", json=application_body(term_months="x"))
    assert chinese.get_json()["error"]["fields"]["term_months"] == ["须为整数 (not a valid integer)"]


def test_deployment_refusals_and_upload_errors_are_english_only_when_asked(api):
    headers = {**api.headers("analyst"), **EN}
    empty = api.client.post("/api/v1/processes/deployments", headers=headers)
    assert empty.status_code == 422 and _no_chinese(empty.get_json()), empty.get_json()
    upload = {"file": (io.BytesIO(b"<x/>"), "broken.txt")}
    refused = api.client.post("/api/v1/processes/deployments", data=upload, headers=headers)
    assert refused.status_code == 422 and _no_chinese(refused.get_json()), refused.get_json()
    assert "broken.txt" in json.dumps(refused.get_json())
    no = api.submit()
    officer = {**api.headers("lead_hka"), **EN}
    missing = api.client.post(f"/api/v1/applications/{no}/attachments", data={}, headers=officer)
    assert missing.status_code == 422 and _no_chinese(missing.get_json()), missing.get_json()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"username": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
        (b'{"username": "gm", "n": ' + b"9" * 5000 + b"}", "a number has too many digits"),
        (b'\xef\xbb\xbf{"username": "gm"}', "byte order mark"),
        (b'{"username": "gm",}', "line 1, column 19"),
    ],
)
def test_a_malformed_body_is_explained_without_the_interpreters_words(client, body, reason):
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert reason in message
    for internal in ("sys.", "recursion", "set_int_max_str_digits", "utf-8-sig", "char "):
        assert internal not in message


@pytest.mark.parametrize("body", [b'{"username": "gm\\u0000"}', b'{"username": "\\ud800"}'])
def test_unstorable_characters_are_explained_plainly_in_english(client, body):
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json", headers=EN)
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert message.startswith("malformed JSON body: ") and message.count("(") == message.count(")")
    assert _no_chinese(response.get_json())


def test_a_refused_deployment_keeps_a_chinese_file_name_in_english(api):
    headers = {**api.headers("analyst"), **EN}
    upload = {"file": (io.BytesIO(b"<broken"), "贷款流程.bpmn")}
    refused = api.client.post("/api/v1/processes/deployments", data=upload, headers=headers)
    assert refused.status_code == 422
    message = refused.get_json()["error"]["message"]
    assert "贷款流程.bpmn" in message and message.startswith("deployment of")


def test_task_titles_and_the_credit_report_message_follow_the_reader_s_language(api):
    """Titles are the diagram's (Chinese) names; an English reader gets the catalog's
    English, and the credit lookup's stored message its English part alone."""
    no = api.submit()
    api.to_approval(no)
    task = api.task("approver1", no, "approve")
    assert task["title"] == "审批"
    english = {**api.headers("approver1"), **EN}
    listed = api.client.get(f"/api/v1/tasks?scope=mine&application_no={no}", headers=english).get_json()
    assert [t["title"] for t in listed["items"]] == ["Approve"]
    shown = api.client.get(f"/api/v1/tasks/{task['id']}", headers=english).get_json()
    assert shown["title"] == "Approve"
    report = shown["data"]["credit_report"]
    assert report["status"] == "unavailable" and _no_chinese(report["message"]), report
    detail = api.client.get(f"/api/v1/applications/{no}", headers={**api.headers("gm"), **EN}).get_json()
    assert _no_chinese(detail["credit_report"]["message"])
    assert CHINESE.search(api.application("gm", no)["credit_report"]["message"])  # zh-CN: Chinese first


@pytest.mark.parametrize(
    ("accept", "english"),
    [
        ("en-US,zh-CN;q=0.9", True),  # English preferred, though Chinese is an exact match
        ("en-GB", True),
        ("fr, en;q=0.5", True),
        ("zh-CN,en;q=0.8", False),
        ("zh-TW", False),
        ("fr", False),
        ("*", False),
        ("en;q=0, zh-CN;q=0.5", False),  # q=0: not acceptable at all
    ],
)
def test_the_most_preferred_known_language_wins(client, accept, english):
    body = client.post(
        "/api/v1/auth/login", json={"username": "gm", "password": "nope"}, headers={"Accept-Language": accept}
    ).get_json()
    assert body["error"]["message"] == ("Wrong username or password" if english else "用户名或密码错误")


def test_a_bad_idempotency_key_is_named_in_english_too(client):
    from tests.conftest import application_body

    response = client.post(
        "/api/v1/public/applications", json=application_body(), headers={**EN, "Idempotency-Key": "bad key!"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("Idempotency-Key must be")
