"""Who sees and does what (F21): every role against its own and the other team's data.

One HK application (team HK-A, assigned to officer_hka1, now at `onsite_visit`) and one SY
application (team SY-A, still waiting in the team pool at `assign_officer`) are built once
for the module; each case is one request by one demo user. Data outside the caller's
scope answers 404 (its existence does not leak) and never shows up in a list; a caller
without the action at all gets 403.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import VISITED_AT, Api, clear_data, resident_id


def tiny_png() -> bytes:
    """A real 1×1 PNG, so the upload passes the content-type check."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


HK_CUSTOMER = {"name": "王海口", "phone": "13800000001", "id_number": resident_id("46010019800101123")}
SY_CUSTOMER = {"name": "李三亚", "phone": "13900000002", "id_number": resident_id("46020019850615456")}


@dataclass
class World:
    api: Api
    numbers: dict[str, str]  # region → application_no
    tasks: dict[str, dict[str, Any]]  # region → the application's open task
    customers: dict[str, int]  # region → customer id


@pytest.fixture(scope="module")
def world(app) -> World:  # type: ignore[no-untyped-def]
    """HK application assigned to officer_hka1; SY application waiting for its lead."""
    clear_data(app)
    api = Api(app.test_client())
    numbers = {"HK": api.submit("HK", **HK_CUSTOMER), "SY": api.submit("SY", **SY_CUSTOMER)}
    assigned = api.complete(
        "lead_hka", numbers["HK"], "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate"
    )
    assert assigned.status_code == 200, assigned.get_json()
    tasks = {
        "HK": api.task("gm", numbers["HK"], "onsite_visit", "team"),
        "SY": api.task("gm", numbers["SY"], "assign_officer", "team"),
    }
    full = api.get("gm", "/api/v1/customers?full=true").get_json()["items"]
    by_id_number = {c["id_number"]: c["id"] for c in full}
    customers = {"HK": by_id_number[HK_CUSTOMER["id_number"]], "SY": by_id_number[SY_CUSTOMER["id_number"]]}
    return World(api, numbers, tasks, customers)


# --- applications and customers ---------------------------------------------------

# user → status of GET /applications/{no} (and /customers/{id}) for the HK and the SY application
APPLICATION_VIEW = {
    "lead_hka": {"HK": 200, "SY": 404},
    "officer_hka1": {"HK": 200, "SY": 404},
    "officer_hka2": {"HK": 404, "SY": 404},
    "approver1": {"HK": 200, "SY": 404},
    "approver2": {"HK": 200, "SY": 404},
    "approver3": {"HK": 404, "SY": 404},
    "lead_sya": {"HK": 404, "SY": 200},
    "officer_sya1": {"HK": 404, "SY": 404},
    "director_hk": {"HK": 200, "SY": 404},
    "director_sy": {"HK": 404, "SY": 200},
    "director_qh": {"HK": 404, "SY": 404},
    "gm": {"HK": 200, "SY": 200},
    "supervisor": {"HK": 200, "SY": 200},
    "analyst": {"HK": 403, "SY": 403},
    "admin": {"HK": 403, "SY": 403},
}
VIEW_CASES = [(user, region, status) for user, row in APPLICATION_VIEW.items() for region, status in row.items()]
LIST_USERS = list(APPLICATION_VIEW)


def visible_regions(user: str) -> set[str]:
    return {region for region, status in APPLICATION_VIEW[user].items() if status == 200}


def assert_error(response, status: int) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    error = response.get_json()["error"]
    assert error["code"] and error["message"]


@pytest.mark.parametrize(("user", "region", "status"), VIEW_CASES)
def test_application_detail_only_within_the_data_scope(world, user, region, status):
    response = world.api.get(user, f"/api/v1/applications/{world.numbers[region]}")
    if status == 200:
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["application_no"] == world.numbers[region]
    else:
        assert_error(response, status)


@pytest.mark.parametrize("user", LIST_USERS)
def test_application_list_shows_exactly_the_visible_applications(world, user):
    response = world.api.get(user, "/api/v1/applications?per_page=200")
    if not visible_regions(user) and APPLICATION_VIEW[user]["HK"] == 403:
        assert_error(response, 403)
        return
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    listed = {item["application_no"] for item in body["items"]}
    assert listed == {world.numbers[r] for r in visible_regions(user)}
    assert body["total"] == len(listed)


