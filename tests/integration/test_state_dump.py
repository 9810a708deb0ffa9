"""The state dump (SpiffWorkflow's encoder mode, app/workflow/specs.py) writes exactly what
the full recursive conversion writes, and loads back to the same state."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.models import ProcessInstance
from app.workflow import specs
from app.workflow.runtime import _process
from tests.conftest import MEETING_AT


def _fully_converted(workflow) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(json.dumps(specs.REGISTRY.convert(workflow), cls=specs._Encoder))


def test_dumped_state_equals_the_full_conversion_and_round_trips(api, fresh):
    no = api.submit()
    api.to_approval(no)
    assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
    assert api.approve("approver2", no, "approve", "95000", 12).status_code == 200  # Decimals, dates in the data
    with fresh.app_context():
        row = db.session.execute(
            select(ProcessInstance.state, ProcessInstance.definition_id).where(ProcessInstance.business_key == no)
        ).one()
        workflow = specs.load_state(_process(row.definition_id), row.state)
        dumped = specs.dump_state(workflow)
        assert json.loads(dumped) == _fully_converted(workflow)
        assert json.loads(specs.dump_state(specs.load_state(_process(row.definition_id), dumped))) == json.loads(dumped)
        assert '"typename":"Decimal"' in dumped


def _both_readings(fresh) -> list[tuple[str, dict, dict]]:  # type: ignore[no-untyped-def]
    """(application, data read from the JSON, data of the rebuilt workflow) per instance."""
    with fresh.app_context():
        rows = db.session.execute(
            select(ProcessInstance.business_key, ProcessInstance.state, ProcessInstance.definition_id)
        ).all()
        return [
            (
                row.business_key,
                specs.newest_data_in_state(row.state),
                specs.newest_data(specs.load_state(_process(row.definition_id), row.state)),
            )
            for row in rows
        ]


def test_reading_data_from_the_stored_state_matches_the_rebuilt_workflow_at_every_step(api, fresh):
    """Views read an instance's data straight from its JSON; after every step of a
    centralized, a disputed and a committee lifecycle that equals the rebuilt workflow's."""
    readings: list[tuple[str, dict, dict]] = []

    def step(response=None) -> None:  # type: ignore[no-untyped-def]
        if response is not None:
            assert response.status_code == 200, response.get_json()
        readings.extend(_both_readings(fresh))

    agreed, disputed = api.submit(region="HK"), api.submit(region="QH", amount="200000", term_months=24)
    step()
    for no in (agreed, disputed):
        api.to_approval(
            no,
            lead="lead_hka" if no == agreed else "lead_qha",
            officer="officer_hka1" if no == agreed else "officer_qha1",
        )
        step()
    step(api.approve("approver1", agreed, "approve", "100000", 12))
    step(api.approve("approver2", agreed, "approve", "95000", 12))
    step(api.approve("approver1", disputed, "approve", "150000", 18))
    step(api.approve("approver2", disputed, "reject", "150000", 18))
    step(api.approve("approver3", disputed, "approve", "120000", 24))
    decision = {"decision": "approve", "amount": "130000", "term_months": 18, "comment": ""}
    step(api.complete("supervisor", disputed, "supervisor_decide", decision, "candidate"))
    committee = api.submit(region="SY")
    api.to_approval(committee, lead="lead_sya", officer="officer_sya1")
    meeting = {"meeting_at": MEETING_AT, "members": ["王委员", "李委员"]}
    step(api.complete("lead_sya", committee, "register_committee", meeting, "candidate"))
    minutes = {"decision": "approve", "amount": "80000", "term_months": 10, "minutes": "同意"}
    step(api.complete("lead_sya", committee, "record_committee_decision", minutes, "candidate"))

    assert len(readings) > 20
    for application_no, from_json, rebuilt in readings:
        assert from_json == rebuilt, application_no
    final = {no: from_json for no, from_json, _ in readings}
    assert isinstance(final[agreed]["decision"]["final_amount"], Decimal)  # typed values come back typed
    assert final[committee]["decision"]["outcome"] == "approved"


def test_the_state_stored_at_start_knows_the_inbox_task_it_opened(api, fresh):
    """Another process (a worker, a second web node) rebuilds the instance from the row: if
    the stored state did not list the tasks already in the inbox, it would open them again."""
    from app.models import HumanTask
    from app.workflow.runtime import OPEN_KEY

    no = api.submit()
    with fresh.app_context():
        task = db.session.scalars(select(HumanTask).where(HumanTask.application_no == no)).one()
        state = db.session.scalar(select(ProcessInstance.state).where(ProcessInstance.id == task.instance_id))
    assert json.loads(state)["data"][OPEN_KEY] == [task.spiff_task_id]
