"""Passwords, login throttling and bearer tokens (issue #2, F21).

Tokens are opaque signed ids of `api_token` rows: the signature stops guessing, the row
gives expiry and revocation (logout, password change) on every node.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_login import UserMixin
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import bindparam, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app import audit
from app.errors import ApiError
from app.extensions import db
from app.fastsql import Hot
from app.models import ApiToken, User
from app.models.base import utcnow
from app.ratelimit import counter
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
        raise ApiError("too_many_requests", _("登录失败次数过多，请稍后再试"), 429, headers={"Retry-After": str(retry)})
    user = db.session.scalar(select(User).where(User.username == username))
    valid = check_password_hash(user.password_hash if user else _decoy_hash(), password)
    if not user or not valid or not user.active:
        store.incr(user_key, window)
        store.incr(ip_key, window)
        audit.record_refusal("auth.login", user.id if user else None, "user", username, "bad credentials")
        raise ApiError("invalid_credentials", _("用户名或密码错误"), 401)
    store.reset(user_key)
    return user


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="ydx-api-token")


def issue_token(user: User) -> str:
    """Create a token row and return its signed form."""
    token_id = secrets.token_urlsafe(32)
    ttl = current_app.config["YDX_TOKEN_TTL_SECONDS"]
    db.session.add(ApiToken(id=token_id, user_id=user.id, expires_at=utcnow() + timedelta(seconds=ttl)))
    return _serializer().dumps(token_id)


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


def user_for_token(token: str) -> TokenUser | None:
    """The active user behind a valid, unexpired, unrevoked token, else None (one query)."""
    token_id = _token_id(token)
    if token_id is None:
        return None
    row = _TOKEN_QUERY.execute({"token_id": token_id}).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow() or not row.active:
        return None
    return TokenUser(row.user_id, row.password_changed_at)


def revoke_token(token: str) -> None:
    """Revoke one token (logout)."""
    token_id = _token_id(token)
    if token_id:
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))


def change_password(user: User, current: str, new: str) -> None:
    """Change a password; every token and session of the user stops working."""
    if not check_password_hash(user.password_hash, current):
        raise ApiError("validation_error", _("原密码错误"), 422, fields={"current_password": ["wrong password"]})
    if len(new) < 8:
        raise ApiError(
            "validation_error", _("新密码至少 8 位"), 422, fields={"new_password": ["at least 8 characters"]}
        )
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    db.session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    audit.record("auth.password_change", user.id, "user", user.id)


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's loader: `id:password_changed_at`, so a password change ends sessions."""
    try:
        user_id, stamp = session_id.split(":")
        user = db.session.get(User, int(user_id))
    except (ValueError, TypeError):
        return None
    if user is None or not user.active or str(int(user.password_changed_at.timestamp())) != stamp:
        return None
    return user
