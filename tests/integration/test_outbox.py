"""The in-process outbox runner: a failing service leaves its row pending with a backoff
and the instance untouched; a retry that succeeds advances the instance; a row that is
already done is never run twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import HumanTask, Outbox
from app.models.base import utcnow
from app.workflow import outbox, registry


def _approvals(application_no: str) -> int:
    return len(
        db.session.scalars(
            select(HumanTask.id).where(HumanTask.application_no == application_no, HumanTask.task_key == "approve")
        ).all()
    )


def test_a_failing_service_is_retried_later_and_then_advances_the_instance(api, fresh, monkeypatch):
    calls: list[str] = []
    real = registry.SERVICES["credit_lookup_service"]

    def unavailable(call):  # type: ignore[no-untyped-def]
        calls.append(call.idempotency_key)
        raise ConnectionError("credit bureau unreachable")

    monkeypatch.setitem(registry.SERVICES, "credit_lookup_service", unavailable)
    no = api.submit()
    api.to_approval(no)  # collect_materials commits, then the credit lookup runs in-process and fails
    with fresh.app_context():
        row = db.session.scalars(select(Outbox).where(Outbox.operation == "credit_lookup_service")).one()
        assert (row.status, row.attempts) == ("pending", 1)
        assert "credit bureau unreachable" in row.last_error and row.available_at > utcnow()
        assert _approvals(no) == 0  # the instance still waits for the lookup
        outbox.run_inline([(row.id, row.instance_id)])  # not due yet: nothing happens
        assert len(calls) == 1

        monkeypatch.setitem(registry.SERVICES, "credit_lookup_service", real)
        db.session.execute(
            update(Outbox).where(Outbox.id == row.id).values(available_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        outbox.run_inline([(row.id, row.instance_id)])
        db.session.expire_all()
        done = db.session.get(Outbox, row.id)
        assert (done.status, done.attempts) == ("done", 2)
        assert _approvals(no) == 2
    assert api.task("approver1", no, "approve")["task_key"] == "approve"


@pytest.mark.parametrize("with_instance", [True, False])
def test_a_row_that_is_done_is_not_run_again(api, fresh, monkeypatch, with_instance):
    no = api.submit()
    api.to_approval(no)
    ran: list[int] = []
    monkeypatch.setitem(registry.SERVICES, "credit_lookup_service", lambda call: ran.append(1) or {})
    with fresh.app_context():
        row = db.session.scalars(select(Outbox).where(Outbox.operation == "credit_lookup_service")).one()
        assert row.status == "done"
        outbox.run_inline([(row.id, row.instance_id if with_instance else None)])
        assert ran == []
        assert db.session.get(Outbox, row.id).attempts == 1


def test_a_retried_disbursement_finds_the_loan_it_made_instead_of_making_another(api, fresh):
    from decimal import Decimal

    from app.loans.services import create_loan
    from app.models import Loan

    no = api.submit()
    api.to_approval(no)
    form = {"decision": "approve", "amount": "100000", "term_months": 12}
    assert api.complete("approver1", no, "approve", form).status_code == 200
    assert api.complete("approver2", no, "approve", form).status_code == 200
    with fresh.test_request_context():
        loan = db.session.scalars(select(Loan)).one()
        again = create_loan(loan.application_id, Decimal("100000"), 12, loan.start_date)
        assert (again.id, again.apr) == (loan.id, loan.apr)
        assert len(db.session.scalars(select(Loan)).all()) == 1


def test_a_lost_database_connection_does_not_use_up_the_attempts(api, fresh, monkeypatch):
    """A real disconnect: the handler's own backend is terminated by PostgreSQL."""
    from sqlalchemy import text

    with fresh.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("a server-side disconnect needs PostgreSQL")
    real = registry.SERVICES["credit_lookup_service"]

    def disconnected(call):  # type: ignore[no-untyped-def]
        db.session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return real(call)

    monkeypatch.setitem(registry.SERVICES, "credit_lookup_service", disconnected)
    no = api.submit()
    api.to_approval(no)
    with fresh.app_context():
        for _ in range(outbox.MAX_ATTEMPTS + 1):  # more losses than attempts
            row = db.session.scalars(select(Outbox).where(Outbox.operation == "credit_lookup_service")).one()
            assert (row.status, row.attempts) == ("pending", 0)
            assert "terminating connection" in row.last_error
            db.session.execute(update(Outbox).where(Outbox.id == row.id).values(available_at=utcnow()))
            db.session.commit()
            outbox.run_inline([(row.id, row.instance_id)])
            db.session.expire_all()
        monkeypatch.setitem(registry.SERVICES, "credit_lookup_service", real)
        db.session.execute(update(Outbox).where(Outbox.id == row.id).values(available_at=utcnow()))
        db.session.commit()
        outbox.run_inline([(row.id, row.instance_id)])
        db.session.expire_all()
        assert db.session.get(Outbox, row.id).status == "done"
        assert _approvals(no) == 2


def test_a_service_that_used_up_its_attempts_shows_on_the_instance_and_in_the_cli(api, fresh, monkeypatch):
    def unavailable(call):  # type: ignore[no-untyped-def]
        raise ConnectionError("credit bureau unreachable")

    monkeypatch.setitem(registry.SERVICES, "credit_lookup_service", unavailable)
    no = api.submit()
    api.to_approval(no)
    with fresh.app_context():
        row = db.session.scalars(select(Outbox).where(Outbox.operation == "credit_lookup_service")).one()
        for _ in range(outbox.MAX_ATTEMPTS - 1):
            db.session.execute(update(Outbox).where(Outbox.id == row.id).values(available_at=utcnow()))
            db.session.commit()
            outbox.run_inline([(row.id, row.instance_id)])
        db.session.expire_all()
        assert db.session.get(Outbox, row.id).status == "failed"
        instance_id = row.instance_id
    view = api.get("analyst", f"/api/v1/process-instances/{instance_id}").get_json()
    assert view["pending_effects"] == 0
    assert [(e["id"], e["operation"], e["attempts"]) for e in view["failed_effects"]] == [
        (row.id, "credit_lookup_service", outbox.MAX_ATTEMPTS)
    ]
    listed = fresh.test_cli_runner().invoke(args=["outbox", "failed"])
    assert listed.exit_code == 0 and f"{row.id}\tinstance {instance_id}\tcredit_lookup_service" in listed.output


def test_an_incident_shows_the_database_error_without_the_statement_or_its_values(api, fresh, monkeypatch):
    """A failed write's text holds the SQL and its parameters (customer data, for a loan);
    analysts read incidents, so they get the error alone; the log keeps the rest."""
    from sqlalchemy.exc import IntegrityError

    class Refused(Exception):
        pass

    def refused(call):  # type: ignore[no-untyped-def]
        raise IntegrityError("INSERT INTO customer (id_number) VALUES (?)", ("460100198001019999",), Refused("refused"))

    monkeypatch.setitem(registry.SERVICES, "credit_lookup_service", refused)
    no = api.submit()
    api.to_approval(no)
    with fresh.app_context():
        row = db.session.scalars(select(Outbox).where(Outbox.operation == "credit_lookup_service")).one()
        assert row.last_error == "Refused: refused"
