"""Configuration from the environment.

The embedded default (no variables set) runs on an SQLite file in `instance/` with
service tasks executed in-process. Production (`YDX_ENV=production`) refuses to start
without `SECRET_KEY` and `DATABASE_URL`; there is deliberately no fallback secret.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

DEFAULT_INTERNAL_NETWORKS = "127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"


class ConfigError(RuntimeError):
    """Raised when production is started without a required setting."""


def _embedded_secret(instance_path: Path) -> str:
    """Return the embedded-mode secret, generating it once into `instance/`."""
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def load_config(instance_path: Path, env: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config dict from environment variables."""
    env = os.environ if env is None else env
    production = env.get("YDX_ENV", "").lower() == "production"
    database_url = env.get("DATABASE_URL")
    secret = env.get("SECRET_KEY")
    if production:
        missing = [name for name, value in (("SECRET_KEY", secret), ("DATABASE_URL", database_url)) if not value]
        if missing:
            raise ConfigError(f"production needs {', '.join(missing)} in the environment")
    if not database_url:
        instance_path.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{instance_path / 'ydx.sqlite3'}"
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    redis_url = env.get("REDIS_URL") or None
    upload_root = env.get("YDX_UPLOAD_ROOT") or str(instance_path / "uploads")
    return {
        "YDX_PRODUCTION": production,
        "SECRET_KEY": secret or _embedded_secret(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
        "REDIS_URL": redis_url,
        "YDX_INTERNAL_NETWORKS": env.get("YDX_INTERNAL_NETWORKS", DEFAULT_INTERNAL_NETWORKS),
        "YDX_TRUSTED_PROXIES": int(env.get("YDX_TRUSTED_PROXIES", "0") or 0),
        "YDX_UPLOAD_ROOT": upload_root,
        "YDX_UPLOAD_MAX_BYTES": int(env.get("YDX_UPLOAD_MAX_BYTES", str(10 * 1024 * 1024))),
        "MAX_CONTENT_LENGTH": int(env.get("YDX_UPLOAD_MAX_BYTES", str(10 * 1024 * 1024))) + 64 * 1024,
        "YDX_TOKEN_TTL_SECONDS": int(env.get("YDX_TOKEN_TTL_SECONDS", str(12 * 3600))),
        "YDX_TOKEN_CACHE_SECONDS": float(env.get("YDX_TOKEN_CACHE_SECONDS", "5")),
        "YDX_LOGIN_MAX_FAILURES": int(env.get("YDX_LOGIN_MAX_FAILURES", "5")),
        "YDX_LOGIN_WINDOW_SECONDS": int(env.get("YDX_LOGIN_WINDOW_SECONDS", "900")),
        "YDX_PUBLIC_SUBMIT_LIMIT": int(env.get("YDX_PUBLIC_SUBMIT_LIMIT", "300")),
        "YDX_PUBLIC_SUBMIT_WINDOW_SECONDS": int(env.get("YDX_PUBLIC_SUBMIT_WINDOW_SECONDS", "60")),
        "YDX_MASKED_SEARCH_LIMIT": int(env.get("YDX_MASKED_SEARCH_LIMIT", "30")),
        "YDX_MASKED_SEARCH_WINDOW_SECONDS": int(env.get("YDX_MASKED_SEARCH_WINDOW_SECONDS", "600")),
        "YDX_PASSWORD_HASH_METHOD": env.get("YDX_PASSWORD_HASH_METHOD", "scrypt"),
        "YDX_CONSENT_TEXT_VERSION": env.get("YDX_CONSENT_TEXT_VERSION", "pipl-consent-2026-01"),
        "YDX_CREDIT_AUTH_TEXT_VERSION": env.get("YDX_CREDIT_AUTH_TEXT_VERSION", "credit-auth-2026-01"),
        "SQLALCHEMY_RECORD_QUERIES": False,
        "YDX_SQL_STATS": env.get("YDX_SQL_STATS", "") == "1",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_SUPPORTED_LOCALES": ["zh_CN", "en"],
        "API_TITLE": "易贷兴 Yidaixing API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        # Staff operations take `Authorization: Bearer`; health, login and the public ones
        # say `security: []` themselves.
        "API_SPEC_OPTIONS": {"security": [{"bearer": []}]},
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "v1/openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # Pinned: the docs page must not change with whatever the CDN serves as latest.
        "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.17.14/",
        "CELERY": {
            "broker_url": redis_url or "memory://",
            "result_backend": None,
            "task_ignore_result": True,
            "task_serializer": "json",
            "accept_content": ["json"],
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            # A service call that hangs holds its instance's lock: after the soft limit it
            # fails like any other error (an attempt counted, retried with a backoff, an
            # incident after the last); the hard limit ends a child that ignores it.
            "task_soft_time_limit": 120,
            "task_time_limit": 150,
            "broker_connection_retry_on_startup": True,
            "broker_connection_timeout": 3,
            "task_publish_retry": False,
            "broker_connection_max_retries": 1,
            # A hung Redis (connects, never answers) fails a publish within about two
            # seconds (two tries of one second); the breaker then skips Redis for a while.
            "broker_transport_options": {
                "max_retries": 1,
                "interval_start": 0,
                "interval_step": 0.2,
                "socket_timeout": 1,
                "socket_connect_timeout": 1,
            },
        },
    }


def _engine_options(url: str) -> dict[str, Any]:
    """Pool settings per backend; SQLite waits for the write lock instead of failing."""
    from app import jsontext

    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}, "json_serializer": jsontext.column}
    return {"pool_recycle": 1800, "pool_size": 10, "max_overflow": 20, "json_serializer": jsontext.column}
