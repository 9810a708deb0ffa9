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


@shared_task(name="workers.tasks.periodic")
def periodic() -> dict[str, int]:
    """Beat: relay outbox rows nobody picked up (broker outage, worker crash, retry
    backoff) and escalate overdue tasks."""
    from app.scheduler import run_periodic_jobs

    return run_periodic_jobs()
