"""Executing outbox rows: call the service handler, then finish the service task.

Each row runs in its own transaction, exactly once: the row is locked and must still be
pending; the handler gets the outbox id as its idempotency key. A failure is recorded
with a backoff; after `MAX_ATTEMPTS` the row becomes an incident (status `failed`),
visible (`GET /process-instances/{id}` → `failed_effects`, `flask outbox failed`) and
retryable by an administrator. A lost database connection is not the service failing:
it puts the row back for a retry without counting an attempt (a flapping database, or a
reset that each worker process meets on its own pooled connection, must not use up a
healthy disbursement's attempts).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from flask import g
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DBAPIError, StatementError

from app.extensions import db
from app.fastsql import Hot
from app.models import Outbox
from app.models.base import utcnow
from app.workflow import registry, runtime
from app.workflow.specs import REGISTRY

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
RECONNECT_DELAY = timedelta(seconds=5)
STALE_AFTER = timedelta(seconds=30)


_ROWS = Outbox.__table__
# Claim and mark done in one statement: the row is locked (a concurrent claimer skips it)
# and must be pending and due. If the handler or the advance fails, the rollback puts it
# back to pending and `_record_failure` counts the attempt.
_CLAIM = Hot(
    update(_ROWS)
    .where(
        _ROWS.c.id
        == select(_ROWS.c.id)
        .where(
            _ROWS.c.id == bindparam("outbox_id_"),
            _ROWS.c.status == "pending",
            _ROWS.c.available_at <= bindparam("now_"),
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    .values(status="done", attempts=_ROWS.c.attempts + 1, processed_at=bindparam("now_"))
    .returning(_ROWS.c.id, _ROWS.c.instance_id, _ROWS.c.spiff_task_id, _ROWS.c.operation, _ROWS.c.payload)
)


class _NotClaimable(Exception):
    """The row is no longer pending or not yet due (or another runner holds it)."""


def run_one(outbox_id: int, instance_id: int | None = None) -> list[tuple[int, int | None]]:
    """Process one row and commit; returns (outbox id, instance id) of the rows its advance
    created. With `instance_id` known (in-process runs) claiming the row and locking the
    instance is one statement and the handler runs under the lock; a worker that only has
    the row id claims it first."""
    g.pop("ydx_outbox", None)
    params = {"outbox_id_": outbox_id, "now_": utcnow()}
    loaded = None
    try:
        if instance_id is None:
            row = _CLAIM.execute(params).first()
            if row is None:
                raise _NotClaimable
        else:
            loaded = runtime.lock(instance_id, runtime.Closing(_CLAIM, params, _NotClaimable))
            row = loaded.closed
    except _NotClaimable:
        db.session.rollback()
        return []
    except Exception as exc:  # the instance could not be locked or loaded
        db.session.rollback()
        _record_failure(outbox_id, exc)
        return []
    call = registry.ServiceCall(
        operation=row.operation,
        idempotency_key=f"outbox-{row.id}",
        instance_id=row.instance_id,
        data=REGISTRY.restore(row.payload.get("data", {})),
        params=REGISTRY.restore(row.payload.get("params", {})),
    )
    try:
        handler = registry.SERVICES[row.operation]
        result = handler(call)
        runtime.finish_service(row.instance_id, row.spiff_task_id, result, loaded)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        g.pop("ydx_outbox", None)
        _record_failure(outbox_id, exc)
        return []
    return g.pop("ydx_outbox", [])


def _connection_lost(exc: Exception) -> bool:
    """The database connection broke under the attempt (SQLAlchemy's disconnect test)."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def error_text(exc: Exception) -> str:
    """What an incident shows analysts (`failed_effects`, `flask outbox failed`): the
    error's kind and its first line. A database error's own text carries the statement
    and its parameters, and PostgreSQL's detail quotes row values (a customer's ID
    number in a duplicate key): those stay in the log, for operators."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        original = exc.orig
        diag = getattr(original, "diag", None)
        text = getattr(diag, "message_primary", None) or str(original)
        return f"{type(original).__name__}: {text.splitlines()[0] if text else ''}"[:2000]
    return f"{type(exc).__name__}: {exc}"[:2000]


def _record_failure(outbox_id: int, exc: Exception) -> None:
    lost = _connection_lost(exc)
    if lost:
        log.warning("outbox %s: database connection lost (%s); retried without counting an attempt", outbox_id, exc)
    row = db.session.get(Outbox, outbox_id)
    if row is None:
        return
    row.last_error = error_text(exc)
    if lost:
        row.available_at = utcnow() + RECONNECT_DELAY
    else:
        row.attempts += 1
        if row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
            log.error("outbox %s failed for good after %s attempts (an incident): %s", outbox_id, row.attempts, exc)
        else:
            log.warning("outbox %s failed (attempt %s): %s", outbox_id, row.attempts, exc, exc_info=True)
            row.available_at = utcnow() + timedelta(seconds=5 * 2**row.attempts)
    db.session.commit()


def run_inline(refs: Sequence[int | tuple[int, int | None]]) -> None:
    """Embedded mode: run rows (ids, or (id, instance id) pairs) and whatever they lead to,
    in this process."""
    queue = [(ref, None) if isinstance(ref, int) else ref for ref in refs]
    while queue:
        queue.extend(run_one(*queue.pop(0)))


def due_ids(limit: int = 100) -> list[int]:
    """Pending rows that are due and were not picked up (relay after a crash or broker outage)."""
    now = utcnow()
    return list(
        db.session.scalars(
            select(Outbox.id)
            .where(Outbox.status == "pending", Outbox.available_at <= now - STALE_AFTER)
            .order_by(Outbox.id)
            .limit(limit)
        )
    )


def failed_rows(instance_id: int | None = None) -> list[Outbox]:
    """Incidents: rows that used up their attempts (of one instance, or all)."""
    query = select(Outbox).where(Outbox.status == "failed").order_by(Outbox.id)
    if instance_id is not None:
        query = query.where(Outbox.instance_id == instance_id)
    return list(db.session.scalars(query))


def retry_failed(outbox_id: int) -> bool:
    """Put an incident back in the queue (administrator action)."""
    result = db.session.execute(
        update(Outbox)
        .where(Outbox.id == outbox_id, Outbox.status == "failed")
        .values(status="pending", attempts=0, available_at=utcnow())
    )
    return result.rowcount == 1
