"""Celery tasks: a few lines each — take an id, call a service, let retries handle failure."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.tasks.run_outbox", acks_late=True)
def run_outbox(outbox_id: int) -> None:
    """Execute one outbox row; follow-up rows are published in turn."""
    from app.dispatch import dispatch
    from app.workflow import outbox

    follow_up = outbox.run_one(outbox_id)
    if follow_up:
        dispatch(follow_up)


@shared_task(name="workers.tasks.relay_outbox")
def relay_outbox() -> int:
    """Beat: publish pending rows nobody picked up (broker outage, worker crash)."""
    from app.dispatch import dispatch
    from app.workflow import outbox

    ids = outbox.due_ids()
    if ids:
        dispatch(ids)
    return len(ids)
