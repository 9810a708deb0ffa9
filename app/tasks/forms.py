"""Form handlers of the loan lifecycle's user tasks (task keys of api.md).

Each handler validates what a performer submits with a marshmallow schema and returns
the clean values that the BPMN reads (`assign_officer["officer_id"]`, the approval item,
`supervisor_decide["amount"]`, ...). Money is Decimal, terms are whole months.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import bindparam, select, update

from app.extensions import db
from app.fastsql import Hot
from app.models import Application, Customer, LoanProduct, User, user_roles
from app.models.base import BEIJING, utcnow
from app.public.validators import PHONE, adult_problem, id_number_problem, name_problem
from app.workflow.registry import FormContext, form

_APPLICATIONS = Application.__table__

DECISIONS = ("approve", "reject")
MAX_ID = 2**31 - 1


class Id(fields.Integer):
    """A database id: a strict positive integer the database can hold."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class Amount(fields.Decimal):
    """Yuan: a positive decimal with at most two places, answered as a string. As text only
    plain ASCII digits with an optional point ("95000.50"): `Decimal` would also read
    "30_000", "1e4", "+30000" and full-width digits, none of which a money field means."""

    _TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
    OPENAPI: ClassVar[dict[str, str]] = {
        "type": "string",
        "format": "decimal",
        "pattern": r"^[0-9]+(\.[0-9]{1,2})?$",
        "example": "95000.00",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {**self.OPENAPI, **kwargs.get("metadata", {})}
        super().__init__(places=None, as_string=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool):
            raise ValidationError("金额必须是数字 (amount must be a number)")
        if isinstance(value, str) and not self._TEXT.fullmatch(value):
            raise ValidationError('金额须写成 "95000.00" 这样的数字 (amount must be written like "95000.00")')
        number = super()._deserialize(value, attr, data, **kwargs)
        if not number.is_finite() or number <= 0:
            raise ValidationError("金额必须大于 0 (amount must be greater than 0)")
        if number.adjusted() >= 12:
            raise ValidationError("金额过大 (amount too large)")
        if number.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValidationError("金额最多两位小数 (at most 2 decimal places)")
        return number.quantize(Decimal("0.01"))


class Term(fields.Integer):
    """Whole months ≥ 1; "12.5" or true are refused rather than truncated. No upper bound
    here: the product's own range (checked with the product wherever a term is decided)
    is the one a performer meets, so a form never names two different ranges."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(min=1), **kwargs)


def _describe(*items: tuple[str, str, bool, dict[str, Any]]):  # type: ignore[no-untyped-def]
    def describe(_data: dict[str, Any]) -> dict[str, Any]:
        return {"fields": [{"name": n, "type": t, "required": r, **extra} for n, t, r, extra in items]}

    return describe


_SCHEMAS: dict[type[Schema], Schema] = {}


def _load(schema: type[Schema], payload: dict[str, Any]) -> dict[str, Any]:
    """Validate with one instance per form class (building a Schema copies its fields)."""
    instance = _SCHEMAS.get(schema)
    if instance is None:
        instance = _SCHEMAS.setdefault(schema, schema())
    return instance.load(payload)


class AssignOfficerForm(Schema):
    officer_id = Id(required=True)


_USERS = User.__table__
_SET_OFFICER = Hot(
    update(_APPLICATIONS)
    .where(_APPLICATIONS.c.id == bindparam("application_id_"))
    .values(officer_id=bindparam("officer_id_"), updated_at=bindparam("now_"))
)


def _team_officers(*columns: Any) -> Any:
    """The active officers of the team `team_id_`."""
    return (
        select(*columns)
        .join(user_roles, user_roles.c.user_id == _USERS.c.id)
        .where(_USERS.c.active, _USERS.c.team_id == bindparam("team_id_"), user_roles.c.role_code == "officer")
    )


_TEAM_OFFICER = Hot(_team_officers(_USERS.c.id).where(_USERS.c.id == bindparam("user_id_")))


def _record_officer(task: Any, clean: dict[str, Any]) -> None:
    """The assigned officer owns the application from now on (data scope `own`)."""
    _SET_OFFICER.defer({"application_id_": task.application_id, "officer_id_": clean["officer_id"], "now_": utcnow()})


_TEAM_OFFICERS = Hot(_team_officers(_USERS.c.id, _USERS.c.display_name, _USERS.c.username).order_by(_USERS.c.id))


def _describe_assign_officer(data: dict[str, Any]) -> dict[str, Any]:
    """The lead picks one of the team's active officers: they are listed by id and name."""
    officers = _TEAM_OFFICERS.execute({"team_id_": data.get("team_id")}).all() if data.get("team_id") else []
    choices = [{"value": o.id, "label": f"{o.display_name} ({o.username})"} for o in officers]
    return {"fields": [{"name": "officer_id", "type": "integer", "required": True, "choices": choices}]}


@form("assign_officer", _describe_assign_officer, after=_record_officer)
def assign_officer(payload: dict[str, Any], ctx: FormContext) -> dict[str, Any]:
    """The chosen officer must be an active officer of the application's team."""
    clean = _load(AssignOfficerForm, payload)
    officer = _TEAM_OFFICER.execute({"user_id_": clean["officer_id"], "team_id_": ctx.team_id}).first()
    if officer is None:
        raise ValidationError({"officer_id": ["不是本团队的客户经理 (not an officer of this team)"]})
    return clean


MEETING_RANGE = timedelta(days=366)


class LocalDateTime(fields.AwareDateTime):
    """ISO-8601 date and time; without an offset it is read as Beijing time (+08:00), as
    the console's date-time inputs send it. A date alone is refused: it names no time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", default_timezone=BEIJING, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, str) and len(value.strip()) <= 10:
            raise ValidationError("须包含日期和时间，如 2026-11-20T10:00:00+08:00 (date and time required)")
        return super()._deserialize(value, attr, data, **kwargs)


# A visit is recorded after it happened; a day of slack absorbs a wrong clock or time zone,
# a year back catches a mistyped year.
VISIT_FUTURE_SLACK = timedelta(days=1)
VISIT_OLDEST = timedelta(days=366)


def _visit_time_problem(visited_at: datetime, now: datetime) -> str | None:
    if visited_at > now + VISIT_FUTURE_SLACK:
        return "上门时间不能晚于当前时间 (the visit time lies in the future)"
    if visited_at < now - VISIT_OLDEST:
        return "上门时间早于一年前，请检查年份 (the visit time is more than a year ago)"
    return None


def _hand_over_application(task: Any, target: Any, actor_id: int) -> None:
    """Reassigning the officer's visit or collection hands the whole application over:
    the new officer owns it (data scope) and receives the following officer tasks."""
    from sqlalchemy import update

    from app.models import Application

    officer = db.session.scalar(
        select(User.id)
        .join(user_roles, user_roles.c.user_id == User.id)
        .where(User.id == target.id, User.active, User.team_id == task.team_id, user_roles.c.role_code == "officer")
    )
    if officer is None:
        raise ValidationError({"user_id": ["不是本团队的客户经理 (not an officer of this team)"]})
    from app.workflow import runtime

    # the instance before the application: the order in which completing a task locks them
    runtime.set_task_data(task, "assign_officer", {"officer_id": target.id, "handed_over": True}, actor_id)
    db.session.execute(update(Application).where(Application.id == task.application_id).values(officer_id=target.id))


class OnsiteVisitForm(Schema):
    visited_at = LocalDateTime(required=True)
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


@form(
    "onsite_visit",
    _describe(("visited_at", "datetime", True, {}), ("notes", "string", False, {})),
    on_assign=_hand_over_application,
    contact=True,
)
def onsite_visit(payload: dict[str, Any], ctx: FormContext) -> dict[str, Any]:
    """Record the visit time (not in the future) and notes."""
    clean = _load(OnsiteVisitForm, payload)
    problem = _visit_time_problem(clean["visited_at"], utcnow())
    if problem:
        raise ValidationError({"visited_at": [problem]})
    clean["visited_at"] = clean["visited_at"].isoformat()
    return clean


class CustomerDetails(fields.Dict):
    """What the officer registers about the customer on site: a flat object of short texts
    and numbers; the identity and contact fields keep their formats."""

    MAX_KEYS = 50
    CHECKED = frozenset({"phone", "id_number", "name"})
    MAX_EXACT = 2**53 - 1  # the largest whole number every JSON reader keeps exact (a browser's)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
        given = super()._deserialize(value, attr, data, **kwargs)
        problems: dict[str, list[str]] = {}
        if len(given) > self.MAX_KEYS:
            raise ValidationError(f"最多 {self.MAX_KEYS} 项 (at most {self.MAX_KEYS} entries)")
        details: dict[str, Any] = {}
        for key, item in given.items():  # "Phone" is the phone: checked and kept as `phone`
            name = key.lower() if isinstance(key, str) and key.lower() in self.CHECKED else key
            if name in details:
                problems[name] = ["字段重复 (given twice)"]
            details[name] = item
        for key, item in details.items():
            if not isinstance(key, str) or not 1 <= len(key) <= 64:
                problems[str(key)[:64]] = ["名称须为 1 至 64 个字符 (names are 1 to 64 characters)"]
            elif isinstance(item, bool) or item is None:
                continue
            elif isinstance(item, (dict, list)):
                problems[key] = ["须为文字或数字 (must be a text or a number)"]
            elif isinstance(item, str) and len(item) > 500:
                problems[key] = ["最多 500 个字符 (at most 500 characters)"]
            elif not isinstance(item, (str, int, float)):
                problems[key] = ["须为文字或数字 (must be a text or a number)"]
            elif isinstance(item, int) and abs(item) > self.MAX_EXACT:
                problems[key] = ["数字过大，请以文字填写 (too large a number: send it as text)"]
        for key, check in (("phone", _phone_problem), ("id_number", _customer_id_problem), ("name", name_problem)):
            if key in details and key not in problems:
                problem = check(details[key]) if isinstance(details[key], str) else "须为文字 (must be a text)"
                if problem:
                    problems[key] = [problem]
        if problems:
            raise ValidationError(problems)
        if isinstance(details.get("id_number"), str):
            details["id_number"] = details["id_number"].upper()
        return details


def _phone_problem(value: str) -> str | None:
    return None if PHONE.match(value) else "手机号格式错误 (must be an 11-digit mainland mobile number)"


def _customer_id_problem(value: str) -> str | None:
    """The customer's own ID number: valid, and an adult's (as on the public form)."""
    return id_number_problem(value) or adult_problem(value.upper(), utcnow().astimezone(BEIJING).date())


def _customer_id_number(application_id: Any) -> str | None:
    """The ID number of the application's customer: the central record is keyed by it
    (F10), so what the officer registers on site may repeat it but not contradict it."""
    return db.session.scalar(
        select(Customer.id_number)
        .join(Application, Application.customer_id == Customer.id)
        .where(Application.id == application_id)
    )


class CollectMaterialsForm(Schema):
    customer = CustomerDetails(load_default=dict)
    attachments = fields.List(Id(), load_default=list, validate=validate.Length(max=200))
    notes = fields.String(load_default="", validate=validate.Length(max=4000))


def _register_customer_information(task: Any, clean: dict[str, Any]) -> None:
    """F4/F10: what the officer registers on site is kept on the customer centrally."""
    if not clean.get("customer"):
        return
    customer = db.session.scalar(
        select(Customer)
        .join(Application, Application.customer_id == Customer.id)
        .where(Application.id == task.application_id)
    )
    customer.profile = {**(customer.profile or {}), **clean["customer"]}


@form(
    "collect_materials",
    _describe(
        ("customer", "object", False, {}),
        ("attachments", "array<integer>", False, {"items": "the id of an attachment uploaded to this application"}),
        ("notes", "string", False, {}),
    ),
    after=_register_customer_information,
    on_assign=_hand_over_application,
    contact=True,
)
def collect_materials(payload: dict[str, Any], ctx: FormContext) -> dict[str, Any]:
    """Attachments must have been uploaded to this very application."""
    from app.loans.services import attachment_ids_of

    clean = _load(CollectMaterialsForm, payload)
    if len(json.dumps(clean["customer"], default=str)) > 16_000:
        raise ValidationError({"customer": ["客户信息过大 (customer information too large)"]})
    given_id = clean["customer"].get("id_number")
    if isinstance(given_id, str) and given_id != _customer_id_number(ctx.data.get("application_id")):
        raise ValidationError(
            {"customer": {"id_number": ["与申请人的身份证号不一致 (differs from the applicant's ID number)"]}}
        )
    repeated = sorted({i for i in clean["attachments"] if clean["attachments"].count(i) > 1})
    if repeated:
        listed = ", ".join(str(i) for i in repeated)
        raise ValidationError({"attachments": [f"附件重复：{listed} (listed more than once: {listed})"]})
    known = attachment_ids_of(ctx.data.get("application_id")) if clean["attachments"] else set()
    unknown = [i for i in clean["attachments"] if i not in known]
    if unknown:
        raise ValidationError({"attachments": [f"不属于本申请的附件 (not attachments of this application): {unknown}"]})
    return clean


class DecisionForm(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    amount = Amount(load_default=None)
    term_months = Term(load_default=None)
    comment = fields.String(load_default="", validate=validate.Length(max=2000))

    @validates_schema
    def _approve_needs_terms(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("decision") == "approve":
            missing = {
                k: ["批准时必填 (required when approving)"] for k in ("amount", "term_months") if data.get(k) is None
            }
            if missing:
                raise ValidationError(missing)


_DECISION_FIELDS = (
    ("decision", "enum:approve|reject", True, {"choices": list(DECISIONS)}),
    ("amount", "decimal", True, {}),
    ("term_months", "integer", True, {}),
    ("comment", "string", False, {}),
)


def _within_product(clean: dict[str, Any], ctx: FormContext) -> dict[str, Any]:
    """An approved amount and term must lie within the application's product (F18)."""
    if clean.get("decision") != "approve":
        return clean
    product = ctx.product_limits  # read with the task (app/tasks/services.py)
    problems: dict[str, list[str]] = {}
    if product is not None and clean.get("amount") is not None:
        if not product.min_amount <= Decimal(str(clean["amount"])) <= product.max_amount:
            problems["amount"] = [
                f"须在 {product.min_amount} 至 {product.max_amount} 元之间 (must be {product.min_amount} to {product.max_amount} yuan for this product)"
            ]
    if product is not None and clean.get("term_months") is not None:
        if not product.min_term <= int(clean["term_months"]) <= product.max_term:
            problems["term_months"] = [
                f"须在 {product.min_term} 至 {product.max_term} 个月之间 (must be {product.min_term} to {product.max_term} months for this product)"
            ]
    if problems:
        raise ValidationError(problems)
    return clean


_PRODUCT_LIMITS = Hot(
    select(
        LoanProduct.__table__.c.min_amount,
        LoanProduct.__table__.c.max_amount,
        LoanProduct.__table__.c.min_term,
        LoanProduct.__table__.c.max_term,
    ).where(LoanProduct.__table__.c.code == bindparam("code_"))
)


def _with_limits(describe: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A decision form's description with the product's range for amount and term (the
    server refuses values outside it) and when they are needed: only to approve."""

    def described(data: dict[str, Any]) -> dict[str, Any]:
        base = describe(data)
        limits = _PRODUCT_LIMITS.execute({"code_": data["product_code"]}).first() if data.get("product_code") else None
        for item in base["fields"]:
            if "decided" in item:
                continue  # decided by the rules: nothing to enter, nothing to bound
            if item["name"] == "amount":
                item["required_when"] = {"decision": "approve"}
                if limits is not None:
                    item["min"], item["max"] = f"{limits.min_amount:.2f}", f"{limits.max_amount:.2f}"
            elif item["name"] == "term_months":
                item["required_when"] = {"decision": "approve"}
                if limits is not None:
                    item["min"], item["max"] = limits.min_term, limits.max_term
        return base

    return described


@form("approve", _with_limits(_describe(*_DECISION_FIELDS)), approval=True)
def approve(payload: dict[str, Any], ctx: FormContext) -> dict[str, Any]:
    """One approver's independent answer; amount and term are required when approving."""
    return _within_product(_load(DecisionForm, payload), ctx)


def _describe_supervisor(data: dict[str, Any]) -> dict[str, Any]:
    escalated = escalated_fields(data)
    base = _describe(*_DECISION_FIELDS)(data)
    for item in base["fields"]:
        if item["name"] in ("amount", "term_months"):
            item["required"] = item["name"] in escalated
            if item["name"] not in escalated:
                item["decided"] = _shown(item["name"], _decided(data, item["name"]))
    return base


def _shown(name: str, value: Any) -> Any:
    """A decided value as the API shows it: money as a decimal string with two places."""
    if name == "amount" and value is not None:
        return f"{Decimal(str(value)):.2f}"
    return value


def escalated_fields(data: dict[str, Any]) -> set[str]:
    """What the supervisor must enter: everything on a dispute, else the escalated value(s)."""
    amount, term = data.get("loan_amount"), data.get("loan_term")
    if not amount or not term:
        return {"amount", "term_months"}
    result = set()
    if amount.get("strategy") == "escalate":
        result.add("amount")
    if term.get("strategy") == "escalate":
        result.add("term_months")
    return result


def _decided(data: dict[str, Any], name: str) -> Any:
    if name == "amount":
        return (data.get("loan_amount") or {}).get("final_amount")
    return (data.get("loan_term") or {}).get("final_term")


class SupervisorForm(Schema):
    """The supervisor's form: which of amount/term is required depends on the escalation."""

    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    amount = Amount(load_default=None)
    term_months = Term(load_default=None)
    comment = fields.String(load_default="", validate=validate.Length(max=2000))


def _in_whole_yuan_described(
    describe: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A form whose amount is the final one says that it is kept in whole yuan."""

    def described(data: dict[str, Any]) -> dict[str, Any]:
        base = describe(data)
        for item in base["fields"]:
            if item["name"] == "amount" and "decided" not in item:
                item["whole_yuan"] = True
        return base

    return described


@form("supervisor_decide", _in_whole_yuan_described(_with_limits(_describe_supervisor)), approval=True, needs_data=True)
def supervisor_decide(payload: dict[str, Any], ctx: FormContext) -> dict[str, Any]:
    """The supervisor enters the escalated value(s); the already decided one is kept."""
    clean = _load(SupervisorForm, payload)
    if clean["decision"] == "approve":
        escalated = escalated_fields(ctx.data)
        missing = {k: ["批准时必填 (required when approving)"] for k in sorted(escalated) if clean.get(k) is None}
        if missing:
            raise ValidationError(missing)
        overridden = {}
        for name in ("amount", "term_months"):
            if name in escalated:
                continue
            decided = _decided(ctx.data, name)
            if clean.get(name) is not None and Decimal(str(clean[name])) != Decimal(str(decided)):
                overridden[name] = [
                    f"已由规则决定为 {_shown(name, decided)}，不能更改 (already decided by the rules: {_shown(name, decided)})"
                ]
            clean[name] = decided
        if overridden:
            raise ValidationError(overridden)
        return _within_product(_in_whole_yuan(clean), ctx)
    return _rejection(clean)


def _in_whole_yuan(clean: dict[str, Any]) -> dict[str, Any]:
    """rules.md: the final amount is rounded down to whole yuan — also when a person (the
    supervisor, the committee) decides it rather than the rules."""
    if clean.get("amount") is not None:  # (kept with two places: money is shown as "77777.00")
        whole = Decimal(str(clean["amount"])).quantize(Decimal(1), rounding=ROUND_DOWN)
        clean["amount"] = whole.quantize(Decimal("0.01"))
    return clean


def _rejection(clean: dict[str, Any]) -> dict[str, Any]:
    """A rejection decides no amount and no term: what was typed beside it is not kept
    (the decision would otherwise show a rejected loan with an amount)."""
    return {**clean, "amount": None, "term_months": None}


class Member(fields.Field):
    """A committee member: a staff user id or a name."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value.strip())  # "4" is user 4 (the console sends text), checked like 4
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
            return value
        if isinstance(value, str) and 1 <= len(value.strip()) <= 64:
            return value.strip()
        raise ValidationError("成员须为用户编号或姓名 (a member is a user id or a name)")


class CommitteeForm(Schema):
    meeting_at = LocalDateTime(required=True)
    members = fields.List(Member(), required=True, validate=validate.Length(min=1, max=50))

    @validates_schema
    def _plausible(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """A meeting within a year either way of today (a typo in the year is caught),
        each member once, and a member given by id an existing user."""
        problems: dict[str, list[str]] = {}
        now = utcnow()
        if "meeting_at" in data and abs(data["meeting_at"] - now) > MEETING_RANGE:
            problems["meeting_at"] = [
                "会议时间须在前后一年之内，请检查年份 (the meeting must lie within a year of today)"
            ]
        members = data.get("members") or []
        keys = [m if isinstance(m, int) else m.casefold() for m in members]
        repeated = sorted({str(m) for m, k in zip(members, keys, strict=True) if keys.count(k) > 1})
        if repeated:
            problems["members"] = [f"成员重复：{', '.join(repeated)} (listed more than once: {', '.join(repeated)})"]
        ids = {m for m in members if isinstance(m, int)}
        unknown = sorted(ids - set(db.session.scalars(select(User.id).where(User.id.in_(ids))))) if ids else []
        if unknown:
            listed = ", ".join(map(str, unknown))
            problems.setdefault("members", []).append(f"用户不存在：{listed} (no such user: {listed})")
        if problems:
            raise ValidationError(problems)


@form(
    "register_committee",
    _describe(
        ("meeting_at", "datetime", True, {}),
        ("members", "array<integer|string>", True, {"items": "a user id (integer) or a name (string)"}),
    ),
)
def register_committee(payload: dict[str, Any], ctx: FormContext) -> dict[str, Any]:
    """The committee meeting registered online before it decides offline."""
    clean = _load(CommitteeForm, payload)
    clean["meeting_at"] = clean["meeting_at"].isoformat()
    return clean


class CommitteeDecisionForm(DecisionForm):
    minutes = fields.String(load_default="", validate=validate.Length(max=8000))


@form(
    "record_committee_decision",
    _in_whole_yuan_described(
        _with_limits(_describe(*_DECISION_FIELDS[:3], ("minutes", "string", False, {}), _DECISION_FIELDS[3]))
    ),
    approval=True,
)
def record_committee_decision(payload: dict[str, Any], ctx: FormContext) -> dict[str, Any]:
    """The committee's decision recorded online."""
    clean = _load(CommitteeDecisionForm, payload)
    return _within_product(_in_whole_yuan(clean), ctx) if clean["decision"] == "approve" else _rejection(clean)
