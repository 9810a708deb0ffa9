"""Liveness of the parts: database and Redis reachability."""

from __future__ import annotations

from sqlalchemy import text

from app import docs
from app.extensions import db
from app.hardening import Blueprint
from app.ratelimit import redis_client

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="健康检查 Health")


@blp.route("/health")
@blp.doc(security=[])
@blp.alt_response(200, schema=docs.HealthDoc, success=True, description="OK")
def health():  # type: ignore[no-untyped-def]
    """`ok` when the database (and Redis, if configured) answer; 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, don't crash: this is the health endpoint
        db.session.rollback()
        checks["database"] = f"error: {type(exc).__name__}"
    client = redis_client()
    if client is None:
        checks["redis"] = "not_configured"
    else:
        try:
            client.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v in ("ok", "not_configured") for v in checks.values())
    return {"status": "ok" if healthy else "degraded", "checks": checks, "mode": db.engine.dialect.name}, (
        200 if healthy else 503
    )
