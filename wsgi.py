"""WSGI entry point: `gunicorn wsgi:app` and `flask --app wsgi ...`."""

import gc

from app import create_app

app = create_app()
# What the app built at start-up lives as long as the process: keep it out of the
# collector's full scans (each gunicorn worker imports this module after forking).
gc.freeze()
