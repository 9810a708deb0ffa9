"""A task past its due time is escalated once: it rises to the top and is audited."""

from datetime import timedelta

from sqlalchemy import select, update


def test_overdue_task_is_escalated_once_and_shown_first(fresh, api):
    from app.extensions import db
    from app.models import AuditLog, HumanTask
    from app.models.base import utcnow
    from app.scheduler import run_periodic_jobs

    late, on_time = api.submit(), api.submit(id_number="110105194912310038", phone="13900139000")
    late_task = api.task("lead_hka", late, "assign_officer", "candidate")
    with fresh.app_context():
        db.session.execute(
            update(HumanTask).where(HumanTask.id == late_task["id"]).values(due_at=utcnow() - timedelta(hours=1))
        )
        db.session.commit()
        assert run_periodic_jobs()["escalated"] == 1
        assert run_periodic_jobs()["escalated"] == 0
        audits = db.session.scalars(select(AuditLog).where(AuditLog.action == "task.overdue")).all()
        assert [a.object_id for a in audits] == [str(late_task["id"])]
        # Its escalated priority, not its due time, keeps it on top (pushed past the other's due).
        db.session.execute(
            update(HumanTask).where(HumanTask.id == late_task["id"]).values(due_at=utcnow() + timedelta(days=10))
        )
        db.session.commit()
    items = api.get("lead_hka", "/api/v1/tasks?scope=candidate").get_json()["items"]
    assert items[0]["application_no"] == late
    assert items[0]["escalated_at"] is not None
    assert {i["application_no"] for i in items} == {late, on_time}
