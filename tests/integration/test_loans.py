"""Disbursed loans and their schedules (F8), and application attachments (F4)."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
from conftest import VISITED_AT, at_once, make_app
from sqlalchemy import select

MONEY = re.compile(r"^-?\d+\.\d{2}$")


def png(padding: int = 0) -> bytes:
    """A real 1×1 PNG (optionally followed by `padding` bytes after IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return body + b"\x00" * padding


def jpeg() -> bytes:
    """A minimal JFIF header followed by an end-of-image marker."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + b"\xff\xd9"


def disbursed(api, amounts=("100000", "80000"), terms=(12, 18), **application) -> dict:  # type: ignore[no-untyped-def]
    """A centralized HK application approved by both approvers; returns its detail."""
    no = api.submit(region="HK", **application)
    api.to_approval(no)
    for approver, amount, term in zip(("approver1", "approver2"), amounts, terms, strict=True):
        assert api.approve(approver, no, "approve", amount, term).status_code == 200
    detail = api.application("lead_hka", no)
    assert detail["stage"] == "disbursement"
    assert detail["loan_id"] is not None
    return detail


def upload(api, user: str, no: str, content: bytes, name: str, client=None):  # type: ignore[no-untyped-def]
    if client is not None:  # (a thread of its own)
        return client.post(
            f"/api/v1/applications/{no}/attachments",
            data={"file": (BytesIO(content), name)},
            content_type="multipart/form-data",
            headers=api.headers(user),
        )
    return api.post(
        user,
        f"/api/v1/applications/{no}/attachments",
        data={"file": (BytesIO(content), name)},
        content_type="multipart/form-data",
    )


# --- loans -------------------------------------------------------------------------


def test_disbursed_loan_shows_its_terms_as_strings(api):
    detail = disbursed(api)
    response = api.get("lead_hka", f"/api/v1/loans/{detail['loan_id']}")
    assert response.status_code == 200, response.get_json()
    loan = response.get_json()
    for name in ("principal", "annual_rate", "method", "fee", "start_date", "apr"):
        assert isinstance(loan[name], str), name
    assert loan["principal"] == "90000.00"
    assert Decimal(loan["annual_rate"]) == Decimal("0.12")
    assert loan["method"] == "equal_installment"
    assert Decimal(loan["fee"]) == 0
    assert loan["term_months"] == 15
    date.fromisoformat(loan["start_date"])
    assert Decimal(loan["apr"]) == Decimal("12.00")


def test_schedule_repays_exactly_the_principal(api):
    detail = disbursed(api)
    response = api.get("lead_hka", f"/api/v1/loans/{detail['loan_id']}/schedule")
    assert response.status_code == 200, response.get_json()
    items = response.get_json()
    assert [i["seq"] for i in items] == list(range(1, 16))
    for item in items:
        for name in ("principal", "interest", "payment", "balance"):
            assert isinstance(item[name], str) and MONEY.match(item[name]), (item["seq"], name, item[name])
        assert Decimal(item["principal"]) + Decimal(item["interest"]) == Decimal(item["payment"])
    assert sum(Decimal(i["principal"]) for i in items) == Decimal("90000.00")
    assert items[-1]["balance"] == "0.00"
    due_dates = [date.fromisoformat(i["due_date"]) for i in items]
    assert due_dates == sorted(due_dates) and len(set(due_dates)) == 15


def test_interest_first_product_charges_a_fee_and_shows_a_higher_apr(api):
    detail = disbursed(api, amounts=("100000", "100000"), terms=(12, 12), product_code="BIZ-IF")
    assert detail["product_code"] == "BIZ-IF"
    loan = api.get("lead_hka", f"/api/v1/loans/{detail['loan_id']}").get_json()
    assert loan["method"] == "interest_first"
    assert Decimal(loan["fee"]) == Decimal("1000.00")
    assert Decimal(loan["apr"]) > Decimal("14.4")
    items = api.get("lead_hka", f"/api/v1/loans/{detail['loan_id']}/schedule").get_json()
    assert [i["principal"] for i in items] == ["0.00"] * 11 + ["100000.00"]
    assert {i["interest"] for i in items} == {"1200.00"}


def _fee_rate(app, code: str, rate: str) -> None:  # type: ignore[no-untyped-def]
    from app.extensions import db
    from app.models import LoanProduct

    with app.app_context():
        db.session.scalar(select(LoanProduct).where(LoanProduct.code == code)).fee_rate = Decimal(rate)
        db.session.commit()


def test_the_upfront_fee_is_rounded_half_up_to_the_fen(fresh, api):
    """rules.md: amounts are rounded to the fen half-up; 1.5 % of 1,019 is 15.285 → 15.29
    (half-to-even would give 15.28)."""
    from test_lifecycle import supervisor_decides

    _fee_rate(fresh, "BIZ-IF", "0.015")
    no = api.submit(region="HK", product_code="BIZ-IF")
    api.to_approval(no)
    assert api.approve("approver1", no, "approve", "1100", 2).status_code == 200
    assert api.approve("approver2", no, "reject", "1100", 2).status_code == 200
    decided = supervisor_decides(api, no, {"decision": "approve", "amount": "1019", "term_months": 2})
    assert decided.status_code == 200, decided.get_json()
    loan = api.get("lead_hka", f"/api/v1/loans/{api.application('lead_hka', no)['loan_id']}").get_json()
    assert (loan["principal"], loan["fee"]) == ("1019.00", "15.29")


@pytest.mark.parametrize("mode", ["supervisor", "committee"])
def test_an_amount_a_person_decides_is_rounded_down_to_whole_yuan(api, mode):
    """rules.md: the final amount is rounded down to whole yuan — the supervisor's and the
    committee's too, not only the rules' (the loan is for 77,777, not 77,777.77)."""
    from test_lifecycle import committee_decides, supervisor_decides, supervisor_task

    form = {"decision": "approve", "amount": "77777.77", "term_months": 12}
    if mode == "supervisor":
        no = api.submit(region="HK")
        api.to_approval(no)
        assert api.approve("approver1", no, "approve", "80000", 12).status_code == 200
        assert api.approve("approver2", no, "reject", "80000", 12).status_code == 200
        described = {f["name"]: f for f in supervisor_task(api, no)["form"]["fields"]}
        assert described["amount"]["whole_yuan"] is True  # the form says so before anyone types
        decided = supervisor_decides(api, no, form)
    else:
        no, decided = committee_decides(api, form)
    assert decided.status_code == 200, decided.get_json()
    detail = api.application("gm", no)
    assert (detail["decision"]["final_amount"], detail["decision"]["final_term"]) == ("77777.00", 12)
    loan = api.get("gm", f"/api/v1/loans/{detail['loan_id']}").get_json()
    assert loan["principal"] == "77777.00"
    if mode == "committee":  # the recorded decision shows money as api.md does
        assert detail["committee"]["decision"]["amount"] == "77777.00"


def test_officer_of_another_team_cannot_see_the_loan(api):
    detail = disbursed(api)
    assert api.get("officer_sya1", f"/api/v1/loans/{detail['loan_id']}").status_code == 404
    assert api.get("officer_sya1", f"/api/v1/loans/{detail['loan_id']}/schedule").status_code == 404
    assert api.get("officer_hka1", f"/api/v1/loans/{detail['loan_id']}").status_code == 200


# --- attachments ----------------------------------------------------------------------


def assigned(api) -> str:  # type: ignore[no-untyped-def]
    no = api.submit(region="HK")
    response = api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    assert response.status_code == 200, response.get_json()
    return no


def test_officer_uploads_a_photo_and_gets_its_digest(api):
    no = assigned(api)
    content = png()
    response = upload(api, "officer_hka1", no, content, "门店.png")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert isinstance(body["id"], int)
    assert (body["sha256"], body["content_type"], body["size"]) == (
        hashlib.sha256(content).hexdigest(),
        "image/png",
        len(content),
    )


def test_jpeg_is_recognised_from_its_content(api):
    no = assigned(api)
    response = upload(api, "officer_hka1", no, jpeg(), "photo.bin")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["content_type"] == "image/jpeg"


def test_text_renamed_to_jpg_is_refused(api):
    no = assigned(api)
    response = upload(api, "officer_hka1", no, b"just some text, not a photo\n" * 10, "photo.jpg")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"
    assert "application/octet-stream" in response.get_json()["error"]["fields"]["file"][0]  # what the content is


def test_too_large_upload_is_refused(fresh, api):
    no = assigned(api)
    small = make_app(YDX_UPLOAD_MAX_BYTES=1024)
    response = small.test_client().post(
        f"/api/v1/applications/{no}/attachments",
        data={"file": (BytesIO(png(padding=4096)), "big.png")},
        content_type="multipart/form-data",
        headers=api.headers("officer_hka1"),
    )
    assert response.status_code == 413
    assert api.application("lead_hka", no)["attachments"] == []


def test_uploaded_attachment_downloads_byte_for_byte(api):
    no = assigned(api)
    content = png()
    attachment = upload(api, "officer_hka1", no, content, "门店.png").get_json()
    response = api.get("lead_hka", f"/api/v1/applications/{no}/attachments/{attachment['id']}", buffered=True)
    assert response.status_code == 200
    assert response.content_type.startswith("image/png")
    assert response.data == content
    # an identity photo is neither cached nor sniffed as another type
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_same_photo_uploaded_from_many_phones_at_once_is_stored_whole_for_each(api):
    """Uploads are stored by content: writers of the same bytes at the same moment each
    had the one temporary name, and the second rename found it gone (a 500)."""
    no = assigned(api)
    content = png(padding=200_000)
    statuses: list[int] = []
    clients = [api.client.application.test_client() for _ in range(12)]
    at_once(
        *(
            lambda client=client: statuses.append(
                upload(api, "officer_hka1", no, content, "同一张.png", client=client).status_code
            )
            for client in clients
        )
    )
    assert statuses == [201] * 12
    attachments = api.application("lead_hka", no)["attachments"]
    assert len(attachments) == 12
    download = api.get("lead_hka", f"/api/v1/applications/{no}/attachments/{attachments[0]['id']}", buffered=True)
    assert download.data == content


def test_bytes_written_by_many_writers_at_once_are_whole_and_leave_no_temporary_file(tmp_path):
    from app.loans.services import _store_bytes

    content = b"%PDF-1.4\n" + bytes(range(256)) * 4096
    path = tmp_path / "ab" / "abcdef"
    failures: list[OSError] = []

    def write() -> None:
        try:
            _store_bytes(path, content)
        except OSError as exc:  # pragma: no cover - the failure this guards against
            failures.append(exc)

    at_once(*[write] * 16)
    assert failures == []
    assert path.read_bytes() == content
    assert [p.name for p in path.parent.iterdir()] == ["abcdef"]


def test_a_decided_application_takes_no_more_attachments(api):
    from tests.integration.test_lifecycle import centralized

    no = centralized(api, ("approve", "100000", 12), ("approve", "95000", 12))
    response = upload(api, "officer_hka1", no, png(), "late.png")
    assert response.status_code == 409
    assert "already decided" in response.get_json()["error"]["message"]
    assert api.application("lead_hka", no)["attachments"] == []


def test_attachment_is_not_found_under_another_application(api):
    no, other = assigned(api), api.submit(region="HK")
    attachment = upload(api, "officer_hka1", no, png(), "a.png").get_json()
    assert api.get("lead_hka", f"/api/v1/applications/{other}/attachments/{attachment['id']}").status_code == 404


def test_materials_may_only_reference_attachments_of_the_same_application(api):
    no, other = assigned(api), api.submit(region="HK")
    foreign = upload(api, "lead_hka", other, png(), "other.png").get_json()["id"]
    own = upload(api, "officer_hka1", no, png(padding=1), "own.png").get_json()["id"]
    visit = {"visited_at": VISITED_AT, "notes": ""}
    assert api.complete("officer_hka1", no, "onsite_visit", visit).status_code == 200

    refused = api.complete(
        "officer_hka1", no, "collect_materials", {"customer": {}, "attachments": [own, foreign], "notes": ""}
    )
    assert refused.status_code == 422
    assert "attachments" in refused.get_json()["error"]["fields"]

    accepted = api.complete(
        "officer_hka1", no, "collect_materials", {"customer": {}, "attachments": [own], "notes": ""}
    )
    assert accepted.status_code == 200, accepted.get_json()


def test_the_application_detail_lists_attachments_history_and_answers_in_order(api):
    no = assigned(api)
    first = upload(api, "officer_hka1", no, png(), "门店.png").get_json()
    second = upload(api, "officer_hka1", no, jpeg(), "执照.jpg").get_json()
    api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_AT})
    form = {"customer": {}, "attachments": [first["id"], second["id"]], "notes": ""}
    assert api.complete("officer_hka1", no, "collect_materials", form).status_code == 200
    answer = {"decision": "approve", "amount": "90000", "term_months": 12, "comment": "ok"}
    assert api.complete("approver2", no, "approve", answer).status_code == 200
    detail = api.application("gm", no)
    assert [(a["id"], a["sha256"], a["content_type"], a["size"], a["filename"]) for a in detail["attachments"]] == [
        (first["id"], first["sha256"], "image/png", first["size"], "门店.png"),
        (second["id"], second["sha256"], "image/jpeg", second["size"], "执照.jpg"),
    ]
    assert [h["stage"] for h in detail["history"]] == ["pending_assignment", "onsite_visit", "collecting", "approval"]
    assert detail["history"][1]["actor_id"] == api.user_id("lead_hka") and detail["history"][1]["at"]
    assert [(a["approver_id"], a["decision"], a["amount"]) for a in detail["approvals"]] == [
        (api.user_id("approver2"), "approve", "90000.00")
    ]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("\u202egpj.exe", "gpj.exe"), ("../../etc/id.png", "id.png"), ("扫描/营业执照.png", "营业执照.png")],
)
def test_an_attachment_keeps_a_readable_name_of_its_own(api, sent, kept):
    """No directories, no control or formatting characters (a right-to-left override
    before "gpj.exe" made it display as "exe.jpg")."""
    no = assigned(api)
    response = upload(api, "officer_hka1", no, png(), sent)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["filename"] == kept
