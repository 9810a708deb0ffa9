"""Passwords, login throttling and bearer tokens (issue #2, F21).

Tokens are opaque signed ids of `api_token` rows: the signature stops guessing, the row
gives expiry and revocation (logout, password change) on every node.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask import session as flask_session
from flask_babel import gettext as _
from flask_login import UserMixin
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import bindparam, delete, event, or_, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app import audit
from app.errors import ApiError
from app.extensions import db
from app.fastsql import Hot
from app.models import ApiToken, User
from app.models.base import utcnow
from app.ratelimit import counter, too_many
from app.requestctx import client_ip

# One address may fail this many times the per-user limit (a shared office NAT, a test
# harness) before every login from it is throttled; each user is still limited alone.
IP_FAILURE_FACTOR = 20

_decoy_hashes: dict[str, str] = {}


def _decoy_hash() -> str:
    """A hash made with the configured KDF, checked when the username is unknown, so the
    time taken does not reveal which part of the credentials was wrong."""
    method = current_app.config["YDX_PASSWORD_HASH_METHOD"]
    if method not in _decoy_hashes:
        _decoy_hashes[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return _decoy_hashes[method]


def hash_password(password: str) -> str:
    """Hash with the configured KDF (scrypt by default)."""
    return generate_password_hash(password, method=current_app.config["YDX_PASSWORD_HASH_METHOD"])


def _throttle_keys(username: str) -> tuple[str, str]:
    return f"ydx:login:user:{username.lower()}", f"ydx:login:ip:{client_ip()}"


def authenticate(username: str, password: str) -> User:
    """Check credentials; repeated failures for a user or an address answer 429."""
    limit = current_app.config["YDX_LOGIN_MAX_FAILURES"]
    window = current_app.config["YDX_LOGIN_WINDOW_SECONDS"]
    user_key, ip_key = _throttle_keys(username)
    store = counter()
    if store.get(user_key) >= limit or store.get(ip_key) >= limit * IP_FAILURE_FACTOR:
        retry = max(store.ttl(user_key), store.ttl(ip_key))
        audit.record_refusal("auth.login", None, "user", username, "throttled")
        raise too_many(retry, _("登录失败次数过多，请稍后再试"))
    # Held (FOR SHARE) until the token is stored: a password change waits for this login,
    # then revokes its token too; a login that waits for a change checks the new hash.
    user = db.session.scalar(
        select(User)
        .where(User.username == username)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    valid = check_password_hash(user.password_hash if user else _decoy_hash(), password)
    if not user or not valid or not user.active:
        store.incr(user_key, window)
        store.incr(ip_key, window)
        audit.record_refusal("auth.login", user.id if user else None, "user", username, "bad credentials")
        raise ApiError("invalid_credentials", _("用户名或密码错误"), 401)
    store.reset(user_key)
    return user


def _serializer() -> URLSafeSerializer:
    """Built once per app (every API request verifies a token with it)."""
    found = current_app.extensions.get("ydx_token_serializer")
    if found is None:
        found = current_app.extensions["ydx_token_serializer"] = URLSafeSerializer(
            current_app.config["SECRET_KEY"], salt="ydx-api-token"
        )
    return found


def issue_token(user: User) -> str:
    """Create a token row and return its signed form."""
    token_id = secrets.token_urlsafe(32)
    ttl = current_app.config["YDX_TOKEN_TTL_SECONDS"]
    db.session.add(ApiToken(id=token_id, user_id=user.id, expires_at=utcnow() + timedelta(seconds=ttl)))
    return _serializer().dumps(token_id)


def open_console_session(user: User) -> str:
    """Record a console session server-side (a token row whose id only the signed session
    cookie carries; it is not a bearer token, which is the id signed with another salt), so
    that a logout ends it for every copy of the cookie. Returns the id for the session."""
    session_id = secrets.token_urlsafe(32)
    ttl = current_app.config["YDX_TOKEN_TTL_SECONDS"]
    db.session.add(ApiToken(id=session_id, user_id=user.id, expires_at=utcnow() + timedelta(seconds=ttl)))
    return session_id


_CONSOLE_SESSION = Hot(
    select(ApiToken.user_id).where(
        ApiToken.id == bindparam("id_"), ApiToken.revoked_at.is_(None), ApiToken.expires_at > bindparam("now_")
    )
)


def console_session_open(session_id: Any, user_id: int) -> bool:
    """Whether a console session recorded by `open_console_session` is still open for the user."""
    if not isinstance(session_id, str):
        return False
    row = _CONSOLE_SESSION.execute({"id_": session_id, "now_": utcnow()}).first()
    return row is not None and row.user_id == user_id


def end_console_session(session_id: Any) -> None:
    """Close a console session for every copy of its cookie (logout)."""
    if isinstance(session_id, str):
        db.session.execute(update(ApiToken).where(ApiToken.id == session_id).values(revoked_at=utcnow()))


TOKEN_ROW_GRACE = timedelta(days=1)


def forget_ended_tokens(now: datetime) -> int:
    """Delete token and console-session rows that ended (expired or revoked) more than a
    day ago: every login adds one. The audit log keeps who logged in and out."""
    ended = now - TOKEN_ROW_GRACE
    result = db.session.execute(delete(ApiToken).where(or_(ApiToken.expires_at < ended, ApiToken.revoked_at < ended)))
    return result.rowcount or 0


def _token_id(token: str) -> str | None:
    try:
        value = _serializer().loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


# Built once: constructing the statement on every request costs more than running it.
_TOKEN_QUERY = Hot(
    select(ApiToken.user_id, ApiToken.expires_at, ApiToken.revoked_at, User.active, User.password_changed_at)
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.id == bindparam("token_id"))
)


@dataclass(frozen=True)
class TokenUser(UserMixin):
    """The identity a valid bearer token stands for (no ORM load on the hot path)."""

    id: int
    password_changed_at: datetime


# Valid tokens are remembered per process for YDX_TOKEN_CACHE_SECONDS (default 5, as the
# cached grants and profiles), so most requests need no token query. Any change to users or
# tokens made through this process (logout, password change, deactivation, any UPDATE or
# DELETE of app_user / api_token) empties the cache at once and again after its commit;
# other processes see it within those seconds. 0 turns the cache off. (Hot statements of
# app/fastsql.py bypass these session events: none of them writes app_user or api_token.)
_TOKEN_CACHE: dict[str, tuple[float, TokenUser, datetime]] = {}
_TOKEN_CACHE_MAX = 10_000
_AUTH_TABLES = frozenset({"app_user", "api_token"})


def forget_tokens() -> None:
    """Empty this process's cache of valid tokens."""
    _TOKEN_CACHE.clear()


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any letter
    case, RFC 7235), or None."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def user_for_token(token: str) -> TokenUser | None:
    """The active user behind a valid, unexpired, unrevoked token, else None.

    The cache is keyed by the whole signed token: a hit is a string this process has
    already verified, so neither the signature nor the row is checked again."""
    cached = _TOKEN_CACHE.get(token)
    if cached is not None and cached[0] > time.monotonic() and cached[2] > utcnow():
        return cached[1]
    token_id = _token_id(token)
    if token_id is None:
        return None
    row = _TOKEN_QUERY.execute({"token_id": token_id}).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow() or not row.active:
        _TOKEN_CACHE.pop(token, None)
        return None
    user = TokenUser(row.user_id, row.password_changed_at)
    ttl = current_app.config.get("YDX_TOKEN_CACHE_SECONDS", 0)
    if ttl > 0:
        if len(_TOKEN_CACHE) >= _TOKEN_CACHE_MAX:
            _TOKEN_CACHE.clear()
        _TOKEN_CACHE[token] = (time.monotonic() + ttl, user, row.expires_at)
    return user


