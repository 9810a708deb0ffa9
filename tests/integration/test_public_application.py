"""The customer's application page (F1): field checks, consents, status lookup, throttling."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Application
from app.models.base import utcnow
from tests.conftest import ID_CHECK_CHARS, application_body, clear_data, make_app, resident_id

URL = "/api/v1/public/applications"
REQUIRED = (
    "name",
    "phone",
    "id_number",
    "region_code",
    "amount",
    "term_months",
    "purpose",
    "channel",
    "consent",
    "credit_authorization",
)


def wrong_check_digit(first17: str) -> str:
    right = resident_id(first17)[-1]
    return first17 + next(c for c in ID_CHECK_CHARS if c != right)


def without(field: str) -> dict:
    body = application_body()
    del body[field]
    return body


def assert_field_error(response, field: str) -> None:  # type: ignore[no-untyped-def]
    """422 in the api.md error format, naming exactly `field`."""
    assert response.status_code == 422, (response.status_code, response.get_data(as_text=True))
    error = response.get_json()["error"]
    assert error["code"] and error["message"]
    assert set(error["fields"]) == {field}, error


def application_total(api) -> int:  # type: ignore[no-untyped-def]
    return api.get("gm", "/api/v1/applications").get_json()["total"]


def customer_total(api) -> int:  # type: ignore[no-untyped-def]
    return api.get("gm", "/api/v1/customers").get_json()["total"]


@pytest.fixture(scope="module")
def form_client(app):  # type: ignore[no-untyped-def]
    """A client for refused submissions: they need the demo products and regions, and
    write nothing, so one seeded database serves all of them."""
    clear_data(app)
    return app.test_client()


# --- one test per field error -------------------------------------------------------


@pytest.mark.parametrize("field", REQUIRED)
def test_a_missing_required_field_is_named(form_client, field):
    assert_field_error(form_client.post(URL, json=without(field)), field)


INVALID_VALUES = [
    ("name", ""),
    ("name", "   "),
    ("name", None),
    ("name", "12345"),
    ("name", "张3"),
    ("name", "\u200b"),  # an invisible character alone is blank
    ("phone", "12345678901"),
    ("phone", "1380013800"),
    ("phone", "138001380001"),
    ("phone", "+8613800138000"),
    ("phone", 13800138000),
    ("id_number", resident_id("11010519491231002")[:-1]),
    ("id_number", resident_id("11010519491231002") + "1"),
    ("id_number", wrong_check_digit("11010519491231002")),
    ("id_number", resident_id("11010519490230002")),
    ("id_number", resident_id("11010519491331002")),
    ("id_number", resident_id(f"110105{utcnow() + timedelta(days=400):%Y%m%d}002")),
    ("id_number", "11010519491231002Y"),
    ("id_number", resident_id("00000019900101002")),  # no province has the code 00
    ("id_number", resident_id(f"110105{utcnow() - timedelta(days=365 * 11):%Y%m%d}002")),  # an 11-year-old
    ("region_code", "XX"),
    ("region_code", ""),
    ("product_code", "NOPE"),
    ("amount", "0"),
    ("amount", "-100"),
    ("amount", 0),
    ("amount", "100.123"),
    ("amount", "999.99"),
    ("amount", "1000000.01"),
    ("amount", "abc"),
    ("amount", "NaN"),
    ("amount", "Infinity"),
    ("amount", True),
    ("term_months", "12.5"),
    ("term_months", 12.5),
    ("term_months", "12"),
    ("term_months", 0),
    ("term_months", -3),
    ("term_months", 61),
    ("term_months", True),
    ("purpose", ""),
    ("purpose", "   "),
    ("purpose", "\u200b"),
    ("channel", ""),
    ("channel", "not a channel!"),
    ("consent", False),
    ("consent", "true"),
    ("consent", 1),
    ("consent", None),
    ("credit_authorization", False),
    ("credit_authorization", "true"),
]


@pytest.mark.parametrize(("field", "value"), INVALID_VALUES, ids=[f"{f}={v!r}" for f, v in INVALID_VALUES])
def test_an_invalid_value_is_named(form_client, field, value):
    assert_field_error(form_client.post(URL, json=application_body(**{field: value})), field)


def test_an_applicant_who_turns_eighteen_today_may_apply(client):
    from app.models.base import BEIJING

    today = utcnow().astimezone(BEIJING).date()
    born = (
        today.replace(year=today.year - 18)
        if (today.month, today.day) != (2, 29)
        else today.replace(year=today.year - 18, day=28)
    )
    response = client.post(URL, json=application_body(id_number=resident_id(f"110105{born:%Y%m%d}002")))
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize(("amount", "term"), [("1000", 1), ("1000000", 60), ("95000.50", 36)])
def test_amounts_and_terms_at_the_product_limits_are_accepted(client, amount, term):
    response = client.post(URL, json=application_body(amount=amount, term_months=term, product_code="BIZ-EQ"))
    assert response.status_code == 201, response.get_json()


def test_an_id_number_with_a_lowercase_x_is_accepted(client):
    response = client.post(URL, json=application_body(id_number="11010519491231002x"))
    assert response.status_code == 201, response.get_json()


# --- malformed bodies ---------------------------------------------------------------


@pytest.mark.parametrize("raw", ['{"name": "张三",', "not json at all", "\x00\x01"])
def test_a_malformed_json_body_is_400_in_the_error_format(form_client, raw):
    response = form_client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] and error["message"]


@pytest.mark.parametrize("raw", ["[]", '"a string"', "null", "42", ""])
def test_a_body_that_is_not_an_object_is_refused(form_client, raw):
    response = form_client.post(URL, data=raw, content_type="application/json")
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert response.get_json()["error"]["code"]


# --- the happy path -----------------------------------------------------------------


def test_a_valid_application_gets_a_number_and_waits_for_assignment(client):
    response = client.post(URL, json=application_body())
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "pending_assignment"
    assert body["application_no"]


def test_the_customer_can_look_up_the_status_with_number_and_phone(client):
    number = client.post(URL, json=application_body(phone="13912345678")).get_json()["application_no"]
    response = client.get(f"{URL}/{number}?phone=13912345678")
    assert response.status_code == 200
    body = response.get_json()
    assert body["application_no"] == number
    assert body["stage"] == "pending_assignment"
    assert body["updated_at"]


@pytest.mark.parametrize("phone", ["13900000000", "+8613900000000"])
def test_the_status_lookup_with_a_wrong_phone_is_404(client, phone):
    number = client.post(URL, json=application_body(phone="13912345678")).get_json()["application_no"]
    response = client.get(f"{URL}/{number}?phone={phone}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_status_lookup_of_an_unknown_number_is_404(client):
    response = client.get(f"{URL}/YDX2026000000000?phone=13800138000")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("query", ["", "?phone="])
def test_the_status_lookup_without_a_phone_is_refused(client, query):
    number = client.post(URL, json=application_body()).get_json()["application_no"]
    response = client.get(f"{URL}/{number}{query}")
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"phone"}


@pytest.mark.parametrize("written", ["+8613912345678", "139 1234 5678", "139-1234-5678", "008613912345678"])
def test_the_status_lookup_reads_the_phone_however_it_is_written(client, written):
    """Each wrong phone counts toward the lookup's limit: the customer's own number with a
    country code or spaces is the customer's number, not a wrong guess."""
    from urllib.parse import quote

    number = client.post(URL, json=application_body(phone="13912345678")).get_json()["application_no"]
    assert client.get(f"{URL}/{number}?phone={quote(written)}").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        application_body(amount="1000000.01"),
        application_body(term_months=61),
        application_body(product_code="NOPE"),
        application_body(region_code="XX"),
        application_body(phone="12345678901"),
        application_body(consent=False),
    ],
    ids=["amount-over-limit", "term-over-limit", "unknown-product", "unknown-region", "bad-phone", "no-consent"],
)
def test_a_refused_application_leaves_nothing_behind(api, body):
    api.submit()
    applications, customers = application_total(api), customer_total(api)
    refused = api.client.post(URL, json={**body, "id_number": resident_id("46010019900101123"), "name": "新客户"})
    assert refused.status_code == 422
    assert (application_total(api), customer_total(api)) == (applications, customers)


