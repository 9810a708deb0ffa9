"""What staff enter and see along the lifecycle, beyond the happy path: the visit time, the
customer details registered on site, what the supervisor may change, money as decimal
strings, the applicant's own contact details, and materials after the decision."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from io import BytesIO

import pytest
from conftest import VISITED_AT, application_body, at_once, resident_id
from test_lifecycle import centralized, supervisor_decides, supervisor_task
from test_loans import png

BEIJING = timezone(timedelta(hours=8))


def _assigned(api, **overrides) -> str:  # type: ignore[no-untyped-def]
    no = api.submit(**overrides)
    response = api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    assert response.status_code == 200, response.get_json()
    return no


def test_a_visit_time_must_be_a_past_date_and_time(api):
    no = _assigned(api)
    future = (datetime.now(BEIJING) + timedelta(days=3)).isoformat()
    for bad in (future, "1900-01-01T10:00:00+08:00", "2026-11-26", 20261126, ""):
        response = api.complete("officer_hka1", no, "onsite_visit", {"visited_at": bad, "notes": ""})
        assert response.status_code == 422, bad
        assert "visited_at" in response.get_json()["error"]["fields"], bad
    assert api.application("lead_hka", no)["stage"] == "onsite_visit"

    soon = (datetime.now(BEIJING) + timedelta(minutes=5)).isoformat()  # a fast clock is tolerated
    response = api.complete("officer_hka1", no, "onsite_visit", {"visited_at": soon, "notes": "已上门"})
    assert response.status_code == 200, response.get_json()


def _visited_with_photo(api, visit_notes: str, filename: str):  # type: ignore[no-untyped-def]
    """An application whose visit is done and which has one photo: (no, upload answer)."""
    no = _assigned(api)
    api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_AT, "notes": visit_notes})
    upload = api.post(
        "officer_hka1",
        f"/api/v1/applications/{no}/attachments",
        data={"file": (BytesIO(png()), filename)},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 201, upload.get_json()
    return no, upload


def test_the_visit_and_the_collected_details_are_shown_with_the_application(api):
    no, upload = _visited_with_photo(api, "店铺经营正常", "license.png")
    form = {"customer": {"address": "海口市龙华区", "monthly_income": 20000}, "attachments": [upload.get_json()["id"]]}
    response = api.complete("officer_hka1", no, "collect_materials", {**form, "notes": "营业执照已拍照"})
    assert response.status_code == 200, response.get_json()

    detail = api.application("approver1", no)
    assert detail["visit"]["notes"] == "店铺经营正常"
    assert datetime.fromisoformat(detail["visit"]["visited_at"]) == datetime.fromisoformat(VISITED_AT)
    assert detail["materials"] == {**form, "notes": "营业执照已拍照"}
    task = api.task("approver1", no, "approve")
    shown = api.get("approver1", f"/api/v1/tasks/{task['id']}").get_json()
    assert shown["data"]["application"]["visit"]["notes"] == "店铺经营正常"


def test_customer_details_registered_on_site_keep_their_formats(api):
    own_id = resident_id("46010019800101121")  # ends in X: sent in lower case below
    no = _assigned(api, id_number=own_id)
    api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_AT, "notes": ""})
    cases = [
        ({"phone": "1"}, "phone"),
        ({"id_number": "x"}, "id_number"),
        ({"name": "  "}, "name"),
        ({"name": "王5"}, "name"),  # as on the public form: no digits
        ({"id_number": resident_id("46010020150101123")}, "id_number"),  # a child: not a borrower
        ({"address": {"city": "海口"}}, "address"),
        ({"note": "长" * 501}, "note"),
        ({"income": 10**40}, "income"),  # would come back as 1e+40: beyond what JSON readers keep exact
        # another adult's valid ID: the central customer record is keyed by the applicant's
        ({"id_number": resident_id("46010019800101124")}, "id_number"),
    ]
    for customer, field in cases:
        response = api.complete("officer_hka1", no, "collect_materials", {"customer": customer})
        assert response.status_code == 422, customer
        assert field in response.get_json()["error"]["fields"]["customer"], customer
    good = {"phone": "13912345678", "id_number": own_id.lower(), "address": "海口"}
    response = api.complete("officer_hka1", no, "collect_materials", {"customer": good})
    assert response.status_code == 200, response.get_json()
    assert api.application("gm", no, full=True)["materials"]["customer"]["id_number"] == good["id_number"].upper()


def test_the_supervisor_sees_decided_money_as_a_decimal_string_and_cannot_change_it(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "95000", 24))  # amount decided, term escalated
    shown = supervisor_task(api, no)
    assert shown["data"]["loan_amount"]["final_amount"] == "95000.00"
    amount_field = next(f for f in shown["form"]["fields"] if f["name"] == "amount")
    assert amount_field["decided"] == "95000.00"

    response = supervisor_decides(api, no, {"decision": "approve", "amount": "70000", "term_months": 18})
    assert response.status_code == 422
    assert "95000.00" in response.get_json()["error"]["fields"]["amount"][0]
    response = supervisor_decides(api, no, {"decision": "approve", "amount": "95000.00", "term_months": 18})
    assert response.status_code == 200, response.get_json()


def test_a_returning_customer_s_new_contact_details_are_shown_with_the_new_application(api):
    first = api.submit(name="李四", phone="13900000011")
    second = api.submit(name="王五", phone="13900000022", region="SY")
    detail = api.application("gm", second, full=True)  # gm may see customers in full
    assert detail["applicant"] == {"name": "王五", "phone": "13900000022", "masked": False}
    assert detail["customer"]["name"] == "李四"  # the customer record is staff-maintained
    assert api.application("gm", first, full=True)["applicant"]["phone"] == "13900000011"
    masked = api.application("lead_sya", second)["applicant"]
    if masked["masked"]:
        assert masked["phone"] == "139****0022"


def test_no_materials_are_added_after_the_decision(api):
    no = centralized(api, ("reject", "100000", 12), ("reject", "100000", 12))
    assert api.application("lead_hka", no)["stage"] == "rejected"
    upload = api.post(
        "officer_hka1",
        f"/api/v1/applications/{no}/attachments",
        data={"file": (BytesIO(png()), "late.png")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 409


def test_a_claim_answers_the_time_it_stored(api):
    no = api.submit()
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    claimed = api.post("lead_hka", f"/api/v1/tasks/{task['id']}/claim").get_json()
    again = api.get("lead_hka", f"/api/v1/tasks/{task['id']}").get_json()
    assert claimed["claimed_at"] == again["claimed_at"]


def test_field_messages_of_the_public_form_are_in_chinese(client):
    from conftest import application_body

    response = client.post("/api/v1/public/applications", json=application_body(region="XX"))
    assert response.status_code == 422
    assert "地区不存在" in response.get_json()["error"]["fields"]["region_code"][0]
    response = client.post("/api/v1/public/applications", json=application_body(channel="微信"))
    assert "渠道" in response.get_json()["error"]["fields"]["channel"][0]


def test_details_registered_on_site_are_masked_like_the_customer(api):
    no = _assigned(api, id_number=resident_id("46010019800101123"))
    api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_AT, "notes": ""})
    details = {"Phone": "13912345678", "id_number": resident_id("46010019800101123"), "name": "王小明", "shop": "杂货"}
    response = api.complete("officer_hka1", no, "collect_materials", {"customer": details})
    assert response.status_code == 200, response.get_json()

    masked = api.application("lead_hka", no)
    assert masked["customer"]["masked"] is True
    registered = masked["materials"]["customer"]
    assert registered["phone"] == "139****5678"  # "Phone" was taken as the phone
    assert registered["id_number"].startswith("460100") and "*" in registered["id_number"]
    assert registered["name"] == "王**" and registered["shop"] == "杂货"
    profile = api.get("lead_hka", f"/api/v1/customers/{masked['customer']['id']}").get_json()["profile"]
    assert profile["phone"] == "139****5678"
    assert api.application("gm", no, full=True)["materials"]["customer"]["phone"] == "13912345678"  # full view


def test_a_rejection_decides_no_amount_and_no_term(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "60000", 14))  # amount escalated, term decided
    response = supervisor_decides(api, no, {"decision": "reject", "amount": "1", "term_months": 99})
    assert response.status_code == 200, response.get_json()
    decision = api.application("gm", no)["decision"]
    assert (decision["outcome"], decision["final_amount"], decision["final_term"]) == ("rejected", None, None)
    assert (decision["amount_strategy"], decision["term_strategy"]) == (None, None)


def test_one_person_claiming_a_task_twice_at_once_gets_it_both_times(fresh, api):
    no = api.submit()
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    headers = api.headers("lead_hka")
    statuses: list[int] = []
    clients = [fresh.test_client() for _ in range(4)]
    at_once(
        *(
            lambda client=client: statuses.append(
                client.post(f"/api/v1/tasks/{task['id']}/claim", headers=headers).status_code
            )
            for client in clients
        )
    )
    assert statuses == [200] * 4


@pytest.mark.parametrize("amount", ["30_000", "１００００", "1e4", "+30000", " 30000", "30000 ", "0x10", "3,000"])
def test_money_as_text_is_plain_ascii_digits_with_an_optional_point(client, amount):
    response = client.post("/api/v1/public/applications", json=application_body(amount=amount))
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == ["amount"]


@pytest.mark.parametrize("amount", ["30000", "30000.5", "30000.50", "0030000", 30000, 30000.5])
def test_plain_money_is_accepted_as_text_or_number(client, amount):
    response = client.post("/api/v1/public/applications", json=application_body(amount=amount))
    assert response.status_code == 201, response.get_json()


def _committee_waiting(api) -> str:  # type: ignore[no-untyped-def]
    no = api.submit(region="SY")
    api.to_approval(no, lead="lead_sya", officer="officer_sya1")
    return no


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"meeting_at": "1900-01-01T09:00:00+08:00"}, "meeting_at"),
        ({"meeting_at": "2099-01-01T09:00:00+08:00"}, "meeting_at"),
        ({"members": ["王委员", "王委员"]}, "members"),
        ({"members": [999999]}, "members"),
    ],
)
def test_a_committee_registration_must_be_plausible(api, change, field):
    from conftest import MEETING_AT

    no = _committee_waiting(api)
    form = {"meeting_at": MEETING_AT, "members": ["王委员", api.user_id("lead_sya")], **change}
    response = api.complete("lead_sya", no, "register_committee", form, "candidate")
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == [field]
    form = {"meeting_at": MEETING_AT, "members": ["王委员", api.user_id("lead_sya")]}
    assert api.complete("lead_sya", no, "register_committee", form, "candidate").status_code == 200


def test_committee_members_sent_as_text_ids_are_checked_as_ids(api):
    from conftest import MEETING_AT

    no = _committee_waiting(api)
    lead = api.user_id("lead_sya")
    for members in ([str(lead), lead], ["999999"]):
        response = api.complete(
            "lead_sya", no, "register_committee", {"meeting_at": MEETING_AT, "members": members}, "candidate"
        )
        assert response.status_code == 422, (members, response.get_json())
        assert list(response.get_json()["error"]["fields"]) == ["members"]
    form = {"meeting_at": MEETING_AT, "members": [str(lead), "王委员"]}
    assert api.complete("lead_sya", no, "register_committee", form, "candidate").status_code == 200


def test_a_product_range_message_names_the_range_in_english_too(client):
    response = client.post(
        "/api/v1/public/applications",
        json=application_body(amount="999", product_code="BIZ-EQ"),
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 422
    message = response.get_json()["error"]["fields"]["amount"][0]
    assert "1000.00" in message and "yuan" in message


def test_a_value_the_rules_decided_is_shown_without_bounds_or_conditions(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "60000", 13))  # amount escalated, term decided
    fields = {f["name"]: f for f in supervisor_task(api, no)["form"]["fields"]}
    assert "decided" in fields["term_months"] and "required_when" not in fields["term_months"]
    assert fields["amount"]["required_when"] == {"decision": "approve"}


def test_every_phone_name_and_id_the_officer_registers_is_masked_for_masked_viewers(api):
    other = api.submit(id_number=resident_id("46010019800101999"), phone="13900000001")
    lead, officer = "lead_hka", "officer_hka1"
    assert (
        api.complete(lead, other, "assign_officer", {"officer_id": api.user_id(officer)}, "candidate").status_code
        == 200
    )
    assert api.complete(officer, other, "onsite_visit", {"visited_at": VISITED_AT, "notes": ""}).status_code == 200
    details = {
        "spouse_phone": "13912345678",
        "Mobile": "13700001111",
        "spouse_name": "李四",
        "shop": "杂货店",
        "mobile": 13912345679,  # a phone typed as a number
        "证件号码": "460200198001011234",
        "contact": "李四 13700001112",  # whatever the key, a phone or ID number in a text
        "note": "担保人身份证 46020019800101123X",
        "account": "6222021234567890123",  # not a phone nor an ID number
    }
    form = {"customer": details, "attachments": [], "notes": ""}
    assert api.complete(officer, other, "collect_materials", form).status_code == 200
    shown = api.application(lead, other)["materials"]["customer"]
    assert shown == {
        "spouse_phone": "139****5678",
        "Mobile": "137****1111",
        "spouse_name": "李*",
        "shop": "杂货店",
        "mobile": "139****5679",
        "证件号码": "460200********1234",
        "contact": "李四 137****1112",
        "note": "担保人身份证 460200********123X",
        "account": "6222021234567890123",
    }
    customer_id = api.application(lead, other)["customer"]["id"]
    assert api.get(lead, f"/api/v1/customers/{customer_id}").get_json()["profile"] == shown


def test_details_stored_nested_are_masked_at_every_depth():
    """The form takes a flat object today; what an earlier form stored nested is masked too."""
    from app.customers.services import profile_view

    stored = {"guarantor": {"name": "王五", "phones": ["13811112222"], "id": "46020019800101123X"}}
    assert profile_view(stored) == {"guarantor": {"name": "王*", "phones": ["138****2222"], "id": "460200********123X"}}
    assert profile_view(stored, full=True) == stored


def test_an_attachment_is_referenced_once(api):
    no, upload = _visited_with_photo(api, "", "id.png")
    photo = upload.get_json()["id"]
    response = api.complete("officer_hka1", no, "collect_materials", {"attachments": [photo, photo]})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["attachments"] == [
        f"附件重复：{photo} (listed more than once: {photo})"
    ]
    assert api.complete("officer_hka1", no, "collect_materials", {"attachments": [photo]}).status_code == 200


def test_a_term_out_of_range_is_told_the_product_s_range_whatever_the_value(api):
    """The form describes the product's range (1-60 months); a term of 0 or 999 is
    refused with that range, not with a different, built-in one."""
    no = api.submit()
    api.to_approval(no)
    task = api.task("approver1", no, "approve")
    shown = api.get("approver1", f"/api/v1/tasks/{task['id']}").get_json()
    term = next(f for f in shown["form"]["fields"] if f["name"] == "term_months")
    for value in (61, 999, 5000):
        response = api.approve("approver1", no, "approve", "100000", value)
        assert response.status_code == 422
        message = response.get_json()["error"]["fields"]["term_months"][0]
        assert f"{term['min']} 至 {term['max']}" in message, message
    response = api.approve("approver1", no, "approve", "100000", 0)
    assert response.status_code == 422
    message = response.get_json()["error"]["fields"]["term_months"][0]
    assert message == "须不小于 1 (must be at least 1)", message


def test_the_detail_says_who_uploaded_each_attachment_and_when_each_approver_answered(api):
    """Uploads stay open while approvers decide: an approver can tell what was added after
    another answered by the times."""
    no, upload = _visited_with_photo(api, "", "id.png")
    photo = upload.get_json()["id"]
    assert api.complete("officer_hka1", no, "collect_materials", {"attachments": [photo]}).status_code == 200
    assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
    detail = api.application("lead_hka", no)
    (listed,) = detail["attachments"]
    assert listed["uploaded_by_id"] == api.user_id("officer_hka1")
    (answer,) = detail["approvals"]
    uploaded, answered = (datetime.fromisoformat(t) for t in (listed["uploaded_at"], answer["answered_at"]))
    assert uploaded.tzinfo is not None and answered.tzinfo is not None
    assert uploaded <= answered


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("contact", "+8613912345678", "+86139****5678"),
        ("contact", "0086 139 1234 5678", "0086 139 **** 5678"),
        ("contact", "139-1234-5678", "139-****-5678"),
        ("contact", "１３９１２３４５６７８", "139****5678"),  # full-width digits
        ("note", "老证 460200800101123", "老证 460200*****1123"),  # a 15-digit ID number
        ("spouseTel", "13912345678", "139****5678"),
        # not a person's number: left as written
        ("note", "上次申请 YDX202611261234567890 已结清", "上次申请 YDX202611261234567890 已结清"),
        ("licence", "110108012345678", "110108012345678"),  # no birth date where an ID has one
        ("account", "622202123456789012", "622202123456789012"),
        ("amount", "50000.00", "50000.00"),
        ("date", "2026-11-26", "2026-11-26"),
        ("mobile_years", 5, 5),  # under a phone key, but a count
        ("hotel", "如家", "如家"),  # `tel` only as a word of its own
        ("证件类型", "居民身份证", "居民身份证"),
        ("证件有效期", "2035-01-01", "2035-01-01"),
    ],
)
def test_details_are_masked_by_what_they_are_and_only_then(key, value, shown):
    from app.customers.services import profile_view

    assert profile_view({key: value}) == {key: shown}
