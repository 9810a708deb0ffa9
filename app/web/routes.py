"""Management web console (C3): session login with CSRF, task inbox, applications."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from marshmallow import fields
from sqlalchemy import select

from app import audit
from app.auth import services as auth
from app.auth.permissions import caller
from app.customers import services as customers
from app.dispatch import commit_and_dispatch
from app.errors import ApiError
from app.extensions import db
from app.hardening import safe_loads
from app.loans import services as loans
from app.messages import chinese_only, english_only, in_english, task_title
from app.models import User
from app.models.base import BEIJING
from app.tasks import services as tasks

bp = Blueprint("web", __name__)

STAGE_LABELS = {
    "pending_assignment": _l("待分配"),
    "onsite_visit": _l("上门服务"),
    "collecting": _l("收集上传资料"),
    "approval": _l("审批中"),  # not the task's name 审批 (Approve): the stage (Approval)
    "disbursement": _l("放款启动"),
    "rejected": _l("已拒绝"),
    "open": _l("办理中"),
    "completed": _l("已完成"),
    "cancelled": _l("已取消"),
}
LANGUAGES = ("zh_CN", "en")  # the console's language switch (`?lang=`), kept in the session


@bp.before_request
def _remember_language() -> None:
    """`?lang=en` (or `zh_CN`) on a console page switches the console's language for the
    rest of the session; the API reads Accept-Language and never writes the session."""
    wanted = request.args.get("lang")
    if wanted in LANGUAGES:
        session["lang"] = wanted


@bp.app_context_processor
def _language() -> dict[str, Any]:
    return {"english": in_english(), "other_language_url": _other_language_url()}


def _other_language_url() -> str:
    """This page in the other language. A page answering a form post (an error shown after
    an upload or a completion) switches on the page the form belongs to: the post's own
    address answers no GET."""
    other = "zh_CN" if in_english() else "en"
    endpoint, view_args = request.endpoint, dict(request.view_args or {})
    if endpoint == "web.upload_attachment":
        endpoint = "web.task"
    if endpoint is None or not endpoint.startswith("web.") or endpoint == "web.logout":
        return f"?lang={other}"  # an error page outside the console's routes: the same address
    kept = {}
    if request.method == "GET":  # the page's own query (its paging), never url_for's own options
        kept = {
            key: value
            for key, value in request.args.items()
            if not key.startswith("_") and key not in view_args and key not in ("endpoint", "lang")
        }
    return url_for(endpoint, **view_args, **kept, lang=other)


@bp.after_request
def _not_kept_by_the_browser(response: Any) -> Any:
    """Console pages show customers and decisions: on a shared branch PC, Back after a
    logout must not bring the last user's pages out of the browser's cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@bp.app_template_filter("when")
