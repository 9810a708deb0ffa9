"""Commit at the entry point, then hand the outbox rows of that commit to their runner.

Embedded mode (no `REDIS_URL`) runs them in-process right after the commit; otherwise
each id goes to a Celery worker. If the broker is down, or hangs past its socket
timeout, the rows simply stay pending and the beat relay publishes them later: nothing
is lost, and for a few seconds after a failure this process does not try (the answer to
the client must not wait on Redis).
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
    from app.ratelimit import redis_breaker

    celery, breaker = current_app.extensions["celery"], redis_breaker()
    for ref in refs:
        outbox_id = ref if isinstance(ref, int) else ref[0]  # a worker finds the instance itself
        if breaker is not None and breaker.is_open():  # Redis failed moments ago: leave it to the relay
            log.warning("outbox %s not published (Redis unavailable); the relay will publish it", outbox_id)
            continue
        try:
            celery.send_task("workers.tasks.run_outbox", args=[outbox_id])
        except Exception:  # broker unreachable or hung: the relay will publish it later
            if breaker is not None:
                breaker.trip()
            log.warning("outbox %s not published; the relay will retry", outbox_id, exc_info=True)