def _touches_auth(session: Session) -> None:
    forget_tokens()
    session.info["ydx_auth_changed"] = True


@event.listens_for(Session, "after_flush")
def _users_flushed(session: Session, _context: object) -> None:
    if any(isinstance(obj, User | ApiToken) for obj in (*session.dirty, *session.deleted)):
        _touches_auth(session)


@event.listens_for(Session, "do_orm_execute")
def _users_updated(state) -> None:  # type: ignore[no-untyped-def]
    if (state.is_update or state.is_delete) and getattr(state.statement, "table", None) is not None:
        if state.statement.table.name in _AUTH_TABLES:
            _touches_auth(state.session)


@event.listens_for(Session, "after_commit")
def _auth_committed(session: Session) -> None:
    # A request that read the old row between the change and its commit may have cached it.
    if session.info.pop("ydx_auth_changed", False):
        forget_tokens()


def revoke_token(token: str) -> None:
    """Revoke one token (logout)."""
    token_id = _token_id(token)
    if token_id:
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))


def password_problem(password: str, username: str) -> str | None:
    """Why a new password is too weak, or None: at least 8 characters with both letters
    and digits, and not the user name (`12345678` and `password` are refused; the demo
    password `demo1234` passes)."""
    if len(password) < 8:
        return "至少 8 位 (at least 8 characters)"
    if not any(ch.isascii() and ch.isalpha() for ch in password) or not any(ch.isdigit() for ch in password):
        return "须同时包含字母和数字 (must contain both letters and digits)"
    if username and username.casefold() in password.casefold():
        return "不能包含用户名 (must not contain the user name)"
    return None


def change_password(user: User, current: str, new: str) -> None:
    """Change a password; every token and session of the user stops working."""
    # Guesses of the current password count with failed logins of the same user: a
    # borrowed session must not become an unlimited password oracle.
    limit, window = current_app.config["YDX_LOGIN_MAX_FAILURES"], current_app.config["YDX_LOGIN_WINDOW_SECONDS"]
    user_key, _ip_key = _throttle_keys(user.username)
    store = counter()
    if store.get(user_key) >= limit:
        audit.record_refusal("auth.password_change", user.id, "user", user.id, "throttled")
        raise too_many(store.ttl(user_key), _("登录失败次数过多，请稍后再试"))
    # The row as it is now, held until the change commits: of changes sent at once, the
    # later ones check the current password against what the first one wrote.
    db.session.refresh(user, with_for_update=True)
    if not check_password_hash(user.password_hash, current):
        store.incr(user_key, window)
        raise ApiError(
            "validation_error", _("原密码错误"), 422, fields={"current_password": ["原密码错误 (wrong password)"]}
        )
    problem = password_problem(new, user.username)
    if problem:
        raise ApiError("validation_error", _("新密码不符合要求"), 422, fields={"new_password": [problem]})
    if new == current:
        raise ApiError(
            "validation_error",
            _("新密码不能与原密码相同"),
            422,
            fields={"new_password": ["不能与原密码相同 (must differ from the current password)"]},
        )
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    db.session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    audit.record("auth.password_change", user.id, "user", user.id)


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's loader: `id:password_changed_at`, so a password change ends sessions,
    and the session's server-side record must be open, so a logout ends it."""
    try:
        user_id, stamp = session_id.split(":")
        user = db.session.get(User, int(user_id))
    except (ValueError, TypeError):
        return None
    if user is None or not user.active or str(int(user.password_changed_at.timestamp())) != stamp:
        return None
    if not console_session_open(flask_session.get(CONSOLE_SESSION_KEY), user.id):
        return None
    return user


CONSOLE_SESSION_KEY = "ydx_sid"