def _when(value: Any) -> Any:
    """An ISO time stored in a form (`visited_at`, `meeting_at`) as the rest of the page
    shows times: Beijing time, to the minute; anything else as it is."""
    if isinstance(value, str) and _ISO_TIME.match(value):
        try:
            return beijing(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


@bp.app_template_filter("shown")
def _shown(value: Any) -> str:
    """A submitted form value as a line of text: lists joined, objects as `key: value`
    pairs, times as the page shows them, nothing for null."""
    comma = ", " if in_english() else "、"
    if value is None:
        return ""
    if isinstance(value, list):
        return comma.join(_shown(item) for item in value)
    if isinstance(value, dict):
        colon, semicolon = (": ", "; ") if in_english() else ("：", "；")
        return semicolon.join(f"{key}{colon}{_shown(item)}" for key, item in value.items())
    return str(_when(value))


@bp.app_template_filter("reader")
def _reader(message: Any) -> Any:
    """A "中文 (English)" message in the page's language alone."""
    if not isinstance(message, str):
        return message
    return english_only(message) if in_english() else chinese_only(message)


@bp.app_template_filter("label")
def label(code: str | None) -> str:
    """The label of a stage or task status code in the reader's language (the code itself
    if unknown)."""
    return str(STAGE_LABELS.get(code or "", code or ""))


@bp.app_template_filter("role_name")
def _role_name(code: str | None) -> str:
    """A role as its holders know it (团队主管, not team_lead; in English, "team lead")."""
    if not code:
        return ""
    return code.replace("_", " ") if in_english() else tasks.role_name(code)


@bp.app_template_filter("task_title")
def _task_title(title: str | None) -> str:
    """A task's title in the reader's language (app/messages.task_title)."""
    return task_title(title) or ""


INBOX_PAGE = 50


@bp.app_template_filter("beijing")
def beijing(moment: datetime | None) -> str:
    """A stored (UTC) time as staff read it: Beijing time, to the minute."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


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
            return render_template("login.html", error=error, username=request.form.get("username", "")), status
        # A new session for a new login: whoever used this browser before is logged out
        # (their server-side session ends) and nothing of theirs, the CSRF token included,
        # carries over — a cookie planted before the login is worth nothing after it.
        auth.end_console_session(session.get(auth.CONSOLE_SESSION_KEY))
        language = session.get("lang")  # the one thing kept: the page was read in it
        session.clear()
        if language in LANGUAGES:
            session["lang"] = language
        login_user(user)
        session[auth.CONSOLE_SESSION_KEY] = auth.open_console_session(user)
        session["csrf_token"] = secrets.token_urlsafe(32)
        audit.record("auth.login", user.id, "user", user.id, detail="console")
        db.session.commit()
        return redirect(url_for("web.inbox"))
    return render_template("login.html", error=error)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():  # type: ignore[no-untyped-def]
    """End the console session, for every copy of its cookie."""
    auth.end_console_session(session.pop(auth.CONSOLE_SESSION_KEY, None))
    audit.record("auth.logout", current_user.id, "user", current_user.id, detail="console")
    db.session.commit()
    logout_user()
    session.pop("csrf_token", None)
    return redirect(url_for("web.login"))


@bp.route("/inbox")
@login_required
def inbox():  # type: ignore[no-untyped-def]
    """My tasks, claimable tasks and (for leads) the team pool, 50 a page each
    (`?mine=2&team=3`: every section pages on its own)."""
    who = caller()
    sections = []
    for scope, title in (("mine", _("我的任务")), ("candidate", _("待领取")), ("team", _("团队任务池"))):
        page = max(1, min(request.args.get(scope, 1, type=int) or 1, 1_000_000))
        items, total = tasks.list_tasks(who, scope, "open", page, INBOX_PAGE)
        pages = max(1, -(-total // INBOX_PAGE))
        sections.append({"scope": scope, "title": title, "items": items, "total": total, "page": page, "pages": pages})
    assignees = {t.assignee_id for section in sections for t in section["items"] if t.assignee_id}
    paging = {section["scope"]: section["page"] for section in sections}  # the links carry these alone
    return render_template(
        "inbox.html", sections=sections, paging=paging, user=who.user, people=_display_names(assignees)
    )


@bp.route("/applications")
@login_required
def applications():  # type: ignore[no-untyped-def]
    """Applications within the caller's data scope."""
    who = caller()
    if who.scope("application.view") is None:
        raise ApiError("forbidden", _("没有权限执行此操作"), 403)
    page = max(1, min(request.args.get("page", 1, type=int) or 1, 1_000_000))
    rows, total = loans.list_applications(who, page, APPLICATIONS_PAGE, None)
    pages = max(1, -(-total // APPLICATIONS_PAGE))
    return render_template("applications.html", rows=rows, total=total, page=page, pages=pages, user=who.user)


APPLICATIONS_PAGE = 100
_TRUTHY = frozenset(str(value).lower() for value in fields.Boolean.truthy)  # the API's own reading


@bp.route("/applications/<application_no>")
@login_required
def application(application_no: str):  # type: ignore[no-untyped-def]
    """One application as the API's detail shows it to this user: stage history,
    approvers' answers and the decision (for the roles F6 names), the credit report, the
    attachments and, once disbursed, the loan — customer data masked unless a role granted
    `customer.view_full` asks for it (`?full=1`, audited, as the API's `?full=true`)."""
    who = caller()
    found = loans.application_view(application_no, who)
    asked = (request.args.get("full") or "").lower() in _TRUTHY  # as the API's boolean reads it
    full = customers.reveal(who, asked, "application", application_no)
    detail = loans.application_detail(found, who, full)
    loan = None
    if detail.get("loan_id") and who.scope("loan.view") is not None:
        try:
            loan = loans.get_loan(detail["loan_id"], who)
        except ApiError as exc:
            if exc.status != 404:
                raise
    actors = {entry["actor_id"] for entry in detail["history"] if entry.get("actor_id")}
    actors |= {item["approver_id"] for item in detail["approvals"] if item.get("approver_id")}
    db.session.commit()  # what the views audited
    return render_template(
        "application.html",
        app=detail,
        loan=loan,
        people=_display_names(actors),
        labels=_LABELS,
        user=who.user,
        full=full,
        may_see_full=customers.may_see_full(who),
    )


_LABELS = {
    "officer_id": _l("客户经理"),
    "visited_at": _l("上门时间"),
    "notes": _l("备注"),
    "customer": _l("客户信息（JSON）"),
    "attachments": _l("附件编号（逗号或顿号分隔）"),
    "decision": _l("意见"),
    "amount": _l("金额（元）"),
    "term_months": _l("期限（月）"),
    "comment": _l("说明"),
    "meeting_at": _l("会议时间"),
    "members": _l("参会成员（逗号或顿号分隔）"),
    "minutes": _l("会议纪要"),
    "file": _l("文件"),
}


_LIST_SEPARATORS = re.compile(r"[,，、;；\n]")


def _form_payload(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Turn the console's text inputs into the JSON the task form expects (the same
    validation as the API then applies)."""
    payload: dict[str, Any] = {}
    for field in fields:
        name, kind = field["name"], field["type"]
        raw = (request.form.get(name) or "").strip()
        if not raw:
            continue
        if kind == "integer" and raw.isdigit():
            payload[name] = int(raw)
        elif kind.startswith("array"):  # names are listed with 、 as often as with commas
            items = [part.strip() for part in _LIST_SEPARATORS.split(raw) if part.strip()]
            payload[name] = [int(part) if kind == "array<integer>" and part.isdigit() else part for part in items]
        elif kind == "object":
            try:  # the API's reading: a repeated key is refused there, so it is here
                payload[name] = safe_loads(raw)
            except ValueError:
                payload[name] = raw
        else:
            payload[name] = raw
    return payload


@bp.route("/tasks/<int(max=2147483647):task_id>", methods=["GET", "POST"])
@login_required
def task(task_id: int):  # type: ignore[no-untyped-def]
    """One task: what the performer needs, its form, and claim/complete buttons."""
    who = caller()
    found = tasks.get_visible(task_id, who)
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        try:
            if request.form.get("action") == "claim":
                tasks.claim(task_id, who)
            else:
                detail = tasks.task_detail(found, who)
                tasks.complete(task_id, who, _form_payload(detail["form"]["fields"]))
            commit_and_dispatch()
            return redirect(url_for("web.task", task_id=task_id))
        except ApiError as exc:
            db.session.rollback()
            if exc.status not in (409, 422):
                raise
            errors, status = exc.fields or {"_": [exc.message]}, exc.status  # (a task already done: 409, as the API)
            found = tasks.get_visible(task_id, who)
    return _task_page(found, who, errors, status)


def _task_page(found: Any, who: Any, errors: dict[str, Any], status: int):  # type: ignore[no-untyped-def]
    detail = tasks.task_detail(found, who)
    page = render_template(
        "task.html",
        task=found,
        detail=detail,
        labels=_LABELS,
        errors=_error_lines(errors),
        user=who.user,
        values=request.form,
        people=_names_of_approvers(detail),
    )
    return page, (status if errors else 200)


def _error_lines(errors: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Field messages as (label, sentence) lines; a nested field (`customer.id_number`)
    keeps its path, so the reason of a part of an object is shown too."""
    lines: list[tuple[str, str]] = []
    for name, messages in errors.items():
        # marshmallow counts list items from 0
        part = _("第 %(index)d 项", index=int(name) + 1) if str(name).isdigit() else name
        label = f"{prefix} · {part}" if prefix else ("" if name == "_" else str(_LABELS.get(name, name)))
        if isinstance(messages, dict):
            lines.extend(_error_lines(messages, label))
        elif isinstance(messages, list | tuple):
            flat = [_reader(m) for m in messages if isinstance(m, str)]
            nested = [m for m in messages if isinstance(m, dict)]
            if flat:
                lines.append((label, ("; " if in_english() else "；").join(flat)))
            for item in nested:
                lines.extend(_error_lines(item, label))
        else:
            lines.append((label, _reader(str(messages))))
    return lines


def _names_of_approvers(detail: dict[str, Any]) -> dict[int, str]:
    """Display names of the approvers whose answers the page shows."""
    application = detail["data"].get("application") or {}
    return _display_names(
        {item["approver_id"] for item in application.get("approvals") or [] if item.get("approver_id")}
    )


def _display_names(ids: set[int]) -> dict[int, str]:
    """Staff names by user id (one query; none for no ids)."""
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


@bp.route("/tasks/<int(max=2147483647):task_id>/attachments", methods=["POST"])
@login_required
def upload_attachment(task_id: int):  # type: ignore[no-untyped-def]
    """The officer's upload from the collection page (the same checks as the API's)."""
    who = caller()
    found = tasks.get_visible(task_id, who)
    if not found.application_no:
        raise ApiError("not_found", _("资源不存在"), 404)
    application = loans.get_application(found.application_no, who, "application.upload")
    try:
        loans.store_attachment(application, loans.single_upload(request.files.getlist("file")), who)
        db.session.commit()
    except ApiError as exc:
        db.session.rollback()
        if exc.status not in (409, 413, 422):
            raise
        return _task_page(found, who, exc.fields or {"_": [exc.message]}, exc.status)
    return redirect(url_for("web.task", task_id=task_id))
