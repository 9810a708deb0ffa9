"""Applications, attachments and loans (api.md)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, send_file
from marshmallow import fields, validate
from sqlalchemy import select

from app import docs
from app.auth.permissions import caller, requires
from app.errors import not_found
from app.extensions import db
from app.hardening import Blueprint
from app.loans import services
from app.models import Attachment
from app.models.business import STAGES
from app.schemas import PageArgs, RevealArgs, page_of

blp = Blueprint("loans", __name__, url_prefix="/api/v1", description="申请与贷款 Applications and loans")


class ApplicationArgs(PageArgs):
    stage = fields.String(load_default=None, validate=validate.OneOf(STAGES))


@blp.route("/applications")
@blp.alt_response(200, schema=docs.ApplicationPageDoc, success=True, description="OK")
@blp.arguments(ApplicationArgs(), location="query")
@requires("application.view")
def list_applications(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Applications within the caller's data scope."""
    rows, total = services.list_applications(caller(), args["page"], args["per_page"], args["stage"])
    return page_of(
        [
            {
                "application_no": a.application_no,
                "stage": a.stage,
                "amount": str(a.amount),
                "term_months": a.term_months,
                "team_id": a.team_id,
                "officer_id": a.officer_id,
                "created_at": a.created_at.isoformat(),
                "updated_at": a.updated_at.isoformat(),
            }
            for a in rows
        ],
        total,
        args,
    )


@blp.route("/applications/<application_no>")
@blp.alt_response(200, schema=docs.ApplicationDetailDoc, success=True, description="OK")
@blp.arguments(RevealArgs(), location="query")
@requires("application.view")
def get_application(args: dict[str, Any], application_no: str):  # type: ignore[no-untyped-def]
    """Stage, history, approvals, credit report, decision (if allowed), loan id."""
    from app.customers.services import reveal

    who = caller()
    application = services.application_view(application_no, who)
    full = reveal(who, args["full"], "application", application.application_no)
    detail = services.application_detail(application, who, full)
    db.session.commit()
    return detail


@blp.route("/applications/<application_no>/attachments", methods=["POST"])
@blp.alt_response(201, schema=docs.AttachmentDoc, success=True, description="OK")
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            }
        },
    }
)
@requires("application.upload")
def upload_attachment(application_no: str):  # type: ignore[no-untyped-def]
    """Multipart upload (field `file`): photo or document, type checked from the content."""
    who = caller()
    application = services.get_application(application_no, who, "application.upload")
    attachment = services.store_attachment(application, services.single_upload(request.files.getlist("file")), who)
    db.session.commit()
    return {
        "id": attachment.id,
        "sha256": attachment.sha256,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "filename": attachment.filename,  # (beyond api.md's four: as the application detail lists it)
    }, 201


@blp.route("/applications/<application_no>/attachments/<int(max=2147483647):attachment_id>")
@blp.doc(
    responses={
        "200": {
            "description": "the stored file, with the type its content was checked to be at upload",
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in ("image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf")
            },
        }
    }
)
@requires("application.view")
def download_attachment(application_no: str, attachment_id: int):  # type: ignore[no-untyped-def]
    """Whoever may see the application may download its attachments."""
    application = services.get_application(application_no, caller())
    attachment = db.session.scalar(
        select(Attachment).where(Attachment.id == attachment_id, Attachment.application_id == application.id)
    )
    if attachment is None:
        raise not_found("attachment")
    response = send_file(
        services.attachment_path(attachment), mimetype=attachment.content_type, download_name=attachment.filename
    )
    # Identity documents and photos: never kept by a shared cache or the browser's disk
    # cache, and shown only as the type their content was checked to be.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _money(value: Any) -> str:
    return f"{value:.2f}"


@blp.route("/loans/<int(max=2147483647):loan_id>")
@blp.alt_response(200, schema=docs.LoanDoc, success=True, description="OK")
@requires("loan.view")
def get_loan(loan_id: int):  # type: ignore[no-untyped-def]
    """Principal, rate, method, fee, term, start date and the annualized rate (APR)."""
    loan = services.get_loan(loan_id, caller())
    return {
        "id": loan.id,
        "principal": _money(loan.principal),
        "annual_rate": str(loan.annual_rate.normalize()),
        "method": loan.method,
        "fee": _money(loan.fee),
        "term_months": loan.term_months,
        "start_date": loan.start_date.isoformat(),
        "apr": _money(loan.apr),
        "core_status": loan.core_status,
    }


@blp.route("/loans/<int(max=2147483647):loan_id>/schedule")
@blp.alt_response(200, schema=docs.InstallmentDoc(many=True), success=True, description="OK")
@requires("loan.view")
def get_schedule(loan_id: int):  # type: ignore[no-untyped-def]
    """The installments as a JSON array (api.md: `[{seq, due_date, ...}]`), money as
    decimal strings. A schedule is one loan's fixed set of rows, not a paginated list."""
    loan = services.get_loan(loan_id, caller())
    items = [
        {
            "seq": i.seq,
            "due_date": i.due_date.isoformat(),
            "principal": _money(i.principal),
            "interest": _money(i.interest),
            "payment": _money(i.payment),
            "balance": _money(i.balance),
        }
        for i in loan.installments
    ]
    return jsonify(items)
