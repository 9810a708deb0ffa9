"""Every sensitive action leaves an audit row (F21): who, what, on which object, from where,
and whether it was allowed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog
from tests.conftest import application_body

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}


def audit_rows(app, action: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The audit rows of one action, oldest first, as plain dicts."""
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()
        result = [
            {
                "actor_id": r.actor_id,
                "object_type": r.object_type,
                "object_id": r.object_id,
                "outcome": r.outcome,
                "ip": r.ip,
                "at": r.at,
                "before": r.before,
                "after": r.after,
                "detail": r.detail,
            }
            for r in rows
        ]
        db.session.remove()
    return result


def png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_a_successful_login_is_audited(api, fresh):
    user_id = api.user_id("lead_hka")
    [row] = audit_rows(fresh, "auth.login")
    assert (row["actor_id"], row["object_id"], row["outcome"]) == (user_id, str(user_id), "ok")
    assert row["ip"] == "127.0.0.1"
    assert row["at"].tzinfo is not None


@pytest.mark.parametrize("username", ["lead_hka", "nobody_here"])
def test_a_failed_login_is_audited_as_refused(client, fresh, username):
    client.post("/api/v1/auth/login", json={"username": username, "password": "wrong-password"})
    [row] = audit_rows(fresh, "auth.login")
    assert row["outcome"] == "refused"
    assert row["object_id"] == username


def test_a_throttled_login_is_audited_as_refused(client, fresh):
    for _ in range(6):
        client.post("/api/v1/auth/login", json={"username": "lead_hka", "password": "wrong-password"})
    rows = audit_rows(fresh, "auth.login")
    assert len(rows) == 6
    assert {r["outcome"] for r in rows} == {"refused"}


def test_logout_is_audited(api, fresh):
    api.post("officer_hka1", "/api/v1/auth/logout")
    [row] = audit_rows(fresh, "auth.logout")
    assert (row["actor_id"], row["outcome"]) == (api.user_id("officer_hka1"), "ok")


def test_a_password_change_is_audited(api, fresh):
    response = api.post(
        "officer_hka1", "/api/v1/auth/password", json={"current_password": "demo1234", "new_password": "a-new-secret-9"}
    )
    assert response.status_code == 200
    [row] = audit_rows(fresh, "auth.password_change")
    assert row["actor_id"] == api.user_id("officer_hka1")


def test_an_application_submission_is_audited_with_its_consents(api, fresh):
    number = api.submit(channel="qrcode")
    [row] = audit_rows(fresh, "application.submit")
    assert (row["object_type"], row["object_id"], row["outcome"]) == ("application", number, "ok")
    assert row["after"]["channel"] == "qrcode"
    assert row["after"]["consent_text_version"] == fresh.config["YDX_CONSENT_TEXT_VERSION"]
    assert row["after"]["credit_auth_text_version"] == fresh.config["YDX_CREDIT_AUTH_TEXT_VERSION"]


def test_a_refused_submission_leaves_no_submission_row(client, fresh):
    client.post("/api/v1/public/applications", json=application_body(amount="0"))
    assert audit_rows(fresh, "application.submit") == []


def test_a_task_completion_is_audited(api, fresh):
    number = api.submit()
    task = api.task("lead_hka", number, "assign_officer", "candidate")
    officer = api.user_id("officer_hka1")
    assert api.post("lead_hka", f"/api/v1/tasks/{task['id']}/complete", json={"officer_id": officer}).status_code == 200
    [row] = audit_rows(fresh, "task.complete")
    assert (row["actor_id"], row["object_id"]) == (api.user_id("lead_hka"), str(task["id"]))
    assert row["after"]["task_key"] == "assign_officer"
    assert row["after"]["officer_id"] == officer


