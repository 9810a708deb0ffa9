"""易贷兴 application factory: `create_app` as a list of named steps."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from babel import Locale
from flask import Flask, Request, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from werkzeug.middleware.proxy_fix import ProxyFix

from app import messages  # noqa: F401 - installs the Chinese validation messages
from app.config import load_config
from app.extensions import api, babel, configure_sqlite, db, login_manager, migrate

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class _Request(Request):
    """`get_json()` on a malformed body answers the same explained 400 as the argument
    parser (Flask's own is a bare "Bad Request")."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:
            return super().on_json_loading_failed(e)
        from app.hardening import malformed

        raise malformed(e) from e


class _Flask(Flask):
    """Flask that remembers, per function, whether a hook or view needs wrapping as async.
    Flask asks on every call of every before/after/teardown hook (`inspect.
    iscoroutinefunction`, a dozen times per request here); the functions never change."""

    _SYNC_CACHE_LIMIT = 4096
    request_class = _Request

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ensured: dict[Any, Any] = {}

    def ensure_sync(self, func):  # type: ignore[no-untyped-def]
        try:
            return self._ensured[func]
        except KeyError:
            ensured = super().ensure_sync(func)
            if len(self._ensured) < self._SYNC_CACHE_LIMIT:
                self._ensured[func] = ensured
            return ensured
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment (and `test_config` overrides in tests)."""
    app = _Flask(__name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance"))
    app.url_map.strict_slashes = False  # `/api/v1/tasks/` is `/api/v1/tasks`, not a 404 (set before any route)
    app.config.update(load_config(Path(app.instance_path)))
    if test_config:
        app.config.update(test_config)
        app.config["CELERY"] = {**app.config["CELERY"], "broker_url": app.config.get("REDIS_URL") or "memory://"}
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("spiff").setLevel(logging.WARNING)
    register_proxy_fix(app)
    app.session_interface = _SessionInterface()
    register_extensions(app)
    register_read_requests(app)
    register_auth(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def register_proxy_fix(app: Flask) -> None:
    """Trust `X-Forwarded-For` only through the configured number of proxies (F21)."""
    hops = app.config["YDX_TRUSTED_PROXIES"]
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)  # type: ignore[method-assign]


def register_extensions(app: Flask) -> None:
    """Database, migrations, login, i18n, OpenAPI, rate-limit backend, Celery."""
    from app import hardening, headers, ratelimit, sqlstats
    from workers.celery_app import celery_init_app

    hardening.init_app(app)
    headers.init_app(app)
    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)
    api.init_app(app)
    ratelimit.init_app(app)
    sqlstats.init_app(app)
    celery_init_app(app)


# Built once: `Locale.parse("zh_CN")` scans Babel's ~1000 locale ids on every call
# (about 0.5 ms), and Flask-Babel parses what the selector returns unless it is a Locale.
_LOCALES = {"zh_CN": Locale.parse("zh_CN"), "en": Locale.parse("en")}


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions with the signer built once per app instead of on
    every request (most requests are bearer-token API calls that carry no cookie)."""

    def get_signing_serializer(self, app: Flask):  # type: ignore[no-untyped-def]
        found = app.extensions.get("ydx_session_serializer")
        if found is None:
            found = app.extensions["ydx_session_serializer"] = super().get_signing_serializer(app)
        return found

    def open_session(self, app: Flask, request):  # type: ignore[no-untyped-def]
        if "HTTP_COOKIE" not in request.environ:  # no cookie at all: skip parsing an empty jar
            return self.session_class()
        return super().open_session(app, request)


def register_read_requests(app: Flask) -> None:
    """API reads on PostgreSQL run their statements in autocommit: no BEGIN and ROLLBACK
    round trips around a list or a detail. Each statement still sees committed data only,
    exactly as the statements of a read-committed transaction do; a read that records an
    audit row commits that single INSERT. Hot statements of such a request run on a plain
    autocommit connection without the session's transaction machinery (app/fastsql.py);
    ORM statements switch the session's connection to autocommit."""
    from app import fastsql

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return

    @app.before_request
    def _autocommit_reads() -> None:
        if request.method in ("GET", "HEAD") and request.path.startswith("/api/"):
            fastsql.begin_read_request()

    @app.teardown_request
    def _end_read(_exc: BaseException | None) -> None:
        fastsql.end_read_request()


def _select_locale() -> Locale:
    """Chinese unless the client asks for English (`?lang=en` or Accept-Language)."""
    wanted = request.args.get("lang") or session.get("lang")
    if wanted in _LOCALES:
        return _LOCALES[wanted]
    for language, quality in request.accept_languages:  # most preferred first
        if quality <= 0:  # `en;q=0`: not acceptable
            continue
        primary = language.split("-", 1)[0].split("_", 1)[0].lower()
        if primary in ("en", "zh"):  # `en-US, zh-CN;q=0.9` is English, whatever the region
            return _LOCALES["en" if primary == "en" else "zh_CN"]
    return _LOCALES["zh_CN"]


def register_auth(app: Flask) -> None:
    """Sessions for the console, bearer tokens for the API, CSRF for cookie-authenticated writes."""
    from app.auth import services
    from app.errors import ApiError

    login_manager.login_view = "web.login"
    login_manager.user_loader(services.load_session_user)

    @login_manager.request_loader
    def _bearer(req):  # type: ignore[no-untyped-def]
        token = services.bearer_token(req.headers.get("Authorization"))
        if token:
            user = services.user_for_token(token)
            if user is not None:
                g.auth_method = "token"
            return user
        return None

    @login_manager.unauthorized_handler
    def _unauthorized():  # type: ignore[no-untyped-def]
        if request.path.startswith("/api/"):
            raise ApiError("unauthorized", _("请先登录"), 401)
        return redirect(url_for("web.login"))

    @app.before_request
    def _csrf() -> None:
        """Console form posts (login included) and API writes authenticated by the session
        cookie must carry the session's CSRF token. API calls that carry a bearer token are
        authenticated by it alone (a browser never adds that header by itself), and the
        public endpoints use no identity at all: neither needs one, cookie or not."""
        if request.method not in UNSAFE_METHODS or request.endpoint is None:
            return  # (no endpoint: the 404 or 405 answers; nothing would run)
        if request.path.startswith("/api/") and (
            "_user_id" not in session
            or request.endpoint == "auth.login"  # a JSON login cannot be forged cross-site without CORS
            or request.blueprint == "public"
            or services.bearer_token(request.headers.get("Authorization")) is not None
        ):
            return
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
        expected = session.get("csrf_token", "")
        if not expected or not secrets.compare_digest(sent, expected):
            raise ApiError("csrf_failed", _("页面已过期，请刷新后重试"), 403)

    @app.before_request
    def _embedded_scheduler() -> None:
        from app.scheduler import start_embedded

        start_embedded(app)

    @app.context_processor
    def _csrf_token() -> dict[str, Any]:
        if "csrf_token" not in session:
            session["csrf_token"] = secrets.token_urlsafe(32)
        return {"csrf_token": session["csrf_token"]}


def register_blueprints(app: Flask) -> None:
    """One blueprint per domain; API ones go through flask-smorest for the OpenAPI document."""
    from app.auth.routes import blp as auth_blp
    from app.customers.routes import blp as customers_blp
    from app.health.routes import blp as health_blp
    from app.loans.routes import blp as loans_blp
    from app.processes.routes import blp as processes_blp
    from app.public.routes import blp as public_blp
    from app.public.routes import throttle_first
    from app.tasks.routes import blp as tasks_blp
    from app.web.routes import bp as web_bp

    for blueprint in (health_blp, auth_blp, public_blp, tasks_blp, loans_blp, customers_blp, processes_blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(web_bp)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    app.before_request_funcs.setdefault(None, []).insert(0, throttle_first)


def register_error_handlers(app: Flask) -> None:
    """The api.md error format for every failure."""
    from app.errors import register_error_handlers as install

    install(app)


def register_commands(app: Flask) -> None:
    """`seed-demo`, `create-admin`, `process deploy`, outbox and timer commands."""
    from app.cli import register

    register(app)