@pytest.mark.parametrize(("user", "region", "status"), VIEW_CASES)
def test_customer_detail_only_within_the_data_scope(world, user, region, status):
    response = world.api.get(user, f"/api/v1/customers/{world.customers[region]}")
    if status == 200:
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["id"] == world.customers[region]
    else:
        assert_error(response, status)


@pytest.mark.parametrize("user", LIST_USERS)
def test_customer_list_shows_exactly_the_visible_customers(world, user):
    response = world.api.get(user, "/api/v1/customers?per_page=200")
    if APPLICATION_VIEW[user]["HK"] == 403:
        assert_error(response, 403)
        return
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert {item["id"] for item in body["items"]} == {world.customers[r] for r in visible_regions(user)}
    assert body["total"] == len(body["items"])


def test_customer_search_does_not_reach_other_teams(world):
    response = world.api.get("lead_hka", f"/api/v1/customers?q={SY_CUSTOMER['phone']}")
    assert response.status_code == 200
    assert response.get_json()["items"] == []


def _found(world: World, user: str, q: str) -> list[int]:
    response = world.api.get(user, "/api/v1/customers", query_string={"q": q})
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


def test_a_masked_viewer_finds_a_customer_only_by_a_whole_value(world):
    """A part of a phone would let a masked viewer try the hidden digits one by one."""
    hk = world.customers["HK"]
    for whole in (HK_CUSTOMER["phone"], HK_CUSTOMER["name"], HK_CUSTOMER["id_number"].lower()):
        assert _found(world, "lead_hka", whole) == [hk], whole
    for part in (HK_CUSTOMER["phone"][:7], HK_CUSTOMER["phone"][3:], HK_CUSTOMER["name"][:1], "%", "_"):
        assert _found(world, "lead_hka", part) == [], part


def test_the_general_manager_searches_by_part_and_wildcards_are_plain_text(world):
    assert _found(world, "gm", HK_CUSTOMER["phone"][:7]) == [world.customers["HK"]]
    assert _found(world, "gm", HK_CUSTOMER["id_number"][-6:]) == [world.customers["HK"]]
    assert _found(world, "gm", "%") == [] and _found(world, "gm", "_") == []


def test_masked_searches_are_limited_per_user(world, app):  # type: ignore[no-untyped-def]
    from app.ratelimit import counter

    limit = app.config["YDX_MASKED_SEARCH_LIMIT"]
    app.config["YDX_MASKED_SEARCH_LIMIT"] = 2
    try:
        assert _found(world, "director_hk", "13800000000") == []
        assert _found(world, "director_hk", "13800000009") == []
        refused = world.api.get("director_hk", "/api/v1/customers?q=13800000001")
        assert_error(refused, 429)
        assert int(refused.headers["Retry-After"]) > 0
        assert world.api.get("gm", "/api/v1/customers?q=138").status_code == 200  # full viewers are not counted
        assert world.api.get("director_hk", "/api/v1/customers").status_code == 200  # nor lists without a search
    finally:
        app.config["YDX_MASKED_SEARCH_LIMIT"] = limit
        with app.app_context():
            counter().reset(f"ydx:search:{world.api.user_id('director_hk')}")


MASKED_VIEWERS = [u for u in LIST_USERS if visible_regions(u)]


@pytest.mark.parametrize("user", MASKED_VIEWERS)
def test_customers_are_masked_by_default_for_everyone(world, user):
    """api.md: "masked by default" — the general manager included, until asked."""
    region = sorted(visible_regions(user))[0]
    real = HK_CUSTOMER if region == "HK" else SY_CUSTOMER
    views = [
        world.api.get(user, f"/api/v1/customers/{world.customers[region]}").get_json(),
        next(
            c
            for c in world.api.get(user, "/api/v1/customers").get_json()["items"]
            if c["id"] == world.customers[region]
        ),
        world.api.get(user, f"/api/v1/applications/{world.numbers[region]}").get_json()["customer"],
    ]
    for view in views:
        for field in ("name", "phone", "id_number"):
            assert "*" in view[field] and view[field] != real[field], (field, view)
        assert view["masked"] is True


