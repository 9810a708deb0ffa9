"""Applications, attachments, loans and the lifecycle's service operations (F3-F8).

The service handlers are what the lifecycle's service tasks call through the outbox.
External systems (credit reference, core loan system, SMS) arrive with the workers and
adapters issue; until then the handlers record plainly that no external system is
configured — never an invented report.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import filetype
from flask import current_app
from sqlalchemy import Integer, String, bindparam, cast, func, insert, literal, null, select, union_all
from werkzeug.datastructures import FileStorage

from app import audit
from app.auth.permissions import Caller, row_in_scope, scope_filter
from app.errors import ApiError, not_found
from app.extensions import db
from app.fastsql import Hot
from app.loans.schedule import annualized_rate, build_schedule
from app.messages import for_reader
from app.models import (
    Application,
    Attachment,
    Customer,
    HumanTask,
    Installment,
    Loan,
    LoanProduct,
    ProcessInstance,
    StageEntry,
)
from app.models.base import BEIJING, utcnow
from app.schemas import jsonable
from app.workflow.registry import ServiceCall, service

ALLOWED_TYPES = {"image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf"}
DECISION_ACTIONS = {"centralized": "decision.view_centralized", "committee": "decision.view_committee"}


def application_filter(who: Caller, scope: str | None):  # type: ignore[no-untyped-def]
    """Applications within `scope`: own → assigned officer, team, region, all."""
    return scope_filter(who, scope, own=Application.officer_id, team=Application.team_id, region=Application.region_id)


def get_application(application_no: str, who: Caller, action: str = "application.view") -> Application:
    """One application within the caller's scope for `action`, else 404."""
    application = db.session.scalar(
        select(Application).where(
            Application.application_no == application_no, application_filter(who, who.scope(action))
        )
    )
    if application is None:
        raise not_found("application")
    return application


def list_applications(who: Caller, page: int, per_page: int, stage: str | None) -> tuple[list[Application], int]:
    """A page of visible applications, newest first."""
    where = [application_filter(who, who.scope("application.view"))]
    if stage:
        where.append(Application.stage == stage)
    total = db.session.scalar(select(func.count()).select_from(Application).where(*where)) or 0
    rows = db.session.scalars(
        select(Application).where(*where).order_by(Application.id.desc()).limit(per_page).offset((page - 1) * per_page)
    )
    return list(rows), total


def in_scope(application: Application, who: Caller, action: str) -> bool:
    """Whether `application` lies within the caller's scope for `action`."""
    return row_in_scope(
        who,
        who.scope(action),
        owner_id=application.officer_id,
        team_id=application.team_id,
        region_id=application.region_id,
    )


def may_see_decision(application: Application, who: Caller, mode: str) -> bool:
    """F6: the decision is visible to the roles granted for that approval mode, in scope."""
    return in_scope(application, who, DECISION_ACTIONS.get(mode, "decision.view_centralized"))


