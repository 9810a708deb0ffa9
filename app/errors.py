"""One error type and one set of handlers: every failure answers in the api.md format.

`{"error": {"code", "message", "fields"}}`; the web console gets HTML instead when the
client asks for it. A 500 rolls the session back so nothing half-written is committed.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.messages import chinese_only, english_messages, english_only, in_english

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


_GENERIC = {
    400: "请求格式错误",
    401: "请先登录",
    403: "没有权限执行此操作",
    404: "资源不存在",
    405: "不支持此请求方法",
    413: "请求内容过大",
    429: "请求过于频繁，请稍后再试",
}


class ApiError(Exception):
    """A failure the client can act on, with a stable code and optional field messages."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields or {}
        self.headers = headers or {}

    def after_rollback(self) -> None:
        """Hook for a failure that must leave a durable trace (a workflow incident): run by
        the error handler after the request's writes are rolled back, then committed."""


def not_found(what: str = "resource") -> ApiError:
    """The same 404 whether the object is missing or outside the caller's data scope."""
    return ApiError("not_found", f"{_('资源不存在')} ({what})", 404)


def _wants_html() -> bool:
    """Console pages answer errors as a page unless the client prefers JSON (a browser,
    curl's `*/*` or no Accept header get the page); the API always answers JSON."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return not request.path.startswith(("/api/", "/public/")) and best != "application/json"


def error_response(status: int, code: str, message: str, fields: dict[str, Any] | None = None, headers=None):  # type: ignore[no-untyped-def]
    """Render one error as JSON (API) or HTML (console pages)."""
    if _wants_html():
        from flask_login import current_user

        shown = english_only(message) if in_english() else chinese_only(message)
        user = current_user if current_user.is_authenticated else None  # the menu, to get back
        body = render_template("error.html", status=status, message=shown, user=user), status
        return (*body, headers or {})
    fields = fields or {}
    if status == 401:  # RFC 9110 §11.6.1: a 401 names the scheme that would be accepted
        headers = {"WWW-Authenticate": 'Bearer realm="ydx"', **(headers or {})}
    if in_english():  # "中文 (English)" messages: the English alone
        message, fields = english_only(message), english_messages(fields)
    payload: dict[str, Any] = {"code": code, "message": message, "fields": fields}
    return jsonify(error=payload), status, headers or {}


_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def _unique_violation(err: IntegrityError) -> bool:
    """A duplicate key: SQLSTATE 23505 on PostgreSQL, SQLite's "UNIQUE constraint failed"."""
    return getattr(err.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(err.orig)


def _flatten_webargs(messages: Any) -> dict[str, Any]:
    """webargs nests messages per location (`{"json": {...}}`); clients want the fields."""
    if isinstance(messages, dict):
        merged: dict[str, Any] = {}
        for location in ("json", "form", "files", "query", "querystring", "headers"):
            if location in messages and isinstance(messages[location], dict):
                merged.update(messages[location])
        return merged or messages
    return {"_schema": messages}


def register_error_handlers(app: Flask) -> None:
    """Install the handlers; they replace flask-smorest's own error format."""

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):  # type: ignore[no-untyped-def]
        if err.status >= 500:
            db.session.rollback()
        if type(err).after_rollback is not ApiError.after_rollback:
            db.session.rollback()
            try:
                err.after_rollback()
                db.session.commit()
            except Exception:  # the trace is best effort; the client's answer is not
                db.session.rollback()
                log.exception("could not record the trace of %s", err.code)
        return error_response(err.status, err.code, err.message, err.fields, err.headers)

    @app.errorhandler(ValidationError)
    def _validation(err: ValidationError):  # type: ignore[no-untyped-def]
        db.session.rollback()
        fields = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
        return error_response(422, "validation_error", _("输入数据无效"), fields)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):  # type: ignore[no-untyped-def]
        status = err.code or 500
        data = getattr(err, "data", None) or {}
        fields = _flatten_webargs(data["messages"]) if "messages" in data else None
        if status == 422 and fields is None:
            fields = {}
        generic = _GENERIC.get(status)
        message = _("输入数据无效") if status == 422 else (_(generic) if generic else err.description or err.name)
        if status == 400 and "messages" in data:
            message = _("请求格式错误")
        # The exception's own headers (a 405's Allow, a 401's WWW-Authenticate), not its HTML type.
        headers = {name: value for name, value in err.get_headers() if name.lower() != "content-type"}
        return error_response(status, _CODES.get(status, "error"), message, fields, headers)

    @app.errorhandler(OperationalError)
    def _database_unavailable(err: OperationalError):  # type: ignore[no-untyped-def]
        """The database is unreachable or refused the connection: a temporary 503, not a bug.
        A deadlock or serialization failure the database resolved by aborting this
        transaction is neither: nothing was written and the client may retry (409)."""
        db.session.rollback()
        sqlstate = getattr(err.orig, "sqlstate", None)
        if sqlstate in _RETRYABLE_SQLSTATES:
            # every path takes its rows in one order: a deadlock means one does not (a bug)
            (log.error if sqlstate == "40P01" else log.warning)(
                "transaction aborted on %s %s: %s", request.method, request.path, err.orig
            )
            return error_response(409, "conflict", _("数据已被其他请求修改，请刷新后重试"))
        log.error("database unavailable on %s %s: %s", request.method, request.path, err.orig)
        return error_response(503, "unavailable", _("服务暂时不可用，请稍后重试"), None, {"Retry-After": "5"})

    @app.errorhandler(IntegrityError)
    def _conflicting_write(err: IntegrityError):  # type: ignore[no-untyped-def]
        """A uniqueness check the database made and the code did not foresee (two requests
        racing for the same row): nothing was written, and the client may retry — a 409,
        not a 500. Races the code knows of are answered where they happen; any other
        integrity failure (NOT NULL, a reference, a CHECK) is a bug and stays a 500."""
        if not _unique_violation(err):
            return _unexpected(err)
        db.session.rollback()
        log.warning("conflicting write on %s %s: %s", request.method, request.path, err.orig)
        return error_response(409, "conflict", _("数据已被其他请求修改，请刷新后重试"))

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):  # type: ignore[no-untyped-def]
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error")