def test_the_general_manager_sees_customers_unmasked_when_asking(world):
    views = [
        world.api.get("gm", f"/api/v1/customers/{world.customers['HK']}?full=true").get_json(),
        next(
            c
            for c in world.api.get("gm", "/api/v1/customers?full=true").get_json()["items"]
            if c["id"] == world.customers["HK"]
        ),
        world.api.get("gm", f"/api/v1/applications/{world.numbers['HK']}?full=true").get_json()["customer"],
    ]
    for view in views:
        assert {k: view[k] for k in ("name", "phone", "id_number")} == HK_CUSTOMER
        assert view["masked"] is False


@pytest.mark.parametrize("user", [u for u in MASKED_VIEWERS if u != "gm"])
def test_asking_for_full_values_without_the_grant_is_forbidden(world, user):
    region = sorted(visible_regions(user))[0]
    for path in (
        f"/api/v1/customers/{world.customers[region]}?full=true",
        "/api/v1/customers?full=true",
        f"/api/v1/applications/{world.numbers[region]}?full=true",
    ):
        response = world.api.get(user, path)
        assert response.status_code == 403, (path, response.get_json())
        assert HK_CUSTOMER["phone"] not in response.get_data(as_text=True)


# --- task inbox ---------------------------------------------------------------------

# user → regions whose open task appears in ?scope=team and ?scope=candidate (None: 403)
TASK_LISTS: dict[str, dict[str, set[str]] | None] = {
    "lead_hka": {"team": {"HK"}, "candidate": set()},
    "officer_hka1": {"team": set(), "candidate": set()},
    "officer_hka2": {"team": set(), "candidate": set()},
    "approver1": {"team": set(), "candidate": set()},
    "approver2": {"team": set(), "candidate": set()},
    "approver3": {"team": set(), "candidate": set()},
    "lead_sya": {"team": {"SY"}, "candidate": {"SY"}},
    "officer_sya1": {"team": set(), "candidate": set()},
    "director_hk": {"team": {"HK"}, "candidate": set()},
    "director_sy": {"team": {"SY"}, "candidate": set()},
    "director_qh": {"team": set(), "candidate": set()},
    "gm": {"team": {"HK", "SY"}, "candidate": set()},
    "supervisor": {"team": set(), "candidate": set()},
    "analyst": {"team": set(), "candidate": set()},  # an inbox like all staff (api.md), empty
    "admin": {"team": set(), "candidate": set()},
}
TASK_LIST_CASES = [(user, scope) for user in TASK_LISTS for scope in ("team", "candidate")]


@pytest.mark.parametrize(("user", "scope"), TASK_LIST_CASES)
def test_task_lists_show_only_the_callers_teams(world, user, scope):
    response = world.api.get(user, f"/api/v1/tasks?scope={scope}&per_page=200")
    expected = TASK_LISTS[user]
    if expected is None:
        assert_error(response, 403)
        return
    assert response.status_code == 200, response.get_json()
    listed = {item["application_no"] for item in response.get_json()["items"]}
    assert listed == {world.numbers[r] for r in expected[scope]}


def test_the_assigned_officer_finds_the_task_under_mine(world):
    items = world.api.get("officer_hka1", "/api/v1/tasks?scope=mine").get_json()["items"]
    assert [(t["application_no"], t["task_key"]) for t in items] == [(world.numbers["HK"], "onsite_visit")]


# (user, region of the task tried, expected status) for GET /tasks/{id} and the verbs:
# HK people try the SY task, SY people the HK task, QH people both.
HOME = {
    "lead_hka": "HK", "officer_hka1": "HK", "officer_hka2": "HK", "approver1": "HK", "approver2": "HK",
    "director_hk": "HK", "lead_sya": "SY", "officer_sya1": "SY", "director_sy": "SY",
}  # fmt: skip
QH_PEOPLE = ("approver3", "director_qh")  # both the HK and the SY task belong to other teams
NO_TEAM = ("analyst", "admin")  # an inbox (all staff have one) but no team: every team's task is another's
OTHER = {"HK": "SY", "SY": "HK"}


def other_task_cases(verb: str) -> list[tuple[str, str, int]]:
    """Another team's task is "not yours": 403 for every verb (api.md), never its data."""
    cases = [(user, OTHER[home], 403) for user, home in HOME.items()]
    for user in QH_PEOPLE + NO_TEAM:
        cases += [(user, "HK", 403), (user, "SY", 403)]
    return cases


