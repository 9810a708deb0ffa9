"""The state dump (SpiffWorkflow's encoder mode, app/workflow/specs.py) writes exactly what
the full recursive conversion writes, and loads back to the same state."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.extensions import db
from app.models import ProcessInstance
from app.workflow import specs
from app.workflow.runtime import _process


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
