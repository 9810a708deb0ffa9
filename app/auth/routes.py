"""API authentication: login → bearer token, logout, whoami, password change."""

from __future__ import annotations

from typing import Any

from flask import request, session
from flask_login import logout_user
from marshmallow import Schema, fields, validate

from app import audit, docs
from app.auth import services
from app.auth.permissions import caller
from app.extensions import db
from app.hardening import Blueprint

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="登录 Authentication")


class LoginArgs(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class PasswordArgs(Schema):
    current_password = fields.String(required=True)
    new_password = fields.String(required=True, validate=validate.Length(min=8, max=256))


def user_json(user: Any) -> dict[str, Any]:
    """The `user` object of api.md."""
    return {"id": user.id, "username": user.username, "roles": user.role_codes, "team_id": user.team_id}


@blp.route("/login", methods=["POST"])
@blp.doc(security=[])
@blp.alt_response(200, schema=docs.LoginDoc, success=True, description="OK")
@blp.arguments(LoginArgs())
def login(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Exchange username + password for a bearer token (401 without saying which was wrong)."""
    user = services.authenticate(args["username"], args["password"])
    token = services.issue_token(user)
    audit.record("auth.login", user.id, "user", user.id)
    db.session.commit()
    return {"token": token, "user": user_json(user)}


@blp.route("/logout", methods=["POST"])
@blp.alt_response(200, schema=docs.StatusDoc, success=True, description="OK")
def logout():  # type: ignore[no-untyped-def]
    """Revoke the presented token (or, called with the console's session cookie, end that
    session for every copy of the cookie)."""
    who = caller()
    token = services.bearer_token(request.headers.get("Authorization"))
    if token:
        services.revoke_token(token)
    else:
        services.end_console_session(session.pop(services.CONSOLE_SESSION_KEY, None))
        logout_user()
        session.pop("csrf_token", None)
    audit.record("auth.logout", who.id, "user", who.id)
    db.session.commit()
    return {"status": "logged_out"}


@blp.route("/me")
@blp.alt_response(200, schema=docs.UserDoc, success=True, description="OK")
def me():  # type: ignore[no-untyped-def]
    """The authenticated user."""
    return user_json(caller().user)


@blp.route("/password", methods=["POST"])
@blp.alt_response(200, schema=docs.StatusDoc, success=True, description="OK")
@blp.arguments(PasswordArgs())
def change_password(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Change the password; all tokens and sessions of the user end."""
    services.change_password(caller().user, args["current_password"], args["new_password"])
    db.session.commit()
    return {"status": "changed"}
