"""Inbox behaviour a client relies on beyond the happy path."""

from conftest import MEETING_AT, VISITED_AT, VISITED_NAIVE_TEXT


def test_a_colleagues_task_and_another_teams_task_are_forbidden_and_an_unknown_one_is_not_found(api):
    hk, sy = api.submit(), api.submit(region="SY", id_number="110105194912310038", phone="13900139000")
    api.complete("lead_hka", hk, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    visit = api.task("officer_hka1", hk, "onsite_visit")
    form = {"visited_at": VISITED_AT, "notes": ""}
    assert api.post("officer_hka2", f"/api/v1/tasks/{visit['id']}/complete", json=form).status_code == 403
    sy_task = api.task("lead_sya", sy, "assign_officer", "candidate")
    refused = api.post("officer_hka2", f"/api/v1/tasks/{sy_task['id']}/complete", json=form)
    assert refused.status_code == 403
    assert "application_no" not in refused.get_data(as_text=True)  # nothing of the task is shown
    assert api.post("officer_hka2", "/api/v1/tasks/987654/complete", json=form).status_code == 404


def test_a_visit_time_without_offset_is_read_as_beijing_time(api, fresh):
    from app.extensions import db
    from app.models import HumanTask

    no = api.submit()
    api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    done = api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_NAIVE_TEXT, "notes": ""})
    assert done.status_code == 200
    with fresh.app_context():
        assert db.session.get(HumanTask, done.get_json()["id"]).form_data["visited_at"] == VISITED_AT


def test_a_rejecting_approver_need_not_name_an_amount(api):
    no = api.submit()
    api.to_approval(no)
    assert api.complete("approver1", no, "approve", {"decision": "reject", "comment": "收入不足"}).status_code == 200
    assert api.complete("approver2", no, "approve", {"decision": "reject", "comment": ""}).status_code == 200
    assert api.application("lead_hka", no)["stage"] == "rejected"


def test_committee_members_may_be_user_ids_or_names(api):
    no = api.submit(region="SY")
    api.to_approval(no, lead="lead_sya", officer="officer_sya1")
    form = {"meeting_at": MEETING_AT, "members": [api.user_id("lead_sya"), "外部专家"]}
    assert api.complete("lead_sya", no, "register_committee", form, "candidate").status_code == 200


def test_information_registered_on_site_is_kept_on_the_customer(api):
    no = api.submit()
    api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_AT})
    info = {"business": "水果批发", "monthly_income": "30000"}
    assert api.complete("officer_hka1", no, "collect_materials", {"customer": info}).status_code == 200
    customer_id = api.application("lead_hka", no)["customer"]["id"]
    assert api.get("lead_hka", f"/api/v1/customers/{customer_id}").get_json()["profile"] == info
