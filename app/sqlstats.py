"""Optional per-request SQL counters (`YDX_SQL_STATS=1`), for the benchmark.

Each response then carries `X-SQL-Statements` and `X-SQL-Commits`, so a client can see
what one task completion costs the database without a profiler. The counters live in a
thread-local reset when a request starts (a request runs on one thread), so counting a
statement costs no Flask context lookup.
"""

from __future__ import annotations

import threading

from flask import Flask
from sqlalchemy import event

from app.extensions import db

# Set once any app in this process counts statements (only the benchmark does).
enabled = False
_counts = threading.local()


def count_statement() -> None:
    """One more statement on this thread's current request."""
    _counts.statements = getattr(_counts, "statements", 0) + 1


def init_app(app: Flask) -> None:
    """Install the counters when enabled."""
    global enabled
    if not app.config.get("YDX_SQL_STATS"):
        return
    enabled = True
    with app.app_context():
        engine = db.engine

    @app.before_request
    def _reset() -> None:
        _counts.statements = 0
        _counts.commits = 0

    @event.listens_for(engine, "before_cursor_execute")
    def _count_statement(*_args):  # type: ignore[no-untyped-def]
        count_statement()

    @event.listens_for(engine, "commit")
    def _count_commit(*_args):  # type: ignore[no-untyped-def]
        _counts.commits = getattr(_counts, "commits", 0) + 1

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers["X-SQL-Statements"] = str(getattr(_counts, "statements", 0))
        response.headers["X-SQL-Commits"] = str(getattr(_counts, "commits", 0))
        return response