def task_state(world: World, region: str) -> tuple[Any, Any]:
    task = world.api.get("gm", f"/api/v1/tasks/{world.tasks[region]['id']}").get_json()
    return task["status"], task["assignee_id"]


@pytest.mark.parametrize(("user", "region", "status"), other_task_cases("view"))
def test_another_teams_task_cannot_be_opened(world, user, region, status):
    assert_error(world.api.get(user, f"/api/v1/tasks/{world.tasks[region]['id']}"), status)


@pytest.mark.parametrize(
    ("user", "region"), [("lead_hka", "HK"), ("officer_hka1", "HK"), ("lead_sya", "SY"), ("director_hk", "HK")]
)
def test_own_teams_task_can_be_opened(world, user, region):
    response = world.api.get(user, f"/api/v1/tasks/{world.tasks[region]['id']}")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["application_no"] == world.numbers[region]


@pytest.mark.parametrize(("user", "region", "status"), other_task_cases("claim"))
def test_another_teams_task_cannot_be_claimed(world, user, region, status):
    before = task_state(world, region)
    assert_error(world.api.post(user, f"/api/v1/tasks/{world.tasks[region]['id']}/claim"), status)
    assert task_state(world, region) == before


@pytest.mark.parametrize(("user", "region", "status"), other_task_cases("assign"))
def test_another_teams_task_cannot_be_assigned(world, user, region, status):
    member = "officer_hka2" if region == "HK" else "lead_sya"
    before = task_state(world, region)
    response = world.api.post(
        user, f"/api/v1/tasks/{world.tasks[region]['id']}/assign", json={"user_id": world.api.user_id(member)}
    )
    assert_error(response, status)
    assert task_state(world, region) == before


@pytest.mark.parametrize(("user", "region", "status"), other_task_cases("complete"))
def test_another_teams_task_cannot_be_completed(world, user, region, status):
    form = (
        {"visited_at": VISITED_AT, "notes": "到访"}
        if region == "HK"
        else {"officer_id": world.api.user_id("officer_sya1")}
    )
    before = task_state(world, region)
    assert_error(world.api.post(user, f"/api/v1/tasks/{world.tasks[region]['id']}/complete", json=form), status)
    assert task_state(world, region) == before


def test_an_officer_cannot_take_over_a_colleagues_task(world):
    response = world.api.post("officer_hka2", f"/api/v1/tasks/{world.tasks['HK']['id']}/complete", json={})
    assert response.status_code in (403, 404)
    assert_error(response, response.status_code)


# --- attachments --------------------------------------------------------------------

# user → (application region, expected status) of an upload
UPLOAD_CASES = [
    ("lead_hka", "SY", 404),
    ("officer_hka1", "SY", 404),
    ("officer_hka2", "HK", 404),
    ("lead_sya", "HK", 404),
    ("officer_sya1", "HK", 404),
    ("approver1", "HK", 403),
    ("director_hk", "HK", 403),
    ("gm", "HK", 403),
    ("supervisor", "HK", 403),
    ("analyst", "HK", 403),
    ("admin", "HK", 403),
]


def upload(world: World, user: str, region: str):  # type: ignore[no-untyped-def]
    return world.api.post(
        user,
        f"/api/v1/applications/{world.numbers[region]}/attachments",
        data={"file": (io.BytesIO(tiny_png()), "photo.png")},
        content_type="multipart/form-data",
    )


def attachment_count(world: World, region: str) -> int:
    return len(world.api.get("gm", f"/api/v1/applications/{world.numbers[region]}").get_json()["attachments"])


@pytest.mark.parametrize(("user", "region", "status"), UPLOAD_CASES)
def test_uploads_are_refused_outside_the_callers_applications(world, user, region, status):
    before = attachment_count(world, region)
    assert_error(upload(world, user, region), status)
    assert attachment_count(world, region) == before


@pytest.mark.parametrize("user", ["officer_hka1", "lead_hka"])
def test_the_assigned_officer_and_the_lead_can_upload(world, user):
    response = upload(world, user, "HK")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["content_type"] == "image/png"
