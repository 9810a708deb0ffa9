"""Commit at the entry point, then hand the outbox rows of that commit to their runner.

Embedded mode (no `REDIS_URL`) runs them in-process right after the commit; otherwise
each id goes to a Celery worker. If the broker is down the rows simply stay pending and
the beat relay publishes them later: nothing is lost.
"""

from __future__ import annotations

import logging

from flask import current_app, g

from app.extensions import db

log = logging.getLogger(__name__)


OutboxRef = int | tuple[int, int | None]  # an outbox id, or (outbox id, its instance id)


def commit_and_dispatch() -> None:
    """Commit the request's transaction and start the effects it recorded."""
    db.session.commit()
    refs: list[OutboxRef] = g.pop("ydx_outbox", [])
    if refs:
        dispatch(refs)


def dispatch(refs: list[OutboxRef]) -> None:
    """Run (embedded) or enqueue (Celery) outbox rows that are already committed."""
    from app.workflow import outbox

    if not current_app.config.get("REDIS_URL"):
        outbox.run_inline(refs)
        return
    celery = current_app.extensions["celery"]
    for ref in refs:
        outbox_id = ref if isinstance(ref, int) else ref[0]  # a worker finds the instance itself
        try:
            celery.send_task("workers.tasks.run_outbox", args=[outbox_id])
        except Exception:  # broker unreachable: the relay will publish it later
            log.warning("outbox %s not published; the relay will retry", outbox_id, exc_info=True)
