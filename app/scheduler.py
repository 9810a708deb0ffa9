"""Periodic jobs. Production runs them from Celery beat; the embedded mode (no Redis)
runs the same jobs on a daemon thread of the serving process."""

from __future__ import annotations

import logging
import threading

from flask import Flask

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 30.0


def run_periodic_jobs() -> dict[str, int]:
    """Relay outbox rows nobody ran (retries after backoff), escalate overdue tasks and
    delete token rows that ended, and idempotency keys kept, over a day ago."""
    from app.auth.services import forget_ended_tokens
    from app.dispatch import dispatch
    from app.extensions import db
    from app.models.base import utcnow
    from app.public.idempotency import forget_expired
    from app.tasks.services import escalate_overdue
    from app.workflow import outbox

    escalated = escalate_overdue()
    db.session.commit()
    removed = forget_ended_tokens(utcnow())
    keys_removed = forget_expired(utcnow())
    db.session.commit()
    ids = outbox.due_ids()
    if ids:
        dispatch(ids)
    return {"escalated": escalated, "relayed": len(ids), "tokens_removed": removed, "keys_removed": keys_removed}


def start_embedded(app: Flask) -> None:
    """Start the in-process scheduler once, on the first request of a serving process."""
    if app.config.get("REDIS_URL") or app.config.get("TESTING") or app.extensions.get("ydx_scheduler"):
        return

    def loop() -> None:
        stop = app.extensions["ydx_scheduler"]
        while not stop.wait(INTERVAL_SECONDS):
            with app.app_context():
                try:
                    run_periodic_jobs()
                except Exception:  # keep the loop alive; the next round retries
                    log.exception("periodic jobs failed")

    app.extensions["ydx_scheduler"] = threading.Event()
    threading.Thread(target=loop, name="ydx-scheduler", daemon=True).start()
