"""Celery bound to the Flask app: every task runs inside an app context (Flask docs pattern)."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app from `app.config["CELERY"]` and register it on the Flask app."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.conf.beat_schedule = {
        "periodic": {"task": "workers.tasks.periodic", "schedule": 15.0},
    }
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    celery_app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
    return celery_app
