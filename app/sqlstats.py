"""Optional per-request SQL counters (`YDX_SQL_STATS=1`), for the benchmark.

Each response then carries `X-SQL-Statements` and `X-SQL-Commits`, so a client can see
what one task completion costs the database without a profiler.
"""

from __future__ import annotations

from flask import Flask, g, has_request_context
from sqlalchemy import event

from app.extensions import db

# Set once any app in this process counts statements (only the benchmark does).
enabled = False


def init_app(app: Flask) -> None:
    """Install the counters when enabled."""
    global enabled
    if not app.config.get("YDX_SQL_STATS"):
        return
    enabled = True
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _count_statement(*_args):  # type: ignore[no-untyped-def]
        if has_request_context():
            g.sql_statements = g.get("sql_statements", 0) + 1

    @event.listens_for(engine, "commit")
    def _count_commit(*_args):  # type: ignore[no-untyped-def]
        if has_request_context():
            g.sql_commits = g.get("sql_commits", 0) + 1

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers["X-SQL-Statements"] = str(g.get("sql_statements", 0))
        response.headers["X-SQL-Commits"] = str(g.get("sql_commits", 0))
        return response