def test_the_consent_and_credit_authorization_are_stored_with_text_version_and_time(client, fresh):
    before = utcnow()
    number = client.post(URL, json=application_body()).get_json()["application_no"]
    with fresh.app_context():
        application = db.session.scalar(select(Application).where(Application.application_no == number))
        assert application.consent_text_version == fresh.config["YDX_CONSENT_TEXT_VERSION"]
        assert application.credit_auth_text_version == fresh.config["YDX_CREDIT_AUTH_TEXT_VERSION"]
        for moment in (application.consent_at, application.credit_auth_at):
            assert moment.tzinfo is not None
            assert before - timedelta(seconds=1) <= moment <= utcnow() + timedelta(seconds=1)


def test_the_channel_is_recorded(api):
    number = api.submit(channel="qrcode")
    assert api.application("gm", number)["channel"] == "qrcode"


def test_the_region_routes_the_application_to_its_team(api):
    number = api.submit("SY")
    assert number in {
        t["application_no"] for t in api.get("lead_sya", "/api/v1/tasks?scope=candidate").get_json()["items"]
    }
    assert number not in {
        t["application_no"] for t in api.get("lead_hka", "/api/v1/tasks?scope=candidate").get_json()["items"]
    }


# --- throttling ---------------------------------------------------------------------


