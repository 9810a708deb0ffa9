"""The task inbox: scopes, fields, claim/unclaim/assign, completing, form validation,
the internal-network rule for approvals, and concurrent completion."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from conftest import VISITED_AT, at_once, database_url

VISIT = {"visited_at": VISITED_AT, "notes": "到访"}
FIELDS = (
    "id",
    "task_key",
    "title",
    "process_key",
    "process_version",
    "application_no",
    "assignee_id",
    "candidate_role",
    "team_id",
    "created_at",
    "due_at",
)
EXTERNAL = {"REMOTE_ADDR": "203.0.113.9"}
INTERNAL = {"REMOTE_ADDR": "10.1.2.3"}


def team_id(api, username: str) -> int:  # type: ignore[no-untyped-def]
    response = api.client.post("/api/v1/auth/login", json={"username": username, "password": "demo1234"})
    return response.get_json()["user"]["team_id"]


def tasks(api, username: str, scope: str, status: str = "open") -> list[dict]:  # type: ignore[no-untyped-def]
    response = api.get(username, f"/api/v1/tasks?scope={scope}&status={status}&per_page=200")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def keys_for(items: list[dict], no: str) -> list[str]:
    return sorted(t["task_key"] for t in items if t["application_no"] == no)


def assigned(api, no: str) -> dict:  # type: ignore[no-untyped-def]
    """An HK application assigned to officer_hka1; returns the open onsite_visit task."""
    response = api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    assert response.status_code == 200, response.get_json()
    return api.task("officer_hka1", no, "onsite_visit")


def disputed(api) -> str:  # type: ignore[no-untyped-def]
    no = api.submit(region="HK")
    api.to_approval(no)
    assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
    assert api.approve("approver2", no, "reject", "100000", 12).status_code == 200
    return no


# --- listing -----------------------------------------------------------------------


def test_candidate_task_lists_the_fields_of_the_contract(api):
    no = api.submit(region="HK")
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    assert set(FIELDS) <= set(task)
    assert task["title"]
    assert (task["process_key"], task["process_version"]) == ("loan_lifecycle", 1)
    assert (task["assignee_id"], task["candidate_role"], task["team_id"]) == (
        None,
        "team_lead",
        team_id(api, "lead_hka"),
    )
    created, due = datetime.fromisoformat(task["created_at"]), datetime.fromisoformat(task["due_at"])
    assert created.utcoffset() is not None
    assert due - created == timedelta(days=1)


def test_lead_sees_assignment_only_for_applications_of_the_team(api):
    hk, sy, qh = (api.submit(region=r) for r in ("HK", "SY", "QH"))
    for scope in ("candidate", "team"):
        items = tasks(api, "lead_hka", scope)
        assert keys_for(items, hk) == ["assign_officer"], scope
        assert keys_for(items, sy) == [] and keys_for(items, qh) == [], scope
    assert keys_for(tasks(api, "lead_sya", "candidate"), sy) == ["assign_officer"]


def test_assigned_task_is_in_the_officers_own_list_and_the_leads_team_list(api):
    no = api.submit(region="HK")
    visit = assigned(api, no)
    officer = api.user_id("officer_hka1")
    assert visit["assignee_id"] == officer
    assert visit["candidate_role"] is None
    assert keys_for(tasks(api, "lead_hka", "team"), no) == ["onsite_visit"]
    assert keys_for(tasks(api, "lead_hka", "mine"), no) == []
    assert keys_for(tasks(api, "officer_hka1", "candidate"), no) == []
    assert keys_for(tasks(api, "officer_hka2", "mine"), no) == []


def test_completed_tasks_are_listed_with_status_completed(api):
    no = api.submit(region="HK")
    assigned(api, no)
    done = [t for t in tasks(api, "lead_hka", "mine", "completed") if t["application_no"] == no]
    assert [t["task_key"] for t in done] == ["assign_officer"]
    assert done[0]["assignee_id"] == api.user_id("lead_hka")


# --- claim, unclaim, assign -------------------------------------------------------------


def test_supervisor_claims_a_disputed_decision_and_nobody_else_can_take_it(api):
    no = disputed(api)
    task = api.task("supervisor", no, "supervisor_decide", "candidate")
    claimed = api.post("supervisor", f"/api/v1/tasks/{task['id']}/claim")
    assert claimed.status_code == 200, claimed.get_json()
    assert claimed.get_json()["assignee_id"] == api.user_id("supervisor")
    assert keys_for(tasks(api, "supervisor", "mine"), no) == ["supervisor_decide"]
    assert keys_for(tasks(api, "supervisor", "candidate"), no) == []
    assert api.post("lead_hka", f"/api/v1/tasks/{task['id']}/claim").status_code == 409


def test_a_supervisor_who_lost_the_task_to_a_colleague_is_told_it_is_taken_not_that_it_is_not_theirs(fresh, api):
    """api.md: 409 when a task is no longer open or already claimed. A second supervisor
    cannot see a task a colleague holds (supervisors have no team view), and was told 403
    "not yours", where a lead who sees it is told 409."""
    from sqlalchemy import select

    from app.auth.services import hash_password
    from app.extensions import db
    from app.models import User

    with fresh.app_context():
        first = db.session.scalar(select(User).where(User.username == "supervisor"))
        second = User(username="supervisor2", display_name="第二位主管", password_hash=hash_password("demo1234"))
        second.roles = list(first.roles)
        db.session.add(second)
        db.session.commit()
    no = disputed(api)
    task = api.task("supervisor", no, "supervisor_decide", "candidate")
    assert api.post("supervisor", f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    form = {"decision": "approve", "amount": "90000", "term_months": 12, "comment": ""}
    for action, body in (("claim", None), ("complete", form)):
        lost = api.post("supervisor2", f"/api/v1/tasks/{task['id']}/{action}", json=body)
        assert (lost.status_code, lost.get_json()["error"]["message"]) == (409, "任务已被他人领取"), action
    assert api.get("supervisor2", f"/api/v1/tasks/{task['id']}").status_code == 403  # still not shown to them
    assert api.post("supervisor", f"/api/v1/tasks/{task['id']}/complete", json=form).status_code == 200
    ended = api.post("supervisor2", f"/api/v1/tasks/{task['id']}/complete", json=form)
    assert (ended.status_code, ended.get_json()["error"]["message"]) == (409, "任务已结束")


def test_supervisor_unclaims_and_the_task_returns_to_the_pool(api):
    no = disputed(api)
    task = api.task("supervisor", no, "supervisor_decide", "candidate")
    assert api.post("supervisor", f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    released = api.post("supervisor", f"/api/v1/tasks/{task['id']}/unclaim")
    assert released.status_code == 200, released.get_json()
    assert released.get_json()["assignee_id"] is None
    assert keys_for(tasks(api, "supervisor", "candidate"), no) == ["supervisor_decide"]
    assert keys_for(tasks(api, "supervisor", "mine"), no) == []
    again = api.post("supervisor", f"/api/v1/tasks/{task['id']}/unclaim")  # nobody holds it now: a state conflict
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"


def test_lead_reassigns_a_visit_to_another_officer_of_the_team(api):
    no = api.submit(region="HK")
    visit = assigned(api, no)
    response = api.post(
        "lead_hka", f"/api/v1/tasks/{visit['id']}/assign", json={"user_id": api.user_id("officer_hka2")}
    )
    assert response.status_code == 200, response.get_json()
    assert keys_for(tasks(api, "officer_hka2", "mine"), no) == ["onsite_visit"]
    assert keys_for(tasks(api, "officer_hka1", "mine"), no) == []
    done = api.post("officer_hka2", f"/api/v1/tasks/{visit['id']}/complete", json=VISIT)
    assert done.status_code == 200, done.get_json()
    assert keys_for(tasks(api, "officer_hka2", "mine"), no) == ["collect_materials"]
    assert api.get("officer_hka2", f"/api/v1/applications/{no}").status_code == 200
    assert api.get("officer_hka1", f"/api/v1/applications/{no}").status_code == 404
    trail = api.get("lead_hka", f"/api/v1/tasks/{visit['id']}").get_json()["assignments"]
    officers = api.user_id("officer_hka1"), api.user_id("officer_hka2")
    assert [(a["action"], a["by_id"], a["previous_assignee_id"], a["assignee_id"]) for a in trail] == [
        ("assign", api.user_id("lead_hka"), *officers)
    ]


def test_a_task_shows_who_claimed_and_gave_it_back(api):
    no = api.submit(region="HK")
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    assert api.post("lead_hka", f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    assert api.post("lead_hka", f"/api/v1/tasks/{task['id']}/unclaim").status_code == 200
    trail = api.get("lead_hka", f"/api/v1/tasks/{task['id']}").get_json()["assignments"]
    lead = api.user_id("lead_hka")
    assert [(a["action"], a["assignee_id"], a["previous_assignee_id"]) for a in trail] == [
        ("claim", lead, None),
        ("unclaim", None, lead),
    ]
    assert all(a["at"].endswith("+00:00") for a in trail)


def test_an_assignment_refusal_says_what_is_wrong_with_the_member(api):
    no = api.submit(region="HK")
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    path = f"/api/v1/tasks/{task['id']}/assign"
    other_team = api.post("lead_hka", path, json={"user_id": api.user_id("lead_sya")}).get_json()["error"]
    assert other_team["fields"]["user_id"] == ["不是本任务所属团队的成员 (not a member of this task's team)"]
    no_role = api.post("lead_hka", path, json={"user_id": api.user_id("officer_hka1")}).get_json()["error"]
    assert no_role["message"] == "该成员没有此任务所需的角色"
    unknown = api.post("lead_hka", path, json={"user_id": 99999}).get_json()["error"]
    assert unknown["message"] == "分配对象不存在或已停用"


def test_a_named_approvers_task_cannot_be_handed_to_anyone_else(api):
    no = api.submit(region="HK")
    api.to_approval(no)
    task = api.task("approver1", no, "approve")
    for user in ("lead_hka", "officer_hka1", "approver2"):
        response = api.post("lead_hka", f"/api/v1/tasks/{task['id']}/assign", json={"user_id": api.user_id(user)})
        assert response.status_code == 409
    assert api.task("approver1", no, "approve")["assignee_id"] == api.user_id("approver1")


def test_a_supervisor_task_goes_only_to_a_supervisor(api, fresh):
    no = api.submit(region="HK")
    api.to_approval(no)
    api.approve("approver1", no, "approve", "100000", 12)
    api.approve("approver2", no, "reject", "100000", 12)
    task = api.task("supervisor", no, "supervisor_decide", "candidate")
    response = api.post("lead_hka", f"/api/v1/tasks/{task['id']}/assign", json={"user_id": api.user_id("lead_hka")})
    assert response.status_code in (403, 422)


def test_lead_cannot_assign_to_an_officer_of_another_team(api):
    no = api.submit(region="HK")
    visit = assigned(api, no)
    response = api.post(
        "lead_hka", f"/api/v1/tasks/{visit['id']}/assign", json={"user_id": api.user_id("officer_sya1")}
    )
    assert response.status_code == 422
    assert "user_id" in response.get_json()["error"]["fields"]
    assert api.task("officer_hka1", no, "onsite_visit")["id"] == visit["id"]


def test_a_pool_task_refused_to_a_member_without_its_role_names_the_role_as_staff_know_it(api):
    no = api.submit(region="HK")
    pool = api.task("lead_hka", no, "assign_officer", "candidate")
    response = api.post("lead_hka", f"/api/v1/tasks/{pool['id']}/assign", json={"user_id": api.user_id("officer_hka1")})
    assert response.status_code == 422
    message = response.get_json()["error"]["fields"]["user_id"][0]
    assert "团队主管" in message, message


# --- completing ------------------------------------------------------------------------


def test_completing_a_task_twice_is_a_conflict(api):
    no = api.submit(region="HK")
    visit = assigned(api, no)
    assert api.post("officer_hka1", f"/api/v1/tasks/{visit['id']}/complete", json=VISIT).status_code == 200
    again = api.post("officer_hka1", f"/api/v1/tasks/{visit['id']}/complete", json=VISIT)
    assert again.status_code == 409


def test_completing_someone_elses_task_is_forbidden(api):
    no = api.submit(region="HK")
    visit = assigned(api, no)
    response = api.post("lead_hka", f"/api/v1/tasks/{visit['id']}/complete", json=VISIT)
    assert response.status_code == 403
    assert api.post("officer_hka2", f"/api/v1/tasks/{visit['id']}/complete", json=VISIT).status_code == 403
    assert api.task("officer_hka1", no, "onsite_visit")["id"] == visit["id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"term_months": 12.5}, "term_months"),
        ({"term_months": "12"}, "term_months"),
        ({"term_months": 0}, "term_months"),
        ({"decision": "maybe"}, "decision"),
    ],
)
def test_invalid_approval_is_refused_naming_the_field(api, change, field):
    no = api.submit(region="HK")
    api.to_approval(no)
    form = {"decision": "approve", "amount": "100000", "term_months": 12, "comment": "", **change}
    response = api.complete("approver1", no, "approve", form)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert api.task("approver1", no, "approve")["assignee_id"] == api.user_id("approver1")


def test_assigning_an_officer_of_another_team_is_refused(api):
    no = api.submit(region="HK")
    response = api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_sya1")}, "candidate")
    assert response.status_code == 422
    assert "officer_id" in response.get_json()["error"]["fields"]
    assert api.application("lead_hka", no)["stage"] == "pending_assignment"


# --- internal network ------------------------------------------------------------------


def approve_from(api, no: str, environ: dict, headers: dict | None = None):  # type: ignore[no-untyped-def]
    task = api.task("approver1", no, "approve")
    form = {"decision": "approve", "amount": "100000", "term_months": 12, "comment": ""}
    return api.client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json=form,
        headers={**api.headers("approver1"), **(headers or {})},
        environ_base=environ,
    )


def test_approval_from_outside_the_internal_network_is_forbidden(api):
    no = api.submit(region="HK")
    api.to_approval(no)
    assert approve_from(api, no, EXTERNAL).status_code == 403
    assert api.task("approver1", no, "approve")["assignee_id"] == api.user_id("approver1")


def test_the_task_page_offers_approval_only_inside_the_internal_network(api):
    no = api.submit(region="HK")
    api.to_approval(no)
    task = api.task("approver1", no, "approve")
    headers = api.headers("approver1")
    outside = api.client.get(f"/api/v1/tasks/{task['id']}", headers=headers, environ_base=EXTERNAL).get_json()
    inside = api.client.get(f"/api/v1/tasks/{task['id']}", headers=headers, environ_base=INTERNAL).get_json()
    assert (outside["may_complete"], inside["may_complete"]) == (False, True)


def test_a_lowercase_bearer_scheme_is_accepted(api):
    token = api.headers("gm")["Authorization"].split(" ", 1)[1]
    for header in (f"bearer {token}", f"BEARER  {token}"):
        assert api.client.get("/api/v1/tasks", headers={"Authorization": header}).status_code == 200, header
    assert api.client.get("/api/v1/tasks", headers={"Authorization": f"Basic {token}"}).status_code == 401


def test_approval_from_the_internal_network_is_accepted(api):
    no = api.submit(region="HK")
    api.to_approval(no)
    response = approve_from(api, no, INTERNAL)
    assert response.status_code == 200, response.get_json()


def test_forwarded_for_header_does_not_make_an_external_caller_internal(api):
    no = api.submit(region="HK")
    api.to_approval(no)
    response = approve_from(api, no, EXTERNAL, {"X-Forwarded-For": "10.0.0.1"})
    assert response.status_code == 403


def test_field_work_is_not_limited_to_the_internal_network(api):
    no = api.submit(region="HK")
    visit = assigned(api, no)
    response = api.client.post(
        f"/api/v1/tasks/{visit['id']}/complete", json=VISIT, headers=api.headers("officer_hka1"), environ_base=EXTERNAL
    )
    assert response.status_code == 200, response.get_json()


# --- concurrency ---------------------------------------------------------------------


def test_concurrent_completions_of_one_task_let_exactly_one_through(fresh, api):
    no = api.submit(region="HK")
    visit = assigned(api, no)
    headers = api.headers("officer_hka1")
    start = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def complete() -> None:
        client = fresh.test_client()
        start.wait()
        response = client.post(f"/api/v1/tasks/{visit['id']}/complete", json=VISIT, headers=headers)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=complete) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200] + [409] * 19
    assert api.application("lead_hka", no)["stage"] == "collecting"
    assert keys_for(tasks(api, "officer_hka1", "mine"), no) == ["collect_materials"]


@pytest.mark.skipif(
    not database_url().startswith("postgresql"),
    reason="SQLite runs one writing transaction at a time (BEGIN IMMEDIATE): the two cannot interleave",
)
def test_a_reassignment_committed_while_the_old_officer_completes_wins(fresh, api, monkeypatch):
    """The officer's right to complete is checked on the row read first; if the lead hands
    the visit to a colleague before the completion closes the row, the completion is a
    409 and the colleague owns the visit (both answered 200 and the hand-over was lost)."""
    from app.tasks import services
    from app.workflow import runtime
    from tests.conftest import make_app

    no = api.submit(region="HK")
    visit = assigned(api, no)
    original = runtime.complete_user_task
    lead = make_app().test_client()  # another app: its own context and session, as another web node
    handed: list[int] = []

    def the_lead_hands_it_over_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        response = lead.post(
            f"/api/v1/tasks/{visit['id']}/assign",
            json={"user_id": api.user_id("officer_hka2")},
            headers=api.headers("lead_hka"),
        )
        handed.append(response.status_code)
        return original(*args, **kwargs)

    monkeypatch.setattr(services.runtime, "complete_user_task", the_lead_hands_it_over_first)
    late = api.post("officer_hka1", f"/api/v1/tasks/{visit['id']}/complete", json=VISIT)
    monkeypatch.undo()
    assert handed == [200]
    assert late.status_code == 409 and "改派" in late.get_json()["error"]["message"]
    assert keys_for(tasks(api, "officer_hka2", "mine"), no) == ["onsite_visit"]
    assert api.post("officer_hka2", f"/api/v1/tasks/{visit['id']}/complete", json=VISIT).status_code == 200
    assert keys_for(tasks(api, "officer_hka2", "mine"), no) == ["collect_materials"]


def test_assigning_and_completing_one_task_at_once_never_deadlocks(fresh, api):
    """A lead hands the visit over while the officer completes it, many times: one of the
    two wins, the other is refused, never a 5xx (they took the same rows in opposite
    orders, and PostgreSQL aborted one as a deadlock: a 503)."""
    officer2 = api.user_id("officer_hka2")

    def run(statuses: dict[str, int], name: str, username: str, path: str, body: dict) -> None:  # type: ignore[type-arg]
        response = clients[name].post(path, json=body, headers=api.headers(username))
        statuses[name] = response.status_code
        if response.status_code == 409:
            refusals.append(response.get_json()["error"]["message"])

    refusals: list[str] = []
    clients = {"complete": fresh.test_client(), "assign": fresh.test_client()}
    for _ in range(8):
        no = api.submit(region="HK")
        visit = assigned(api, no)
        statuses: dict[str, int] = {}
        at_once(
            partial(run, statuses, "complete", "officer_hka1", f"/api/v1/tasks/{visit['id']}/complete", VISIT),
            partial(run, statuses, "assign", "lead_hka", f"/api/v1/tasks/{visit['id']}/assign", {"user_id": officer2}),
        )
        # the completion first: the hand-over finds the task ended (409); the hand-over
        # first: the old officer's task is no longer theirs (403, or 409 when it changed
        # between the check and the close)
        assert statuses in (
            {"complete": 200, "assign": 409},
            {"assign": 200, "complete": 403},
            {"assign": 200, "complete": 409},
        ), statuses
        owner = "officer_hka1" if statuses["complete"] == 200 else "officer_hka2"
        expected = ["collect_materials"] if owner == "officer_hka1" else ["onsite_visit"]
        assert keys_for(tasks(api, owner, "mine"), no) == expected
    # each 409 tells the task's own state, never a transaction aborted as a deadlock
    assert set(refusals) <= {"任务已结束", "任务已被他人处理", "任务已被改派或退回，请刷新后重试"}, refusals


def test_claiming_an_approval_task_from_outside_the_internal_network_is_refused(api):
    no = api.submit()
    api.to_approval(no)
    api.approve("approver1", no, "approve", "100000", 12)
    api.approve("approver2", no, "reject", "100000", 12)
    task = api.task("supervisor", no, "supervisor_decide", "candidate")
    outside = api.client.post(
        f"/api/v1/tasks/{task['id']}/claim",
        headers=api.headers("supervisor"),
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert outside.status_code == 403
    assert api.post("supervisor", f"/api/v1/tasks/{task['id']}/claim").status_code == 200


def test_behind_one_trusted_proxy_the_forwarded_client_address_decides(fresh):
    from tests.conftest import Api, make_app

    proxied = Api(make_app(YDX_TRUSTED_PROXIES=1).test_client())
    no = proxied.submit()
    proxied.to_approval(no)
    task = proxied.task("approver1", no, "approve")
    form = {"decision": "approve", "amount": "100000", "term_months": 12, "comment": ""}
    outside = proxied.client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json=form,
        headers={**proxied.headers("approver1"), "X-Forwarded-For": "203.0.113.7"},
    )
    assert outside.status_code == 403
    junk = proxied.client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json=form,
        headers={**proxied.headers("approver1"), "X-Forwarded-For": "10.8.0.2x"},
    )
    assert junk.status_code == 403  # no address: never internal
    inside = proxied.client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json=form,
        headers={**proxied.headers("approver1"), "X-Forwarded-For": "203.0.113.7, 10.8.0.2:40123"},
    )
    assert inside.status_code == 200


def test_approvers_answering_at_the_same_moment_lose_no_answer(fresh, api):
    """Three approvers of QH-A complete their parallel tasks at once: every answer is kept
    and the rules see all three amounts."""
    no = api.submit(region="QH")
    api.to_approval(no, lead="lead_qha", officer="officer_qha1")
    answers = {"approver1": "100000", "approver2": "85000", "approver3": "70000"}
    calls = []
    for user, amount in answers.items():
        task = api.task(user, no, "approve")
        form = {"decision": "approve", "amount": amount, "term_months": 12, "comment": ""}
        calls.append((f"/api/v1/tasks/{task['id']}/complete", api.headers(user), form))
    start = threading.Barrier(len(calls))
    statuses: list[int] = []

    def complete(path: str, headers: dict[str, str], form: dict[str, object]) -> None:
        client = fresh.test_client()
        start.wait()
        statuses.append(client.post(path, json=form, headers=headers).status_code)

    threads = [threading.Thread(target=complete, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 200]
    decision = api.application("lead_qha", no)["decision"]
    assert (decision["amount_strategy"], decision["final_amount"]) == ("median", "85000.00")


def test_my_inbox_pages_filters_and_counts(api):
    """`scope=mine` pages, filters by application/key/status and counts like every scope."""
    numbers = [api.submit(region="HK") for _ in range(3)]
    for no in numbers:
        assigned(api, no)
    first_no = numbers[0]
    assert api.complete("officer_hka1", first_no, "onsite_visit", VISIT).status_code == 200

    def page(query: str) -> dict:
        response = api.get("officer_hka1", f"/api/v1/tasks?scope=mine&{query}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    open_ones = page("status=open&per_page=2&page=1")
    assert len(open_ones["items"]) == 2 and open_ones["total"] == 3
    rest = page("status=open&per_page=2&page=2")
    assert len(rest["items"]) == 1 and rest["total"] == 3
    for number in (3, 9):
        past_the_end = page(f"status=open&per_page=2&page={number}")
        assert past_the_end == {"items": [], "total": 3, "page": number, "per_page": 2}, number
    seen = {t["id"] for t in open_ones["items"]} | {t["id"] for t in rest["items"]}
    assert len(seen) == 3
    done = page("status=completed")["items"]
    assert [(t["application_no"], t["task_key"]) for t in done] == [(first_no, "onsite_visit")]
    everything = page(f"status=all&application_no={first_no}")["items"]
    assert sorted(t["task_key"] for t in everything) == ["collect_materials", "onsite_visit"]
    only = page(f"application_no={first_no}&task_key=collect_materials")["items"]
    assert [t["status"] for t in only] == ["open"]
    assert page("task_key=approve")["items"] == []
    assert all(t["assignee_id"] == api.user_id("officer_hka1") for t in page("status=all&per_page=200")["items"])


@pytest.mark.parametrize(
    ("roles", "teams", "regions", "open_count"),
    [
        ({"team_lead"}, "HK-A", (), 1),  # task.work team, one team
        ({"team_lead"}, ("HK-A", "SY-A"), (), 2),  # two teams
        ({"team_lead", "supervisor"}, "HK-A", (), 2),  # two roles, the widest scope (all) wins
        ({"supervisor"}, (), (), 0),  # all, but no supervisor task yet
        ({"team_lead"}, (), ("HK",), 0),  # team scope without a team: nothing
        ({"officer"}, "HK-A", (), 0),  # own: never a candidate
    ],
)
def test_the_prebuilt_candidate_list_finds_exactly_the_rows_of_the_visibility_rule(
    fresh, api, roles, teams, regions, open_count
):
    """`scope=candidate` runs as a prebuilt statement per shape; it must select the same rows
    as the general visibility clause for every kind of caller."""
    from sqlalchemy import select

    from app.auth.permissions import Caller
    from app.extensions import db
    from app.models import HumanTask, Region, Team
    from app.tasks import services

    first = api.submit()
    api.submit(region="SY", id_number="110105194912310038", phone="13900139000")
    api.complete("lead_hka", first, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    api.submit(id_number="11010519491231002X", phone="13900139001")
    with fresh.app_context():
        team_ids = {t.code: t.id for t in db.session.scalars(select(Team))}
        region_ids = {r.code: r.id for r in db.session.scalars(select(Region))}
        names = (teams,) if isinstance(teams, str) else teams
        who = Caller(
            999,
            frozenset(roles),
            frozenset(team_ids[name] for name in names),
            frozenset(region_ids[code] for code in regions),
        )
        for status in ("open", "all", "completed"):
            expected = db.session.scalars(
                select(HumanTask.id)
                .where(
                    services.visibility(who, "candidate"), *([HumanTask.status == status] if status != "all" else [])
                )
                .order_by(*services._INBOX_ORDER)
            ).all()
            items, total = services.list_tasks(who, "candidate", status, 1, 200)
            assert [task.id for task in items] == expected and total == len(expected)
            if status == "open":
                assert len(expected) == open_count
            for task in items:
                one, _ = services.list_tasks(
                    who, "candidate", status, 1, 5, application_no=task.application_no, task_key=task.task_key
                )
                assert [row.id for row in one] == [task.id]


def _task_detail(api, username: str, task_id: int) -> dict:  # type: ignore[no-untyped-def]
    response = api.get(username, f"/api/v1/tasks/{task_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_officer_visiting_the_customer_sees_their_name_and_phone_in_the_task(fresh, api):
    from sqlalchemy import select

    from app.extensions import db
    from app.models import AuditLog

    no = api.submit(region="HK", name="王小明", phone="13912345678")
    visit = assigned(api, no)
    shown = _task_detail(api, "officer_hka1", visit["id"])["data"]["application"]
    assert shown["applicant"] == {"name": "王小明", "phone": "13912345678", "masked": False}
    assert shown["customer"]["masked"] is True  # the customer record stays masked
    assert api.application("officer_hka1", no)["applicant"]["masked"] is True  # and so does the detail
    lead_view = _task_detail(api, "lead_hka", visit["id"])["data"]["application"]
    assert lead_view["applicant"]["phone"] == "139****5678"  # not the performer
    with fresh.app_context():
        audits = db.session.scalars(select(AuditLog.object_id).where(AuditLog.action == "customer.contact_view"))
        assert list(audits) == [no]
    assert api.complete("officer_hka1", no, "onsite_visit", VISIT).status_code == 200
    done = _task_detail(api, "officer_hka1", visit["id"])["data"]["application"]
    assert done["applicant"]["masked"] is True  # a completed task no longer needs it


def test_an_officer_taken_off_a_case_no_longer_sees_it_through_an_old_task(api):
    no = api.submit(region="HK")
    visit = assigned(api, no)
    assert api.complete("officer_hka1", no, "onsite_visit", VISIT).status_code == 200
    collect = api.task("officer_hka1", no, "collect_materials")
    handed = api.post(
        "lead_hka", f"/api/v1/tasks/{collect['id']}/assign", json={"user_id": api.user_id("officer_hka2")}
    )
    assert handed.status_code == 200, handed.get_json()
    assert api.get("officer_hka1", f"/api/v1/applications/{no}").status_code == 404
    old = _task_detail(api, "officer_hka1", visit["id"])
    assert "application" not in old["data"]


def test_the_lead_assigning_an_officer_is_offered_the_teams_officers(api):
    no = api.submit(region="HK")
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    field = _task_detail(api, "lead_hka", task["id"])["form"]["fields"][0]
    assert field["name"] == "officer_id"
    assert [choice["value"] for choice in field["choices"]] == sorted(
        [api.user_id("officer_hka1"), api.user_id("officer_hka2")]
    )
    assert all(choice["label"] for choice in field["choices"])


def test_an_approval_form_states_the_products_range_and_when_amount_and_term_are_needed(api):
    no = api.submit(region="HK", product_code="BIZ-IF")
    api.to_approval(no)
    task = api.task("approver1", no, "approve")
    fields = {f["name"]: f for f in _task_detail(api, "approver1", task["id"])["form"]["fields"]}
    assert fields["amount"]["required_when"] == {"decision": "approve"}
    too_much = {"decision": "approve", "amount": str(int(Decimal(fields["amount"]["max"])) + 1), "term_months": 12}
    response = api.post("approver1", f"/api/v1/tasks/{task['id']}/complete", json={**too_much, "comment": ""})
    assert response.status_code == 422 and "amount" in response.get_json()["error"]["fields"]
    assert fields["term_months"]["min"] >= 1 and fields["term_months"]["max"] >= 12


def test_every_key_a_task_form_sends_is_in_the_openapi_document(api):
    documented = api.client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert documented["TaskDetail"]["properties"]["form"] == {"$ref": "#/components/schemas/Form"}
    field_keys = set(documented["FormField"]["properties"])
    no = api.submit(region="HK")
    assign = api.task("lead_hka", no, "assign_officer", "candidate")
    forms = [_task_detail(api, "lead_hka", assign["id"])["form"]]
    api.to_approval(no)
    approve = api.task("approver1", no, "approve")
    forms.append(_task_detail(api, "approver1", approve["id"])["form"])
    sent = {key for form in forms for field in form["fields"] for key in field}
    assert {"choices", "min", "max", "required_when"} <= sent
    assert sent <= field_keys, sent - field_keys


@pytest.mark.parametrize("user", ["analyst", "admin"])
def test_every_staff_member_has_an_inbox(api, user):
    """api.md: the task inbox is for all staff; analysts and admins find theirs empty."""
    api.submit(region="HK")
    for scope in ("mine", "candidate", "team"):
        response = api.get(user, f"/api/v1/tasks?scope={scope}")
        assert response.status_code == 200, (scope, response.get_json())
        assert response.get_json() == {"items": [], "total": 0, "page": 1, "per_page": 20}
    assert api.get(user, "/api/v1/tasks").get_json()["total"] == 0


def test_a_task_that_just_arrived_is_on_the_first_page_however_full_the_pool(api):
    """Newest first (after escalated ones), as Camunda's and Flowable's task lists: with 25
    applications waiting, the one just submitted is the first item of the first page."""
    numbers = [api.submit() for _ in range(25)]
    page = api.get("lead_hka", "/api/v1/tasks?scope=candidate").get_json()
    assert page["total"] == 25 and len(page["items"]) == 20
    assert [t["application_no"] for t in page["items"][:3]] == numbers[::-1][:3]
    everything = api.get("lead_hka", "/api/v1/tasks?scope=candidate&per_page=1000")  # the largest page, not a 422
    assert everything.status_code == 200 and len(everything.get_json()["items"]) == 25
    assert everything.get_json()["per_page"] == 200  # and the client is told the size it got
