"""Customer-facing application entry and status lookup (F1, F2)."""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import audit
from app.errors import ApiError, not_found
from app.extensions import db
from app.models import Application, Customer, LoanProduct, Region, StageEntry, Team, team_approvers
from app.models.base import utcnow
from app.ratelimit import counter
from app.requestctx import client_ip
from app.workflow import runtime


def throttle(kind: str) -> None:
    """F1 abuse throttling per client address."""
    limit = current_app.config["YDX_PUBLIC_SUBMIT_LIMIT"]
    window = current_app.config["YDX_PUBLIC_SUBMIT_WINDOW_SECONDS"]
    key = f"ydx:public:{kind}:{client_ip()}"
    if counter().incr(key, window) > limit:
        raise ApiError(
            "too_many_requests", _("请求过于频繁，请稍后再试"), 429, headers={"Retry-After": str(counter().ttl(key))}
        )


def _product(region: Region, code: str | None) -> LoanProduct:
    if code:
        product = db.session.scalar(select(LoanProduct).where(LoanProduct.code == code, LoanProduct.active))
        if product is None:
            raise ApiError("validation_error", _("贷款产品不存在"), 422, fields={"product_code": ["unknown product"]})
        return product
    if region.default_product_id is None:
        raise ApiError(
            "validation_error", _("该地区没有默认产品"), 422, fields={"product_code": ["required in this region"]}
        )
    return db.session.get(LoanProduct, region.default_product_id)


def _check_limits(product: LoanProduct, form: dict[str, Any]) -> None:
    fields: dict[str, list[str]] = {}
    if not product.min_amount <= form["amount"] <= product.max_amount:
        fields["amount"] = [f"须在 {product.min_amount} 至 {product.max_amount} 元之间 (outside the product's range)"]
    if not product.min_term <= form["term_months"] <= product.max_term:
        fields["term_months"] = [
            f"须在 {product.min_term} 至 {product.max_term} 个月之间 (outside the product's range)"
        ]
    if fields:
        raise ApiError("validation_error", _("金额或期限超出产品范围"), 422, fields=fields)


def _new_number() -> str:
    return f"YDX{utcnow():%Y%m%d}{secrets.randbelow(10**10):010d}"


class SubmitConflict(Exception):
    """A unique key was taken meanwhile (a racing first submission of the same customer,
    an application number drawn twice): the whole submission is simply run again."""


def _customer(form: dict[str, Any], region: Region) -> Customer:
    """The customer with this ID number, created on first application.

    An existing customer's name and phone are never changed from the anonymous form (only
    staff maintain customer data, F10)."""
    id_number = form["id_number"].upper()
    found = db.session.scalar(select(Customer).where(Customer.id_number == id_number))
    if found is not None:
        return found
    customer = Customer(name=form["name"].strip(), phone=form["phone"], id_number=id_number, region_id=region.id)
    db.session.add(customer)
    return customer


def submit(form: dict[str, Any]) -> Application:
    """Store customer + application and start the lifecycle, all in one transaction.

    Raises `SubmitConflict` when a unique key was taken by a concurrent transaction; the
    caller rolls back and runs the submission again (see `submit_with_retry`)."""
    region = db.session.scalar(select(Region).where(Region.code == form["region_code"]))
    if region is None:
        raise ApiError("validation_error", _("地区不存在"), 422, fields={"region_code": ["unknown region"]})
    team = db.session.scalar(select(Team).where(Team.region_id == region.id).order_by(Team.id).limit(1))
    if team is None:
        raise ApiError(
            "validation_error", _("该地区暂无服务团队"), 422, fields={"region_code": ["no team serves this region"]}
        )
    product = _product(region, form.get("product_code"))
    _check_limits(product, form)
    customer = _customer(form, region)
    now = utcnow()
    application = Application(
        application_no=_new_number(),
        customer=customer,
        applicant_name=form["name"].strip(),
        applicant_phone=form["phone"],
        region_id=region.id,
        team_id=team.id,
        product_id=product.id,
        amount=form["amount"],
        term_months=form["term_months"],
        purpose=form["purpose"],
        channel=form["channel"],
        stage="pending_assignment",
        consent_text_version=current_app.config["YDX_CONSENT_TEXT_VERSION"],
        consent_at=now,
        credit_auth_text_version=current_app.config["YDX_CREDIT_AUTH_TEXT_VERSION"],
        credit_auth_at=now,
        client_ip=client_ip(),
    )
    db.session.add(application)
    try:
        db.session.flush()
    except IntegrityError as exc:
        raise SubmitConflict from exc
    context = {
        "application_id": application.id,
        "application_no": application.application_no,
        "team_id": team.id,
        "region_id": region.id,
    }
    data = {
        **context,
        "region_code": region.code,
        "approval_mode": team.approval_mode,
        "approvers": list(
            db.session.scalars(
                select(team_approvers.c.user_id)
                .where(team_approvers.c.team_id == team.id)
                .order_by(team_approvers.c.user_id)
            )
        ),
        "product_code": product.code,
        "amount_requested": form["amount"],
        "term_requested": form["term_months"],
    }
    db.session.add(StageEntry(application_id=application.id, stage=application.stage, actor_id=None, at=now))
    runtime.start("loan_lifecycle", application.application_no, data, context=context, stage=application.stage)
    audit.record(
        "application.submit",
        None,
        "application",
        application.application_no,
        after={
            "channel": application.channel,
            "consent_text_version": application.consent_text_version,
            "credit_auth_text_version": application.credit_auth_text_version,
        },
    )
    return application


def status(application_no: str, phone: str) -> Application:
    """The application if the phone matches its customer; 404 otherwise (no enumeration)."""
    application = db.session.scalar(
        select(Application).where(Application.application_no == application_no, Application.applicant_phone == phone)
    )
    if application is None:
        raise not_found("application")
    return application


def submit_with_retry(form: dict[str, Any], attempts: int = 3) -> Application:
    """Submit and commit, running the whole submission again after a unique-key race."""
    from app.dispatch import commit_and_dispatch

    for _attempt in range(attempts):
        try:
            application = submit(form)
            commit_and_dispatch()
            return application
        except SubmitConflict:
            db.session.rollback()
    raise ApiError("conflict", _("请稍后重试"), 409)
