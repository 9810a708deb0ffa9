"""The inbox answers with `task_json`, a hand-written twin of the documented `TaskSchema`:
both must give the same JSON for every kind of row a client can see."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.extensions import db
from app.models import HumanTask
from app.models.base import utcnow
from app.tasks.schemas import TaskSchema, task_json
from app.tasks.services import _SELECT_TASKS, TaskRow


def _rows() -> list[TaskRow]:
    return [TaskRow(row) for row in db.session.execute(_SELECT_TASKS.order_by(HumanTask.id)).all()]


def test_task_json_is_what_the_schema_dumps_for_open_claimed_completed_and_overdue_rows(api, fresh):
    no = api.submit()
    api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    api.submit(id_number="110105194912310038", phone="13900139000")  # an unclaimed candidate task
    with fresh.app_context():
        overdue = db.session.scalars(select(HumanTask.id).where(HumanTask.task_key == "onsite_visit")).one()
        db.session.execute(
            update(HumanTask)
            .where(HumanTask.id == overdue)
            .values(due_at=utcnow() - timedelta(hours=1), escalated_at=utcnow(), claimed_at=utcnow())
        )
        db.session.commit()
        rows = _rows()
        assert {row.status for row in rows} == {"open", "completed"}
        assert any(task_json(row)["overdue"] for row in rows)
        schema = TaskSchema()
        for row in rows:
            assert task_json(row) == schema.dump(row)


def test_the_inbox_list_and_the_task_verbs_answer_in_the_schemas_shape(api):
    no = api.submit()
    listed = api.get("lead_hka", f"/api/v1/tasks?scope=candidate&application_no={no}").get_json()
    assert listed["total"] == 1
    assert set(listed["items"][0]) == set(TaskSchema().fields)
    done = api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    body = done.get_json()
    assert set(body) == set(TaskSchema().fields)
    assert body["status"] == "completed" and body["completed_at"].endswith("+00:00")
