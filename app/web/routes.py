"""Management web console (C3): session login with CSRF, task inbox, applications."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user

from app import audit
from app.auth import services as auth
from app.auth.permissions import caller
from app.errors import ApiError
from app.extensions import db
from app.loans import services as loans
from app.tasks import services as tasks

bp = Blueprint("web", __name__)


@bp.route("/")
def index():  # type: ignore[no-untyped-def]
    """Start page: the inbox for staff, the login form otherwise."""
    return redirect(url_for("web.inbox"))


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    """Console login; the CSRF token comes from the form rendered for this session."""
    error = None
    if request.method == "POST":
        try:
            user = auth.authenticate(request.form.get("username", ""), request.form.get("password", ""))
        except ApiError as exc:
            error, status = exc.message, exc.status
            return render_template("login.html", error=error), status
        login_user(user)
        audit.record("auth.login", user.id, "user", user.id, detail="console")
        db.session.commit()
        return redirect(url_for("web.inbox"))
    return render_template("login.html", error=error)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():  # type: ignore[no-untyped-def]
    """End the console session."""
    logout_user()
    session.pop("csrf_token", None)
    return redirect(url_for("web.login"))


@bp.route("/inbox")
@login_required
def inbox():  # type: ignore[no-untyped-def]
    """My tasks, claimable tasks and (for leads) the team pool."""
    who = caller()
    sections = []
    for scope, title in (("mine", "我的任务"), ("candidate", "待领取"), ("team", "团队任务池")):
        items, total = tasks.list_tasks(who, scope, "open", 1, 50)
        sections.append({"scope": scope, "title": title, "items": items, "total": total})
    return render_template("inbox.html", sections=sections, user=who.user)


@bp.route("/applications")
@login_required
def applications():  # type: ignore[no-untyped-def]
    """Applications within the caller's data scope."""
    who = caller()
    if who.scope("application.view") is None:
        raise ApiError("forbidden", "没有权限", 403)
    rows, total = loans.list_applications(who, 1, 100, None)
    return render_template("applications.html", rows=rows, total=total, user=who.user)
