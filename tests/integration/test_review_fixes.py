"""Regressions found in review: customer data, racing first submissions, hostile JSON."""

import threading

import pytest

from tests.conftest import application_body, resident_id


def test_a_public_form_never_rewrites_an_existing_customers_contact(api):
    no = api.submit()
    intruder = api.client.post(
        "/api/v1/public/applications", json=application_body(name="冒名者", phone="13700000000")
    ).get_json()["application_no"]
    assert api.client.get(f"/api/v1/public/applications/{no}?phone=13800138000").status_code == 200
    assert api.client.get(f"/api/v1/public/applications/{intruder}?phone=13700000000").status_code == 200
    customer = api.application("gm", no)["customer"]
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
