"""One authorization mechanism: (action, data scope) grants, as data (F21).

A view declares `@requires("application.view")`; the caller's roles give the widest
scope granted for that action; `scope_filter` turns the scope into a WHERE clause.
Out-of-scope objects are simply not found (404), so existence does not leak.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import ColumnElement, false, or_, select, true

from app.errors import ApiError
from app.extensions import db
from app.models import RoleGrant, Team, User, team_approvers, user_roles

SCOPE_RANK = {"own": 0, "team": 1, "region": 2, "all": 3}
_GRANT_CACHE: dict[tuple[str, ...], tuple[float, dict[str, str]]] = {}
_GRANT_TTL_SECONDS = 5.0

F = TypeVar("F", bound=Callable[..., Any])


def invalidate_grants() -> None:
    """Forget cached grants (after an admin edits them)."""
    _GRANT_CACHE.clear()


def grants_for(role_codes: list[str]) -> dict[str, str]:
    """action → widest scope over the given roles (cached for a few seconds)."""
    key = tuple(sorted(role_codes))
    cached = _GRANT_CACHE.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    result: dict[str, str] = {}
    rows = db.session.execute(select(RoleGrant.action, RoleGrant.scope).where(RoleGrant.role_code.in_(key)))
    for action, scope in rows:
        if action not in result or SCOPE_RANK[scope] > SCOPE_RANK[result[action]]:
            result[action] = scope
    _GRANT_CACHE[key] = (time.monotonic() + _GRANT_TTL_SECONDS, result)
    return result


@dataclass(frozen=True)
class Profile:
    """What scoping needs to know about a user, cached briefly per (user, password stamp)."""

    roles: frozenset[str]
    team_ids: frozenset[int]
    region_ids: frozenset[int]


_PROFILE_CACHE: dict[tuple[int, float], tuple[float, Profile]] = {}
_PROFILE_TTL_SECONDS = 5.0


def invalidate_profiles() -> None:
    """Forget cached profiles (after an admin changes roles, teams or approvers)."""
    _PROFILE_CACHE.clear()


def load_profile(user_id: int, stamp: float) -> Profile:
    """Roles, teams (own team + teams the user approves for) and their regions."""
    key = (user_id, stamp)
    cached = _PROFILE_CACHE.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    roles = frozenset(db.session.scalars(select(user_roles.c.role_code).where(user_roles.c.user_id == user_id)))
    row = db.session.execute(select(User.team_id, User.region_id).where(User.id == user_id)).one()
    team_ids = set(db.session.scalars(select(team_approvers.c.team_id).where(team_approvers.c.user_id == user_id)))
    if row.team_id:
        team_ids.add(row.team_id)
    region_ids = {row.region_id} if row.region_id else set()
    if team_ids:
        region_ids.update(db.session.scalars(select(Team.region_id).where(Team.id.in_(team_ids))))
    profile = Profile(roles, frozenset(team_ids), frozenset(region_ids))
    if len(_PROFILE_CACHE) > 10_000:
        _PROFILE_CACHE.clear()
    _PROFILE_CACHE[key] = (time.monotonic() + _PROFILE_TTL_SECONDS, profile)
    return profile


@dataclass(frozen=True)
class Caller:
    """The authenticated user with the data needed to scope queries."""

    id: int
    roles: frozenset[str]
    team_ids: frozenset[int]
    region_ids: frozenset[int]

    @property
    def user(self) -> User:
        """The full user row, loaded on demand (most requests never need it)."""
        return db.session.get(User, self.id)

    def scope(self, action: str) -> str | None:
        """Widest scope granted for `action`, or None."""
        return grants_for(sorted(self.roles)).get(action)


def caller() -> Caller:
    """The current authenticated caller (401 if none); computed once per request."""
    if "caller" in g:
        return g.caller
    user = _bearer_user()
    if user is None:
        if not current_user.is_authenticated:
            raise ApiError("unauthorized", _("请先登录"), 401)
        user = current_user
    profile = load_profile(user.id, user.password_changed_at.timestamp())
    g.caller = Caller(user.id, profile.roles, profile.team_ids, profile.region_ids)
    return g.caller


def _bearer_user() -> Any:
    """The user of the request's bearer token, checked directly (Flask-Login's loader would
    first hash the client's address for session protection and open the session), or None
    without an `Authorization: Bearer` header. A request that carries a token is
    authenticated by it alone, whatever session cookie the browser also sends: an invalid
    token is a 401, not the console's user."""
    from app.auth.services import bearer_token, user_for_token

    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        return None
    user = user_for_token(token)
    if user is None:
        raise ApiError("unauthorized", _("请先登录"), 401)
    g.auth_method = "token"
    return user


def requires(action: str) -> Callable[[F], F]:
    """Decorator: the caller must hold `action` in some scope; the scope lands in `g.scope`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            who = caller()
            scope = who.scope(action)
            if scope is None:
                raise ApiError("forbidden", _("没有权限执行此操作"), 403)
            g.scope = scope
            return view(*args, **kwargs)

        wrapped.required_action = action  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorate


def one_of(column: Any, values: frozenset[Any] | set[Any]) -> ColumnElement[bool]:
    """`column IN (...)`, or plain equality for one value: most callers have one team and
    one role, and an expanding IN is re-rendered on every execution."""
    if len(values) == 1:
        return column == next(iter(values))
    return column.in_(values)


def scope_filter(
    who: Caller,
    scope: str | None,
    *,
    own: ColumnElement[Any] | Any | None = None,
    team: Any = None,
    region: Any = None,
) -> ColumnElement[bool]:
    """A WHERE clause limiting rows to `scope`: own → `own` column equals the caller,
    team → `team` column in the caller's teams, region → `region` column in their regions."""
    if scope == "all":
        return true()
    clauses: list[ColumnElement[bool]] = []
    if own is not None:
        clauses.append(own == who.id)
    if scope in ("team", "region") and team is not None and who.team_ids:
        clauses.append(one_of(team, who.team_ids))
    if scope == "region" and region is not None and who.region_ids:
        clauses.append(one_of(region, who.region_ids))
    return or_(*clauses) if clauses else false()


def row_in_scope(
    who: Caller,
    scope: str | None,
    *,
    owner_id: int | None = None,
    team_id: int | None = None,
    region_id: int | None = None,
) -> bool:
    """The Python twin of `scope_filter`, for one row already loaded."""
    if scope is None:
        return False
    if scope == "all" or (owner_id is not None and owner_id == who.id):
        return True
    if scope in ("team", "region") and team_id in who.team_ids:
        return True
    return scope == "region" and region_id in who.region_ids
