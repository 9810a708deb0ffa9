"""Audit trail of sensitive actions (F21): written in the caller's transaction.

A refused attempt is audited too, in its own short transaction, because the request's
transaction is rolled back when the refusal is raised.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from sqlalchemy import insert

from app.extensions import db
from app.fastsql import Hot
from app.models import AuditLog
from app.models.base import utcnow
from app.requestctx import client_ip

_INSERT = Hot(insert(AuditLog.__table__))


def record(
    action: str,
    actor_id: int | None,
    object_type: str | None = None,
    object_id: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    outcome: str = "ok",
    detail: str | None = None,
) -> None:
    """Add an audit row to the current transaction (a queued INSERT: no unit of work)."""
    _INSERT.defer(
        [
            {
                "at": utcnow(),
                "action": action,
                "actor_id": actor_id,
                "object_type": object_type,
                "object_id": None if object_id is None else str(object_id)[:64],
                "ip": client_ip() if has_request_context() else None,
                "before": before,
                "after": after,
                "outcome": outcome,
                "detail": detail,
            }
        ],
    )


def record_refusal(action: str, actor_id: int | None, object_type: str | None, object_id: Any, detail: str) -> None:
    """Commit an audit row for a refused action, independent of the request's rollback."""
    db.session.rollback()
    record(action, actor_id, object_type, object_id, outcome="refused", detail=detail)
    db.session.commit()
