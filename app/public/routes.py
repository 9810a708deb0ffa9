"""Customer H5 endpoints: submit an application, look up its status (no login)."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import request
from flask_babel import gettext as _

from app.errors import ApiError
from app.extensions import db
from app.hardening import Blueprint
from app.public import idempotency, services
from app.public.schemas import ApplicationForm, StatusArgs, StatusSchema, SubmittedSchema

blp = Blueprint("public", __name__, url_prefix="/api/v1/public", description="客户申请 Customer applications")


def throttle_first() -> None:
    """F1 abuse throttling counts every request of an address before anything checks its
    input: invalid submissions, wrong phone numbers and bodies the hardening refuses (not a
    JSON object, NUL characters) count too. Installed as the app's first hook
    (app/__init__.py), so it runs before hardening's, which would answer first."""
    if request.blueprint == blp.name:
        services.throttle("submit" if request.method == "POST" else "status")


@blp.route("/applications", methods=["POST"])
@blp.doc(
    security=[],
    parameters=[
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "description": "repeat a submission safely: the same key and body answer the first application (24 h)",
        }
    ],
)
@blp.arguments(ApplicationForm())
@blp.response(201, SubmittedSchema)
def submit(form: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Submit a loan application; both consents must be `true`. With an `Idempotency-Key`
    header a repeated request answers the application the first one made."""
    claim = idempotency.claim_of_request(form)
    if claim is None:
        return _answer(services.submit_with_retry(form))
    if (answer := idempotency.replayed(claim)) is not None:
        return answer
    try:
        return _answer(services.submit_with_retry(form, remember=partial(idempotency.remember, claim)))
    except idempotency.KeyTaken:  # the same request, a moment earlier: its application, not a second
        db.session.rollback()
        answer = idempotency.replayed(claim)
        if answer is None:  # (the other request's key expired in between: practically never)
            raise ApiError("conflict", _("请稍后重试"), 409) from None
        return answer


def _answer(application: services.Submitted) -> dict[str, Any]:
    return {"application_no": application.application_no, "status": application.stage}


@blp.route("/applications/<application_no>")
@blp.doc(security=[])
@blp.arguments(StatusArgs(), location="query")
@blp.response(200, StatusSchema)
def status(args: dict[str, Any], application_no: str):  # type: ignore[no-untyped-def]
    """Stage of an application, given its number and the applicant's phone."""
    return services.status(application_no, args["phone"])
