"""Celery entry point: `celery -A workers.worker worker` / `celery -A workers.worker beat`."""

from app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
# Web nodes give up publishing at once (the relay retries later); a worker or beat instead
# keeps reconnecting for as long as Redis is away, so a Redis restart does not stop it.
celery.conf.broker_connection_max_retries = None
celery.conf.broker_transport_options = {}