def visible_approvals(application: Application, who: Caller, approvals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Approvers decide independently: without `approval.view` a caller sees only their own
    answer, so no approver is swayed by another's amount."""
    if in_scope(application, who, "approval.view"):
        return approvals
    return [item for item in approvals if item.get("approver_id") == who.id]


_APPLICATIONS, _CUSTOMERS, _PRODUCTS = Application.__table__, Customer.__table__, LoanProduct.__table__
_TASK_ROWS, _STAGES, _ATTACHMENTS = HumanTask.__table__, StageEntry.__table__, Attachment.__table__
_INSTANCES = ProcessInstance.__table__
_NEWER = _INSTANCES.alias("newer")
# An application with what its detail shows beside it: customer, product code, loan id,
# and the identity of its newest process instance.
_VIEW = select(
    *_APPLICATIONS.columns,
    _CUSTOMERS.c.name.label("customer_name"),
    _CUSTOMERS.c.phone.label("customer_phone"),
    _CUSTOMERS.c.id_number.label("customer_id_number"),
    _CUSTOMERS.c.region_id.label("customer_region_id"),
    _PRODUCTS.c.code.label("product_code"),
    Loan.__table__.c.id.label("loan_id"),
    _INSTANCES.c.id.label("instance_id"),
    _INSTANCES.c.version.label("instance_version"),
    _INSTANCES.c.definition_id.label("instance_definition_id"),
).select_from(
    _APPLICATIONS.join(_CUSTOMERS, _CUSTOMERS.c.id == _APPLICATIONS.c.customer_id)
    .join(_PRODUCTS, _PRODUCTS.c.id == _APPLICATIONS.c.product_id)
    .outerjoin(Loan.__table__, Loan.__table__.c.application_id == _APPLICATIONS.c.id)
    .outerjoin(  # the application's newest process instance
        _INSTANCES,
        _INSTANCES.c.id
        == select(func.max(_NEWER.c.id)).where(_NEWER.c.application_id == _APPLICATIONS.c.id).scalar_subquery(),
    )
)
_VIEW_BY_NO = Hot(_VIEW.where(_APPLICATIONS.c.application_no == bindparam("no_")))
_VIEW_BY_ID = Hot(_VIEW.where(_APPLICATIONS.c.id == bindparam("id_")))
# Beside the application row, its detail shows three short lists: each approver's answer,
# the stage history and the attachments. They come back as one UNION ALL (one statement),
# each row tagged with its list and put back into shape in `_detail_lists`.
_KIND, _ORDER, _N1, _N2, _N3 = "kind", "ord", "n1", "n2", "n3"
_T1, _T2, _T3, _AT, _DATA = "t1", "t2", "t3", "at", "data"


def _branch(kind: str, order: Any, table: Any, where: Any, **values: Any) -> Any:
    types = {
        _N1: Integer(),
        _N2: Integer(),
        _N3: Integer(),
        _T1: String(),
        _T2: String(),
        _T3: String(),
        _AT: _STAGES.c.at.type,
        _DATA: _TASK_ROWS.c.form_data.type,
    }
    columns = [literal(kind, String()).label(_KIND), order.label(_ORDER)]
    columns += [(values[name] if name in values else cast(null(), type_)).label(name) for name, type_ in types.items()]
    return select(*columns).select_from(table).where(*where)


_APPLICATION_ID = bindparam("application_id_", type_=Integer())
_DETAIL_LISTS = Hot(
    union_all(
        _branch(
            "answer",
            _TASK_ROWS.c.completed_by_id,
            _TASK_ROWS,
            (
                _TASK_ROWS.c.application_id == _APPLICATION_ID,
                _TASK_ROWS.c.task_key == "approve",
                _TASK_ROWS.c.status == "completed",
            ),
            n1=_TASK_ROWS.c.completed_by_id,
            at=_TASK_ROWS.c.completed_at,
            data=_TASK_ROWS.c.form_data,
        ),
        _branch(
            "stage",
            _STAGES.c.id,
            _STAGES,
            (_STAGES.c.application_id == _APPLICATION_ID,),
            n1=_STAGES.c.actor_id,
            t1=_STAGES.c.stage,
            at=_STAGES.c.at,
        ),
        _branch(
            "attachment",
            _ATTACHMENTS.c.id,
            _ATTACHMENTS,
            (_ATTACHMENTS.c.application_id == _APPLICATION_ID,),
            n1=_ATTACHMENTS.c.id,
            n2=_ATTACHMENTS.c.size,
            n3=_ATTACHMENTS.c.uploaded_by_id,
            at=_ATTACHMENTS.c.created_at,
            t1=_ATTACHMENTS.c.sha256,
            t2=_ATTACHMENTS.c.content_type,
            t3=_ATTACHMENTS.c.filename,
        ),
    ).order_by(_KIND, _ORDER)
)


@dataclass(frozen=True)
class _DetailLists:
    answers: list[dict[str, Any]]
    history: list[SimpleNamespace]
    attachments: list[SimpleNamespace]


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _detail_lists(application_id: int) -> _DetailLists:
    lists = _DetailLists([], [], [])
    for row in _DETAIL_LISTS.execute({"application_id_": application_id}).all():
        if row.kind == "answer":
            lists.answers.append({**(row.data or {}), "approver_id": row.n1, "answered_at": _iso(row.at)})
        elif row.kind == "stage":
            lists.history.append(SimpleNamespace(stage=row.t1, actor_id=row.n1, at=row.at))
        else:
            lists.attachments.append(
                SimpleNamespace(
                    id=row.n1,
                    sha256=row.t1,
                    content_type=row.t2,
                    size=row.n2,
                    filename=row.t3,
                    uploaded_by_id=row.n3,
                    uploaded_at=_iso(row.at),
                )
            )
    return lists


def application_view(application_no: str, who: Caller, action: str = "application.view") -> Any:
    """The application (with customer, product code and loan id) if within the caller's
    scope for `action`, else 404 — one query, the scope checked on the row."""
    view = _VIEW_BY_NO.execute({"no_": application_no}).first()
    if view is None or not in_scope(view, who, action):
        raise not_found("application")
    return view


def application_detail(application: Any, who: Caller, full: bool = False) -> dict[str, Any]:
    """Stage, history, approvals, credit report, decision (when allowed) and loan id, from
    an `application_view` row; customer data masked unless `full` (`customers.reveal`)."""
    from app.customers.services import applicant_view, customer_view
    from app.workflow import runtime

    instance_id = application.instance_id
    data = (
        runtime.instance_data_at(instance_id, application.instance_version, application.instance_definition_id)
        if instance_id is not None
        else {}
    )
    # Each approver's answer so far comes from the inbox rows (by approver id), so answers
    # show before the last approver has decided.
    lists = _detail_lists(application.id)
    approvals, attachments, history = lists.answers, lists.attachments, lists.history
    mode = data.get("approval_mode")
    decision = data.get("decision")
    customer = SimpleNamespace(
        id=application.customer_id,
        name=application.customer_name,
        phone=application.customer_phone,
        id_number=application.customer_id_number,
        region_id=application.customer_region_id,
    )
    result = {
        "application_no": application.application_no,
        "stage": application.stage,
        "channel": application.channel,
        "amount": application.amount,
        "term_months": application.term_months,
        "purpose": application.purpose,
        "product_code": application.product_code,
        "team_id": application.team_id,
        "region_id": application.region_id,
        "officer_id": application.officer_id,
        "approval_mode": mode,
        "created_at": application.created_at.isoformat(),
        "updated_at": application.updated_at.isoformat(),
        "customer": customer_view(customer, who, full),
        "applicant": applicant_view(application.applicant_name, application.applicant_phone, full),
        "history": [
            {"stage": entry.stage, "actor_id": entry.actor_id, "at": entry.at.isoformat()} for entry in history
        ],
        "approvals": [
            {k: item.get(k) for k in ("approver_id", "decision", "amount", "term_months", "comment", "answered_at")}
            for item in visible_approvals(application, who, approvals)
        ],
        "visit": data.get("onsite_visit"),  # the officer's on-site record (F3/F4)
        "materials": _materials(data.get("collect_materials"), full),
        "committee": {"meeting": data.get("register_committee")} if mode == "committee" else None,
        "credit_report": _credit_report(data),
        "attachments": [
            {
                "id": a.id,
                "sha256": a.sha256,
                "content_type": a.content_type,
                "size": a.size,
                "filename": a.filename,
                "uploaded_by_id": a.uploaded_by_id,
                "uploaded_at": a.uploaded_at,
            }
            for a in attachments
        ],
        "loan_id": application.loan_id,
        "process_instance_id": instance_id,
    }
    if mode == "committee" and may_see_decision(application, who, mode):
        result["committee"]["decision"] = data.get("record_committee_decision")
    if not may_see_decision(application, who, mode or "centralized"):
        return jsonable(result)  # no `decision` key at all: not even whether there is one
    result["decision"] = None  # allowed to see it, and there is none yet
    if decision:
        final_amount = decision.get("final_amount")
        result["decision"] = {
            "outcome": decision.get("outcome"),
            "final_amount": f"{Decimal(str(final_amount)):.2f}" if final_amount is not None else None,
            "final_term": decision.get("final_term"),
            "amount_strategy": decision.get("amount_strategy"),
            "term_strategy": decision.get("term_strategy"),
        }
    return jsonable(result)


def _credit_report(data: dict[str, Any]) -> dict[str, Any] | None:
    """The credit lookup's result with its message in the reader's language."""
    report = data.get("credit_report")
    if isinstance(report, dict) and "message" in report:
        return {**report, "message": for_reader(report["message"])}
    return report


def _materials(collected: dict[str, Any] | None, full: bool) -> dict[str, Any] | None:
    """What the officer registered at collection: notes, attachment ids, customer details
    (masked as the customer record is)."""
    from app.customers.services import profile_view

    if not collected:
        return None
    return {
        "customer": profile_view(collected.get("customer"), full),
        "attachments": collected.get("attachments"),
        "notes": collected.get("notes"),
    }


def application_context(task: HumanTask, data: dict[str, Any], who: Caller) -> dict[str, Any]:
    """What a task's performer needs to see (application, customer, prior answers). The
    application only while it is within the caller's scope (an officer taken off a case
    keeps the old task in their history, not a view of the case); the performer of an open
    task that meets the customer (`contact`) sees the name and phone given with the
    application unmasked, and that view is audited."""
    from app.tasks.forms import escalated_fields
    from app.workflow.registry import FORMS

    application = _VIEW_BY_ID.execute({"id_": task.application_id}).first() if task.application_id else None
    context: dict[str, Any] = {}
    if application is not None and in_scope(application, who, "application.view"):
        detail = application_detail(application, who)
        context["application"] = {k: v for k, v in detail.items() if k not in ("decision",)}
        handler = FORMS.get(task.task_key)
        performing = task.status == "open" and task.assignee_id == who.id
        if handler is not None and handler.contact and performing and detail["applicant"]["masked"]:
            context["application"]["applicant"] = {
                "name": application.applicant_name,
                "phone": application.applicant_phone,
                "masked": False,
            }
            audit.record("customer.contact_view", who.id, "application", application.application_no)
    if task.task_key == "supervisor_decide":
        context["escalated"] = sorted(escalated_fields(data))
        amount = data.get("loan_amount")
        if amount and amount.get("final_amount") is not None:  # money as a decimal string (api.md)
            amount = {**amount, "final_amount": f"{Decimal(str(amount['final_amount'])):.2f}"}
        context["loan_amount"] = amount
        context["loan_term"] = data.get("loan_term")
    if task.task_key == "approve":
        context["credit_report"] = _credit_report(data)
    return context


# --- attachments ------------------------------------------------------------------


_ATTACHMENT_IDS = Hot(select(_ATTACHMENTS.c.id).where(_ATTACHMENTS.c.application_id == bindparam("application_id_")))


def attachment_ids_of(application_id: int | None) -> set[int]:
    """Ids of the attachments uploaded to an application."""
    if application_id is None:
        return set()
    return set(_ATTACHMENT_IDS.execute({"application_id_": application_id}).scalars())


DECIDED_STAGES = frozenset({"disbursement", "rejected"})


def single_upload(uploads: list[FileStorage]) -> FileStorage | None:
    """The one `file` of an upload request (none: None); two or more are a 422."""
    if len(uploads) > 1:
        raise ApiError(
            "validation_error",
            "一次上传一个文件 (one file per upload)",
            422,
            fields={
                "file": [f"收到 {len(uploads)} 个文件，一次只能上传一个 (got {len(uploads)} files; send one at a time)"]
            },
        )
    return uploads[0] if uploads else None


def _shown_name(sent: str) -> str:
    """The file name kept and shown: its last path part, without control or formatting
    characters (a right-to-left override makes `\u202egpj.exe` read as "exe.jpg")."""
    name = "".join(ch for ch in Path(sent.replace("\\", "/")).name if unicodedata.category(ch) not in ("Cc", "Cf"))
    return name.strip()[:200] or "file"


def store_attachment(application: Application, upload: FileStorage | None, who: Caller) -> Attachment:
    """Check type (from the bytes, not the name) and size, store under sha256, record it.
    A decided application (disbursement started or rejected) takes no more materials."""
    if application.stage in DECIDED_STAGES:
        raise _decided()
    if upload is None or not upload.filename:
        raise ApiError(
            "validation_error", "请选择文件 (no file)", 422, fields={"file": ["请选择文件 (a file is required)"]}
        )
    limit = current_app.config["YDX_UPLOAD_MAX_BYTES"]
    content = upload.stream.read(limit + 1)
    if len(content) > limit:
        raise ApiError(
            "too_large",
            f"文件超过 {limit} 字节 (file too large)",
            413,
            fields={"file": [f"文件超过 {limit} 字节 (larger than {limit} bytes)"]},
        )
    if not content:
        raise ApiError("validation_error", "文件为空 (empty file)", 422, fields={"file": ["文件为空 (empty file)"]})
    kind = filetype.guess(content)
    content_type = kind.mime if kind else "application/octet-stream"
    if content_type not in ALLOWED_TYPES:
        raise ApiError(  # a 422 naming the field: api.md's error statuses have no 415
            "validation_error",
            "只接受照片或 PDF (only photos — JPEG, PNG, WebP, HEIC — or PDF)",
            422,
            fields={
                "file": [
                    f"文件内容为 {content_type}，不在允许的类型之中 (the content is {content_type}; "
                    f"allowed: {', '.join(sorted(ALLOWED_TYPES))})"
                ]
            },
        )
    digest = hashlib.sha256(content).hexdigest()
    _store_bytes(Path(current_app.config["YDX_UPLOAD_ROOT"]) / digest[:2] / digest, content)
    # The stage again, now holding the row until the attachment is recorded: a decision
    # committing meanwhile waits for this upload or is seen here (the bytes written for
    # nothing are content-addressed and harmless). The file was written first so that a
    # decision waits for an insert, not for a disk write of up to the upload limit.
    stage = db.session.scalar(
        select(Application.stage).where(Application.id == application.id).with_for_update(read=True)
    )
    if stage in DECIDED_STAGES:
        raise _decided()
    attachment = Attachment(
        application_id=application.id,
        sha256=digest,
        content_type=content_type,
        size=len(content),
        filename=_shown_name(upload.filename),
        uploaded_by_id=who.id,
    )
    db.session.add(attachment)
    db.session.flush()
    audit.record(
        "attachment.upload", who.id, "attachment", attachment.id, after={"sha256": digest, "size": len(content)}
    )
    return attachment


def _decided() -> ApiError:
    return ApiError("conflict", "申请已审批结束，不能再上传资料 (the application is already decided)", 409)


def _store_bytes(path: Path, content: bytes) -> None:
    """Write content-addressed bytes so a reader never sees a partial file: each writer
    has its own temporary name (two uploads of the same bytes at once must not share
    one), and the rename into place is atomic (a second one replaces equal bytes)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(8)}.part")
    try:
        tmp.write_bytes(content)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def attachment_path(attachment: Attachment) -> Path:
    """Where an attachment's bytes are stored."""
    return Path(current_app.config["YDX_UPLOAD_ROOT"]) / attachment.sha256[:2] / attachment.sha256


# --- loans ------------------------------------------------------------------------


def get_loan(loan_id: int, who: Caller) -> Loan:
    """A loan whose application is within the caller's `loan.view` scope, else 404."""
    loan = db.session.scalar(
        select(Loan)
        .join(Application, Application.id == Loan.application_id)
        .where(Loan.id == loan_id, application_filter(who, who.scope("loan.view")))
    )
    if loan is None:
        raise not_found("loan")
    return loan


_LOANS = Loan.__table__
# The application's product and, if a retried disbursement already made it, its loan.
_PRODUCT_AND_LOAN = Hot(
    select(
        LoanProduct.__table__.c.id,
        LoanProduct.annual_rate,
        LoanProduct.method,
        LoanProduct.fee_rate,
        _LOANS.c.id.label("loan_id"),
        _LOANS.c.apr.label("loan_apr"),
    )
    .select_from(
        Application.__table__.join(LoanProduct.__table__, Application.product_id == LoanProduct.id).outerjoin(
            _LOANS, _LOANS.c.application_id == Application.id
        )
    )
    .where(Application.id == bindparam("application_id_"))
)
_INSERT_LOAN = Hot(insert(_LOANS).returning(_LOANS.c.id))
_INSTALLMENTS = Installment.__table__
_SCHEDULE_COLUMNS = ("seq", "due_date", "principal", "interest", "payment", "balance")
_INSERT_SCHEDULES: dict[int, Hot] = {}


def _insert_schedule(count: int) -> Hot:
    """One multi-row INSERT of `count` installments (built once per term length)."""
    found = _INSERT_SCHEDULES.get(count)
    if found is None:
        columns = ("loan_id", *_SCHEDULE_COLUMNS)
        found = _INSERT_SCHEDULES[count] = Hot(
            insert(_INSTALLMENTS).values(
                [
                    {column: bindparam(f"{column}_{i}_", type_=_INSTALLMENTS.c[column].type) for column in columns}
                    for i in range(count)
                ]
            )
        )
    return found


@dataclass(frozen=True)
class CreatedLoan:
    """What the disbursement step reports of the loan it created (or found)."""

    id: int
    apr: Decimal


FEN = Decimal("0.01")


def create_loan(application_id: int, amount: Decimal, term_months: int, start: date) -> CreatedLoan:
    """Create the loan from the application's product and compute its schedule (F8)."""
    product = _PRODUCT_AND_LOAN.execute({"application_id_": application_id}).first()
    if product is None:
        raise ValueError(f"application {application_id} does not exist")
    if product.loan_id is not None:  # idempotent: a retried disbursement does not create a second loan
        return CreatedLoan(product.loan_id, product.loan_apr)
    principal = Decimal(amount).quantize(FEN, rounding=ROUND_HALF_UP)
    fee = (principal * product.fee_rate).quantize(FEN, rounding=ROUND_HALF_UP)  # rules.md: half-up
    schedule = build_schedule(principal, product.annual_rate, int(term_months), product.method, start)
    apr = annualized_rate(principal, fee, schedule)
    loan_id = _INSERT_LOAN.execute(
        {
            "application_id": application_id,
            "product_id": product.id,
            "principal": principal,
            "annual_rate": product.annual_rate,
            "method": product.method,
            "fee": fee,
            "term_months": int(term_months),
            "start_date": start,
            "apr": apr,
            "core_status": "not_configured",
            "created_at": utcnow(),
        }
    ).scalar()
    rows = {f"{column}_{i}_": getattr(item, column) for i, item in enumerate(schedule) for column in _SCHEDULE_COLUMNS}
    rows.update({f"loan_id_{i}_": loan_id for i in range(len(schedule))})
    _insert_schedule(len(schedule)).defer(rows)
    return CreatedLoan(loan_id, apr)


@service("start_disbursement_service")
def start_disbursement(call: ServiceCall) -> dict[str, Any]:
    """Create the loan and its schedule locally; the core loan system push comes later."""
    decision = call.data["decision"]
    loan = create_loan(
        call.data["application_id"],
        Decimal(str(decision["final_amount"])),
        int(decision["final_term"]),
        datetime.now(BEIJING).date(),
    )
    return {"loan_id": loan.id, "core_system": "not_configured", "apr": str(loan.apr)}


@service("credit_lookup_service")
def credit_lookup(call: ServiceCall) -> dict[str, Any]:
    """No credit-reference system is configured yet: say so plainly (no invented report)."""
    return {
        "status": "unavailable",
        "message": "征信报告暂不可用：未配置征信系统 (credit report unavailable: no credit-reference system configured)",
        "requested_at": utcnow().isoformat(),
    }


@service("notify_rejection_service")
def notify_rejection(call: ServiceCall) -> dict[str, Any]:
    """No SMS gateway is configured yet: record that the notice was not sent."""
    return {"status": "not_sent", "message": "未配置短信网关 (no SMS gateway configured)", "at": utcnow().isoformat()}