def test_submissions_beyond_the_limit_are_throttled(fresh):
    from app.extensions import db as database

    limited = make_app(YDX_PUBLIC_SUBMIT_LIMIT=3)
    try:
        client = limited.test_client()
        for _ in range(3):
            assert client.post(URL, json=application_body()).status_code == 201
        response = client.post(URL, json=application_body())
        assert response.status_code == 429
        assert response.get_json()["error"]["code"]
        assert int(response.headers["Retry-After"]) > 0
    finally:
        with limited.app_context():
            database.engine.dispose()


def test_invalid_submissions_and_lookups_count_toward_the_limit(fresh):
    from app.extensions import db as database

    limited = make_app(YDX_PUBLIC_SUBMIT_LIMIT=2)
    try:
        client = limited.test_client()
        assert client.post(URL, json=application_body(amount="-1")).status_code == 422
        # a body the hardening refuses before any validation counts too
        assert client.post(URL, data="[1]", content_type="application/json").status_code == 400
        assert client.post(URL, json=application_body()).status_code == 429
        assert client.post(URL, data="[1]", content_type="application/json").status_code == 429
        for _ in range(2):
            assert client.get(f"{URL}/YDX0?phone=bad").status_code in (404, 422)
        assert client.get(f"{URL}/YDX0?phone=13800138000").status_code == 429
    finally:
        with limited.app_context():
            database.engine.dispose()


# --- Idempotency-Key ----------------------------------------------------------------


def test_a_repeated_submission_with_the_same_key_answers_the_first_application(client):
    headers = {"Idempotency-Key": "3f1c2a9e-7d4b-4c1e-9a55-0b6e2d8f1a77"}
    first = client.post(URL, json=application_body(), headers=headers)
    again = client.post(URL, json=application_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    other = client.post(URL, json=application_body(), headers={"Idempotency-Key": "another-key"})
    assert other.status_code == 201 and other.get_json()["application_no"] != first.get_json()["application_no"]
    unguarded = client.post(URL, json=application_body())
    assert unguarded.get_json()["application_no"] not in {
        first.get_json()["application_no"],
        other.get_json()["application_no"],
    }


def test_a_key_used_with_another_body_or_malformed_is_refused(client):
    headers = {"Idempotency-Key": "key-1"}
    assert client.post(URL, json=application_body(), headers=headers).status_code == 201
    changed = client.post(URL, json=application_body(amount="50000"), headers=headers)
    assert changed.status_code == 422 and "Idempotency-Key" in changed.get_json()["error"]["fields"]
    bad = client.post(URL, json=application_body(), headers={"Idempotency-Key": "not a key!"})
    assert bad.status_code == 400 and "Idempotency-Key" in bad.get_json()["error"]["fields"]


def test_a_refused_submission_leaves_its_key_free_for_the_corrected_one(client):
    headers = {"Idempotency-Key": "key-2"}
    assert client.post(URL, json=application_body(amount="-1"), headers=headers).status_code == 422
    assert client.post(URL, json=application_body(), headers=headers).status_code == 201


def test_concurrent_repeats_of_one_key_make_one_application(fresh):
    from app.extensions import db as database
    from app.models import Application

    client = fresh.test_client()
    headers = {"Idempotency-Key": "key-3"}
    answers: list[tuple[int, str | None]] = []
    start = threading.Barrier(6)

    def submit() -> None:
        start.wait()
        response = client.post(URL, json=application_body(), headers=headers)
        answers.append((response.status_code, (response.get_json().get("application_no"))))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for status, _ in answers} <= {201, 409}
    assert len({no for status, no in answers if status == 201}) == 1
    with fresh.app_context():
        assert database.session.query(Application).count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "１３８００１３８０００"),  # full-width digits
        ("phone", "13800138000\n"),  # a trailing newline
        ("phone", "١٣٨٠٠١٣٨٠٠٠"),  # Arabic-Indic digits
        ("id_number", "１１０１０５１９４９１２３１００２X"),
        ("id_number", "11010519491231002X\n"),
    ],
)
def test_phone_and_id_number_take_ascii_digits_only(client, field, value):
    response = client.post(URL, json=application_body(**{field: value}))
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == [field]


def test_wrong_phones_for_one_application_are_limited_from_any_address(client):
    no = client.post(URL, json=application_body()).get_json()["application_no"]
    for guess in range(10):
        assert client.get(f"{URL}/{no}?phone=1380013{guess:04d}").status_code == 404
    refused = client.get(f"{URL}/{no}?phone=13800138000", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_region_and_product_codes_are_read_in_any_letter_case(client):
    response = client.post(URL, json=application_body(region_code="hk", product_code="biz-if"))
    assert response.status_code == 201, response.get_json()


def test_a_trailing_slash_reaches_the_same_endpoint(client):
    assert client.get("/api/v1/health/").status_code == 200
    response = client.post("/api/v1/auth/login/", json={"username": "gm", "password": "demo1234"})
    assert response.status_code == 200
    assert (
        client.get("/api/v1/tasks/", headers={"Authorization": f"Bearer {response.get_json()['token']}"}).status_code
        == 200
    )
