"""The loan lifecycle end to end: committee mode, centralized outcomes, supervisor
escalation, who sees the decision, the stage history and the instance view."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from tests.conftest import MEETING_AT

COMMITTEE = {"meeting_at": MEETING_AT, "members": ["王委员", "李委员", "赵委员"]}


def centralized(api, *answers: tuple[str, str, int]) -> str:  # type: ignore[no-untyped-def]
    """An HK application answered by approver1, approver2 with (decision, amount, term)."""
    no = api.submit(region="HK")
    api.to_approval(no)
    for approver, (decision, amount, term) in zip(("approver1", "approver2"), answers, strict=True):
        response = api.approve(approver, no, decision, amount, term)
        assert response.status_code == 200, response.get_json()
    return no


def supervisor_task(api, no: str) -> dict:  # type: ignore[no-untyped-def]
    task = api.task("supervisor", no, "supervisor_decide", "candidate")
    response = api.get("supervisor", f"/api/v1/tasks/{task['id']}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def supervisor_decides(api, no: str, form: dict):  # type: ignore[no-untyped-def]
    return api.complete("supervisor", no, "supervisor_decide", {"comment": "", **form}, "candidate")


# --- committee mode ------------------------------------------------------------------


def committee_decides(api, decision: dict):  # type: ignore[no-untyped-def]
    """A committee application (SY) registered and decided: (application no, the answer)."""
    no = api.submit(region="SY")
    api.to_approval(no, lead="lead_sya", officer="officer_sya1")
    response = api.complete("lead_sya", no, "register_committee", COMMITTEE, "candidate")
    assert response.status_code == 200, response.get_json()
    return no, api.complete("lead_sya", no, "record_committee_decision", decision, "candidate")


def committee_approved(api) -> str:  # type: ignore[no-untyped-def]
    decision = {"decision": "approve", "amount": "80000", "term_months": 10, "minutes": "一致同意"}
    no, response = committee_decides(api, decision)
    assert response.status_code == 200, response.get_json()
    return no


def test_committee_decision_disburses_the_loan(api):
    no = committee_approved(api)
    detail = api.application("lead_sya", no)
    assert detail["stage"] == "disbursement"
    assert detail["loan_id"] is not None
    assert detail["decision"]["outcome"] == "approved"
    assert Decimal(detail["decision"]["final_amount"]) == Decimal("80000")
    assert detail["decision"]["final_term"] == 10
    assert detail["committee"]["meeting"]["members"] == COMMITTEE["members"]


def test_committee_rejection_rejects_the_application_without_a_loan(api):
    no = api.submit(region="SY")
    api.to_approval(no, lead="lead_sya", officer="officer_sya1")
    assert api.complete("lead_sya", no, "register_committee", COMMITTEE, "candidate").status_code == 200
    decision = {"decision": "reject", "minutes": "经营流水不足"}
    response = api.complete("lead_sya", no, "record_committee_decision", decision, "candidate")
    assert response.status_code == 200, response.get_json()
    detail = api.application("lead_sya", no)
    assert (detail["stage"], detail["loan_id"], detail["decision"]["outcome"]) == ("rejected", None, "rejected")
    # a rejection decides no amount or term, so it names no strategy (as a centralized one)
    assert {k: detail["decision"][k] for k in ("final_amount", "final_term", "amount_strategy", "term_strategy")} == {
        "final_amount": None,
        "final_term": None,
        "amount_strategy": None,
        "term_strategy": None,
    }


def test_committee_must_register_its_members(api):
    no = api.submit(region="SY")
    api.to_approval(no, lead="lead_sya", officer="officer_sya1")
    response = api.complete("lead_sya", no, "register_committee", {**COMMITTEE, "members": []}, "candidate")
    assert response.status_code == 422
    assert "members" in response.get_json()["error"]["fields"]


def test_committee_application_waits_for_the_committee_after_the_materials(api):
    no = api.submit(region="SY")
    api.to_approval(no, lead="lead_sya", officer="officer_sya1")
    assert api.application("lead_sya", no)["stage"] == "approval"
    assert api.task("lead_sya", no, "register_committee", "candidate")["candidate_role"] == "team_lead"
    items = api.get("approver1", "/api/v1/tasks?scope=mine").get_json()["items"]
    assert [t for t in items if t["application_no"] == no] == []


def test_committee_decision_is_visible_to_the_assigned_officer(api):
    no = committee_approved(api)
    detail = api.application("officer_sya1", no)
    assert detail["decision"]["outcome"] == "approved"
    assert Decimal(detail["decision"]["final_amount"]) == Decimal("80000")


def test_centralized_decision_is_hidden_from_the_officer(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "95000", 12))
    detail = api.application("officer_hka1", no)
    assert detail["stage"] == "disbursement"
    assert "decision" not in detail


def test_before_the_decision_those_who_may_see_it_read_null_and_the_others_nothing(api):
    no = api.submit()
    api.to_approval(no)
    for user in ("lead_hka", "director_hk", "gm"):
        assert api.application(user, no)["decision"] is None, user
    assert "decision" not in api.application("officer_hka1", no)


def test_centralized_decision_is_visible_to_lead_director_and_general_manager(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "95000", 12))
    for user in ("lead_hka", "director_hk", "gm"):
        decision = api.application(user, no)["decision"]
        assert (decision["final_amount"], decision["amount_strategy"]) == ("95000.00", "lowest"), user


# --- centralized outcomes --------------------------------------------------------------


def test_all_approvers_rejecting_rejects_the_application_without_a_loan(api):
    no = centralized(api, ("reject", "100000", 12), ("reject", "90000", 12))
    detail = api.application("lead_hka", no)
    assert detail["stage"] == "rejected"
    assert detail["loan_id"] is None
    assert detail["decision"]["outcome"] == "rejected"
    items = api.get("supervisor", "/api/v1/tasks?scope=candidate").get_json()["items"]
    assert [t for t in items if t["application_no"] == no] == []


def test_mixed_opinions_go_to_the_supervisor_who_decides_everything(api):
    no = centralized(api, ("approve", "100000", 12), ("reject", "100000", 12))
    task = api.task("supervisor", no, "supervisor_decide", "candidate")
    assert task["candidate_role"] == "supervisor"
    assert task["assignee_id"] is None
    assert supervisor_task(api, no)["data"]["escalated"] == ["amount", "term_months"]

    response = supervisor_decides(api, no, {"decision": "approve", "amount": "70000", "term_months": 9})
    assert response.status_code == 200, response.get_json()
    detail = api.application("lead_hka", no)
    assert detail["stage"] == "disbursement"
    assert (detail["decision"]["final_amount"], detail["decision"]["final_term"]) == ("70000.00", 9)


def test_supervisor_may_reject_a_disputed_application(api):
    no = centralized(api, ("approve", "100000", 12), ("reject", "100000", 12))
    response = supervisor_decides(api, no, {"decision": "reject"})
    assert response.status_code == 200, response.get_json()
    detail = api.application("lead_hka", no)
    assert detail["stage"] == "rejected"
    assert detail["loan_id"] is None


def test_amount_escalation_shows_the_term_already_decided(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "60000", 13))
    shown = supervisor_task(api, no)
    assert shown["data"]["escalated"] == ["amount"]
    assert shown["data"]["loan_term"]["final_term"] == 12
    fields = {f["name"]: f for f in shown["form"]["fields"]}
    assert fields["amount"]["required"] is True
    assert fields["term_months"]["required"] is False
    assert fields["term_months"]["decided"] == 12


def test_supervisor_entering_only_the_escalated_amount_keeps_the_rule_term(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "60000", 13))
    response = supervisor_decides(api, no, {"decision": "approve", "amount": "80000"})
    assert response.status_code == 200, response.get_json()
    decision = api.application("lead_hka", no)["decision"]
    assert (decision["final_amount"], decision["final_term"], decision["term_strategy"]) == ("80000.00", 12, "median")


def test_supervisor_cannot_change_the_term_the_rule_decided(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "60000", 13))
    response = supervisor_decides(api, no, {"decision": "approve", "amount": "80000", "term_months": 36})
    assert response.status_code == 422
    assert "12" in response.get_json()["error"]["fields"]["term_months"][0]
    assert api.application("lead_hka", no)["stage"] == "approval"

    # Sending the decided value back (a form that posts every field) is fine.
    response = supervisor_decides(api, no, {"decision": "approve", "amount": "80000", "term_months": 12})
    assert response.status_code == 200, response.get_json()
    assert api.application("lead_hka", no)["decision"]["final_term"] == 12


def test_supervisor_entering_only_the_escalated_term_keeps_the_rule_amount(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "95000", 24))
    shown = supervisor_task(api, no)
    assert shown["data"]["escalated"] == ["term_months"]
    assert Decimal(str(shown["data"]["loan_amount"]["final_amount"])) == Decimal("95000")

    response = supervisor_decides(api, no, {"decision": "approve", "term_months": 18})
    assert response.status_code == 200, response.get_json()
    decision = api.application("lead_hka", no)["decision"]
    assert (decision["final_amount"], decision["final_term"], decision["amount_strategy"]) == ("95000.00", 18, "lowest")


def test_supervisor_enters_both_when_both_are_escalated(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "60000", 24))
    assert supervisor_task(api, no)["data"]["escalated"] == ["amount", "term_months"]
    missing = supervisor_decides(api, no, {"decision": "approve", "amount": "80000"})
    assert missing.status_code == 422
    assert "term_months" in missing.get_json()["error"]["fields"]

    response = supervisor_decides(api, no, {"decision": "approve", "amount": "80000", "term_months": 18})
    assert response.status_code == 200, response.get_json()
    detail = api.application("lead_hka", no)
    assert detail["stage"] == "disbursement"
    assert (detail["decision"]["final_amount"], detail["decision"]["final_term"]) == ("80000.00", 18)


# --- history and the instance view ------------------------------------------------------


def test_stage_history_records_who_moved_the_application_and_when(api):
    no = centralized(api, ("approve", "100000", 12), ("approve", "80000", 18))
    history = api.application("lead_hka", no)["history"]
    lead, officer, approver2 = (api.user_id(u) for u in ("lead_hka", "officer_hka1", "approver2"))
    assert [(h["stage"], h["actor_id"]) for h in history] == [
        ("pending_assignment", None),
        ("onsite_visit", lead),
        ("collecting", officer),
        ("approval", officer),
        ("disbursement", approver2),
    ]
    times = [datetime.fromisoformat(h["at"]) for h in history]
    assert all(t.utcoffset() is not None for t in times)
    assert times == sorted(times)


def test_process_instance_shows_its_version_and_the_waiting_approvals(api):
    no = api.submit(region="HK")
    api.to_approval(no)
    instance_id = api.application("lead_hka", no)["process_instance_id"]

    response = api.get("analyst", f"/api/v1/process-instances/{instance_id}")
    assert response.status_code == 200, response.get_json()
    view = response.get_json()
    assert (view["process_key"], view["process_version"], view["status"]) == ("loan_lifecycle", 1, "running")
    assert view["version"] == 1 and view["revision"] > 1  # the process version; the state's counter
    assert sorted((t["task_key"], t["assignee_id"]) for t in view["current_tasks"]) == sorted(
        [("approve", api.user_id("approver1")), ("approve", api.user_id("approver2"))]
    )
    assert [h["stage"] for h in view["history"]] == ["pending_assignment", "onsite_visit", "collecting", "approval"]


def test_finished_process_instance_has_no_current_tasks(api):
    no = api.submit(region="HK")
    api.to_approval(no)
    # approver2 answers first: completed tasks are listed in the order they were completed
    assert api.approve("approver2", no, "approve", "95000", 12).status_code == 200
    assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
    instance_id = api.application("lead_hka", no)["process_instance_id"]
    view = api.get("admin", f"/api/v1/process-instances/{instance_id}").get_json()
    assert view["status"] == "completed"
    assert view["current_tasks"] == []
    done = view["completed_tasks"]
    assert [t["completed_at"] for t in done] == sorted(t["completed_at"] for t in done)
    approvals = [t["completed_by_id"] for t in done if t["task_key"] == "approve"]
    assert approvals == [api.user_id("approver2"), api.user_id("approver1")]


def test_process_instances_are_for_analysts_and_admins_only(api):
    no = api.submit(region="HK")
    instance_id = api.application("lead_hka", no)["process_instance_id"]
    assert api.get("lead_hka", f"/api/v1/process-instances/{instance_id}").status_code == 403
    assert api.get("analyst", "/api/v1/process-instances/999999").status_code == 404


def test_an_approver_does_not_see_the_other_approvers_answer(api):
    no = api.submit()
    api.to_approval(no)
    assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
    task = api.task("approver2", no, "approve")
    seen = api.get("approver2", f"/api/v1/tasks/{task['id']}").get_json()["data"]["application"]["approvals"]
    assert seen == []
    own = api.application("approver1", no)["approvals"]
    assert [item["approver_id"] for item in own] == [api.user_id("approver1")]
    assert len(api.application("lead_hka", no)["approvals"]) == 1


def test_a_centralized_team_without_approvers_sends_the_decision_to_the_supervisor(api, fresh):
    from sqlalchemy import delete, select

    from app.extensions import db
    from app.models import Team, team_approvers

    with fresh.app_context():
        team_id = db.session.scalar(select(Team.id).where(Team.code == "HK-A"))
        db.session.execute(delete(team_approvers).where(team_approvers.c.team_id == team_id))
        db.session.commit()
    no = api.submit()
    api.to_approval(no)
    decided = api.complete(
        "supervisor",
        no,
        "supervisor_decide",
        {"decision": "approve", "amount": "50000", "term_months": 6, "comment": ""},
        "candidate",
    )
    assert decided.status_code == 200
    assert api.application("lead_hka", no)["decision"]["final_amount"] == "50000.00"


def test_an_instance_advanced_by_another_process_is_reloaded_from_its_row(api, fresh):
    """Another server process may have advanced the instance since this one cached it:
    the cached copy is then older than the row, and the row's state must be used. Here
    the stale copy lacks approver1's rejection; using it would lose that answer (and the
    version check would refuse the write) instead of sending the case to the supervisor."""
    from app.extensions import db
    from app.models import ProcessInstance
    from app.workflow import live

    no = api.submit()
    api.to_approval(no)
    with fresh.app_context():
        instance_id = db.session.scalar(select(ProcessInstance.id).where(ProcessInstance.business_key == no))
    stale = live.take_any(instance_id)
    assert stale is not None  # this process advanced it last
    assert api.approve("approver1", no, "reject", "100000", 12).status_code == 200  # loaded from the row
    live._entries[instance_id] = stale  # as if this process had missed that advance
    assert api.approve("approver2", no, "approve", "95000", 12).status_code == 200
    assert api.application("lead_hka", no)["stage"] == "approval"
    assert supervisor_task(api, no)["task_key"] == "supervisor_decide"


def test_the_committee_record_falls_due_after_the_meeting_not_before(api):
    from datetime import timedelta

    from tests.conftest import BEIJING

    no = api.submit(region="SY")
    api.to_approval(no, lead="lead_sya", officer="officer_sya1")
    meeting = (datetime.now(BEIJING) + timedelta(days=10)).replace(microsecond=0)
    form = {"meeting_at": meeting.isoformat(), "members": ["王委员"]}
    assert api.complete("lead_sya", no, "register_committee", form, "candidate").status_code == 200
    record = api.task("lead_sya", no, "record_committee_decision", "candidate")
    assert datetime.fromisoformat(record["due_at"]) == meeting + timedelta(days=3)

    earlier = api.submit(region="SY")
    api.to_approval(earlier, lead="lead_sya", officer="officer_sya1")
    assert api.complete("lead_sya", earlier, "register_committee", COMMITTEE, "candidate").status_code == 200
    record = api.task("lead_sya", earlier, "record_committee_decision", "candidate")
    due = datetime.fromisoformat(record["due_at"]) - datetime.fromisoformat(record["created_at"])
    assert due == timedelta(days=3)  # a meeting already held: three days from now