def test_a_task_assignment_is_audited_with_before_and_after(api, fresh):
    number = api.submit()
    api.complete("lead_hka", number, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    visit = api.task("officer_hka1", number, "onsite_visit")
    other = api.user_id("officer_hka2")
    response = api.post("lead_hka", f"/api/v1/tasks/{visit['id']}/assign", json={"user_id": other})
    assert response.status_code == 200, response.get_json()
    [row] = audit_rows(fresh, "task.assign")
    assert (row["actor_id"], row["object_id"]) == (api.user_id("lead_hka"), str(visit["id"]))
    assert row["before"] == {"assignee_id": api.user_id("officer_hka1")}
    assert row["after"] == {"assignee_id": other}


def test_an_attachment_upload_is_audited(api, fresh):
    number = api.submit()
    api.complete("lead_hka", number, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    response = api.post(
        "officer_hka1",
        f"/api/v1/applications/{number}/attachments",
        data={"file": (io.BytesIO(png()), "id-card.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    [row] = audit_rows(fresh, "attachment.upload")
    assert (row["actor_id"], row["object_id"]) == (api.user_id("officer_hka1"), str(response.get_json()["id"]))
    assert row["after"]["sha256"] == response.get_json()["sha256"]


def test_a_process_deployment_is_audited(api, fresh):
    source = (ROOT / "rules" / "loan_term.dmn").read_text(encoding="utf-8")
    changed = source.replace("&lt;= 6", "&lt;= 5").replace("&gt; 6", "&gt; 5")
    assert changed != source
    response = api.post(
        "analyst",
        "/api/v1/processes/deployments",
        data={"file": (io.BytesIO(changed.encode("utf-8")), "loan_term.dmn")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    [row] = audit_rows(fresh, "process.deploy")
    assert row["actor_id"] == api.user_id("analyst")
    assert any(item.startswith("loan_term:") for item in row["after"]["created"])


@pytest.fixture
def approval_task(api) -> dict[str, Any]:
    """An HK application waiting for approver1."""
    number = api.submit()
    api.to_approval(number)
    return api.task("approver1", number, "approve")


def approve_from(api, task: dict[str, Any], **extra: Any):  # type: ignore[no-untyped-def]
    return api.client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"decision": "approve", "amount": "100000", "term_months": 12, "comment": ""},
        headers={**api.headers("approver1"), **extra.pop("headers", {})},
        **extra,
    )


def test_an_approval_from_outside_the_internal_network_is_refused_and_audited(api, fresh, approval_task):
    response = approve_from(api, approval_task, environ_base=OUTSIDE)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"]
    refused = [r for r in audit_rows(fresh, "task.complete") if r["outcome"] == "refused"]
    assert len(refused) == 1
    assert (refused[0]["actor_id"], refused[0]["object_id"], refused[0]["ip"]) == (
        api.user_id("approver1"),
        str(approval_task["id"]),
        "203.0.113.9",
    )
    assert api.task("approver1", approval_task["application_no"], "approve")["id"] == approval_task["id"]


def test_a_forged_forwarded_for_header_does_not_make_an_outside_approval_internal(api, fresh, approval_task):
    response = approve_from(api, approval_task, environ_base=OUTSIDE, headers={"X-Forwarded-For": "10.0.0.5"})
    assert response.status_code == 403
    assert [r["ip"] for r in audit_rows(fresh, "task.complete") if r["outcome"] == "refused"] == ["203.0.113.9"]


def test_the_same_approval_from_inside_is_accepted(api, approval_task):
    response = approve_from(api, approval_task, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert response.status_code == 200, response.get_json()


def test_the_general_manager_viewing_a_customer_unmasked_is_audited(api, fresh):
    api.submit()
    customer = api.get("gm", "/api/v1/customers").get_json()["items"][0]
    assert customer["masked"] is True  # masked by default, for the general manager too
    assert audit_rows(fresh, "customer.view_full") == []
    assert api.get("gm", f"/api/v1/customers/{customer['id']}?full=true").get_json()["masked"] is False
    rows = audit_rows(fresh, "customer.view_full")
    assert len(rows) == 1
    assert (rows[-1]["actor_id"], rows[-1]["object_id"]) == (api.user_id("gm"), str(customer["id"]))


def test_asking_for_full_values_without_the_grant_is_refused_and_audited(api, fresh):
    api.submit()
    customer = api.get("lead_hka", "/api/v1/customers").get_json()["items"][0]
    assert api.get("lead_hka", f"/api/v1/customers/{customer['id']}?full=true").status_code == 403
    rows = audit_rows(fresh, "customer.view_full")
    assert [(r["actor_id"], r["outcome"]) for r in rows] == [(api.user_id("lead_hka"), "refused")]


def test_masked_views_are_not_logged_as_full_views(api, fresh):
    api.submit()
    customer_id = api.get("lead_hka", "/api/v1/customers").get_json()["items"][0]["id"]
    api.get("lead_hka", f"/api/v1/customers/{customer_id}")
    assert audit_rows(fresh, "customer.view_full") == []


def test_what_a_trusted_proxy_forwards_is_kept_only_if_it_is_an_address(fresh):
    """A forwarded value that is no address (a miscounted proxy chain, junk) was stored
    whole — and on PostgreSQL a value over 64 characters made every audited request a 500.
    It is kept as "invalid" now and never counts as internal; an address with the port a
    proxy appended is the address."""
    from tests.conftest import make_app

    client = make_app(YDX_TRUSTED_PROXIES=1).test_client()
    login = {"username": "lead_hka", "password": "demo1234"}
    for forwarded, kept in (
        ("a" * 100, "invalid"),
        ("10.8.0.2:5555", "10.8.0.2"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("2001:DB8:0::7", "2001:db8::7"),  # one client, one text: one rate-limit bucket
        ("::ffff:10.8.0.3", "10.8.0.3"),
    ):
        response = client.post("/api/v1/auth/login", json=login, headers={"X-Forwarded-For": forwarded})
        assert response.status_code == 200, response.get_json()
        assert audit_rows(fresh, "auth.login")[-1]["ip"] == kept
