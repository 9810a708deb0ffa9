"""Customer-facing application entry and status lookup (F1, F2)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, exists, func, insert, select
from sqlalchemy.exc import IntegrityError

from app import audit
from app.errors import ApiError, not_found
from app.extensions import db
from app.fastsql import Hot
from app.models import Application, Customer, LoanProduct, Region, StageEntry, Team, team_approvers
from app.models.base import utcnow
from app.ratelimit import counter, too_many
from app.ratelimit import throttle as throttle_key
from app.requestctx import client_ip
from app.workflow import runtime


def throttle(kind: str) -> None:
    """F1 abuse throttling per client address."""
    config = current_app.config
    throttle_key(
        f"ydx:public:{kind}:{client_ip()}",
        config["YDX_PUBLIC_SUBMIT_LIMIT"],
        config["YDX_PUBLIC_SUBMIT_WINDOW_SECONDS"],
    )


PROCESS_KEY = "loan_lifecycle"
_REGIONS, _TEAMS, _PRODUCTS = Region.__table__, Team.__table__, LoanProduct.__table__
_CUSTOMERS, _APPLICATIONS = Customer.__table__, Application.__table__
_PRODUCT_COLUMNS = (
    _PRODUCTS.c.id,
    _PRODUCTS.c.code,
    _PRODUCTS.c.min_amount,
    _PRODUCTS.c.max_amount,
    _PRODUCTS.c.min_term,
    _PRODUCTS.c.max_term,
)
_FIRST_TEAM = _TEAMS.alias("first_team")
# The region, the team that serves it (the first, by id), the region's default product and
# the team's approvers (one row per approver, ordered), in one query.
_PLACE = Hot(
    select(
        _REGIONS.c.id,
        _REGIONS.c.code,
        _REGIONS.c.default_product_id,
        _TEAMS.c.id.label("team_id"),
        _TEAMS.c.approval_mode,
        *(column.label(f"product_{column.key}") for column in _PRODUCT_COLUMNS),
        team_approvers.c.user_id.label("approver_id"),
        runtime.newest_definition_id(bindparam("process_key_")).label("definition_id"),
    )
    .select_from(
        _REGIONS.outerjoin(
            _TEAMS,
            _TEAMS.c.id
            == select(func.min(_FIRST_TEAM.c.id)).where(_FIRST_TEAM.c.region_id == _REGIONS.c.id).scalar_subquery(),
        )
        .outerjoin(_PRODUCTS, _PRODUCTS.c.id == _REGIONS.c.default_product_id)
        .outerjoin(team_approvers, team_approvers.c.team_id == _TEAMS.c.id)
    )
    .where(_REGIONS.c.code == bindparam("code_"))
    .order_by(team_approvers.c.user_id)
)


@dataclass(frozen=True)
class _Product:
    id: int
    code: str
    min_amount: Any
    max_amount: Any
    min_term: int
    max_term: int


_PRODUCT_BY_CODE = Hot(select(*_PRODUCT_COLUMNS).where(_PRODUCTS.c.code == bindparam("code_"), _PRODUCTS.c.active))
_CUSTOMER_BY_ID_NUMBER = Hot(select(_CUSTOMERS.c.id).where(_CUSTOMERS.c.id_number == bindparam("id_number_")))
_NEW_CUSTOMER_COLUMNS = ("name", "phone", "id_number", "region_id", "profile", "created_at", "updated_at")
# A first application creates its customer; the INSERT finds nothing to do (and returns no
# id) when the ID number is known already.
_INSERT_NEW_CUSTOMER = Hot(
    insert(_CUSTOMERS)
    .from_select(
        list(_NEW_CUSTOMER_COLUMNS),
        select(*(bindparam(name, type_=_CUSTOMERS.c[name].type) for name in _NEW_CUSTOMER_COLUMNS)).where(
            ~exists().where(_CUSTOMERS.c.id_number == bindparam("id_number", type_=_CUSTOMERS.c.id_number.type))
        ),
    )
    .returning(_CUSTOMERS.c.id)
)
_INSERT_APPLICATION = Hot(insert(_APPLICATIONS).returning(_APPLICATIONS.c.id))
_INSERT_STAGE = Hot(insert(StageEntry.__table__))


def _product(place: Any, code: str | None) -> Any:
    if code:
        product = _PRODUCT_BY_CODE.execute({"code_": code}).first()
        if product is None:
            raise ApiError(
                "validation_error",
                _("贷款产品不存在"),
                422,
                fields={"product_code": ["贷款产品不存在 (unknown product)"]},
            )
        return product
    if place.product_id is None:
        raise ApiError(
            "validation_error",
            _("该地区没有默认产品"),
            422,
            fields={"product_code": ["该地区须指定贷款产品 (required in this region)"]},
        )
    return _Product(
        place.product_id,
        place.product_code,
        place.product_min_amount,
        place.product_max_amount,
        place.product_min_term,
        place.product_max_term,
    )


def _check_limits(product: Any, form: dict[str, Any]) -> None:
    fields: dict[str, list[str]] = {}
    if not product.min_amount <= form["amount"] <= product.max_amount:
        fields["amount"] = [
            f"须在 {product.min_amount} 至 {product.max_amount} 元之间 (must be {product.min_amount} to {product.max_amount} yuan for this product)"
        ]
    if not product.min_term <= form["term_months"] <= product.max_term:
        fields["term_months"] = [
            f"须在 {product.min_term} 至 {product.max_term} 个月之间 (must be {product.min_term} to {product.max_term} months for this product)"
        ]
    if fields:
        raise ApiError("validation_error", _("金额或期限超出产品范围"), 422, fields=fields)


def _new_number() -> str:
    return f"YDX{utcnow():%Y%m%d}{secrets.randbelow(10**10):010d}"


class SubmitConflict(Exception):
    """A unique key was taken meanwhile (a racing first submission of the same customer,
    an application number drawn twice): the whole submission is simply run again."""


@dataclass(frozen=True)
class Submitted:
    """What the applicant is told: the number to quote and the stage it starts in."""

    application_no: str
    stage: str


def _customer_id(form: dict[str, Any], region_id: int, now: datetime) -> int:
    """The customer with this ID number, created on first application.

    An existing customer's name and phone are never changed from the anonymous form (only
    staff maintain customer data, F10)."""
    id_number = form["id_number"].upper()
    created = _INSERT_NEW_CUSTOMER.execute(
        {
            "name": form["name"].strip(),
            "phone": form["phone"],
            "id_number": id_number,
            "region_id": region_id,
            "profile": {},
            "created_at": now,
            "updated_at": now,
        }
    ).scalar()
    if created is not None:
        return int(created)
    return int(_CUSTOMER_BY_ID_NUMBER.execute({"id_number_": id_number}).scalar())


def submit(form: dict[str, Any]) -> Submitted:
    """Store customer + application and start the lifecycle, all in one transaction.

    Raises `SubmitConflict` when a unique key was taken by a concurrent transaction; the
    caller rolls back and runs the submission again (see `submit_with_retry`)."""
    rows = _PLACE.execute({"code_": form["region_code"], "process_key_": PROCESS_KEY}).all()
    place = rows[0] if rows else None
    if place is None:
        raise ApiError(
            "validation_error", _("地区不存在"), 422, fields={"region_code": ["地区不存在 (unknown region)"]}
        )
    if place.team_id is None:
        raise ApiError(
            "validation_error",
            _("该地区暂无服务团队"),
            422,
            fields={"region_code": ["该地区暂无服务团队 (no team serves this region)"]},
        )
    product = _product(place, form.get("product_code"))
    _check_limits(product, form)
    now = utcnow()
    stage = "pending_assignment"
    application_no = _new_number()
    try:
        customer_id = _customer_id(form, place.id, now)
        application_id = _INSERT_APPLICATION.execute(
            {
                "application_no": application_no,
                "customer_id": customer_id,
                "applicant_name": form["name"].strip(),
                "applicant_phone": form["phone"],
                "region_id": place.id,
                "team_id": place.team_id,
                "officer_id": None,
                "product_id": product.id,
                "amount": form["amount"],
                "term_months": form["term_months"],
                "purpose": form["purpose"],
                "channel": form["channel"],
                "stage": stage,
                "consent_text_version": current_app.config["YDX_CONSENT_TEXT_VERSION"],
                "consent_at": now,
                "credit_auth_text_version": current_app.config["YDX_CREDIT_AUTH_TEXT_VERSION"],
                "credit_auth_at": now,
                "client_ip": client_ip(),
                "created_at": now,
                "updated_at": now,
            }
        ).scalar()
    except IntegrityError as exc:
        raise SubmitConflict from exc
    context = {
        "application_id": application_id,
        "application_no": application_no,
        "team_id": place.team_id,
        "region_id": place.id,
    }
    data = {
        **context,
        "region_code": place.code,
        "approval_mode": place.approval_mode,
        "approvers": [row.approver_id for row in rows if row.approver_id is not None],
        "product_code": product.code,
        "amount_requested": form["amount"],
        "term_requested": form["term_months"],
    }
    if place.definition_id is None:
        raise ApiError("process_not_deployed", f"业务流程尚未部署 (process '{PROCESS_KEY}' is not deployed)", 409)
    runtime.start(PROCESS_KEY, application_no, data, context=context, stage=stage, definition_id=place.definition_id)
    _INSERT_STAGE.defer({"application_id": application_id, "stage": stage, "actor_id": None, "at": now})
    audit.record(
        "application.submit",
        None,
        "application",
        application_no,
        after={
            "channel": form["channel"],
            "consent_text_version": current_app.config["YDX_CONSENT_TEXT_VERSION"],
            "credit_auth_text_version": current_app.config["YDX_CREDIT_AUTH_TEXT_VERSION"],
        },
    )
    return Submitted(application_no, stage)


STATUS_MISSES_PER_APPLICATION = 10
STATUS_MISS_WINDOW = 3600


def status(application_no: str, phone: str) -> Application:
    """The application if the phone matches its customer; 404 otherwise (no enumeration).
    Wrong phones for one application number are limited (10 an hour, from any address):
    someone who knows the number and a masked phone (`138****5678`) must not try the
    hidden digits one by one."""
    key = f"ydx:public:status-miss:{application_no[:32]}"
    store = counter()
    if store.get(key) >= STATUS_MISSES_PER_APPLICATION:
        raise too_many(store.ttl(key))
    application = db.session.scalar(
        select(Application).where(Application.application_no == application_no, Application.applicant_phone == phone)
    )
    if application is None:
        store.incr(key, STATUS_MISS_WINDOW)
        raise not_found("application")
    return application


def submit_with_retry(
    form: dict[str, Any],
    attempts: int = 3,
    remember: Callable[[dict[str, Any]], None] | None = None,
) -> Submitted:
    """Submit and commit, running the whole submission again after a unique-key race.
    `remember` gets the answer inside the transaction, before the commit (the request's
    idempotency key is stored with the application it made)."""
    from app.dispatch import commit_and_dispatch

    for _attempt in range(attempts):
        try:
            application = submit(form)
            if remember is not None:
                remember({"application_no": application.application_no, "status": application.stage})
            commit_and_dispatch()
            return application
        except SubmitConflict:
            db.session.rollback()
    raise ApiError("conflict", _("请稍后重试"), 409)
