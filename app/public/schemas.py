"""Public application form (F1)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from app.models.base import BEIJING, utcnow
from app.public.validators import PHONE, age_on, birth_date, id_number_problem
from app.tasks.forms import Amount

ADULT_AGE = 18


class MustBeTrue(fields.Boolean):
    """A consent: only JSON `true` counts."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if value is not True:
            raise ValidationError("必须明确同意 (explicit consent required: true)")
        return True


class ApplicationForm(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=32))
    phone = fields.String(required=True)
    id_number = fields.String(required=True)
    region_code = fields.String(required=True, validate=validate.Length(min=1, max=16))
    product_code = fields.String(load_default=None, validate=validate.Length(min=1, max=16))
    amount = Amount(required=True)
    term_months = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=360))
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=200))
    channel = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z0-9_-]{1,16}$",
            error="渠道代码须为 1 至 16 个小写字母、数字、- 或 _ (a channel code is 1 to 16 of a-z 0-9 - _)",
        ),
    )
    consent = MustBeTrue(required=True)
    credit_authorization = MustBeTrue(required=True)

    @validates("name")
    def _name(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("姓名不能为空 (name is blank)")
        if any(ch.isdigit() for ch in value):
            raise ValidationError("姓名不能含数字 (a name has no digits)")

    @validates("purpose")
    def _purpose(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("用途不能为空 (purpose is blank)")

    @validates("phone")
    def _phone(self, value: str, **_: Any) -> None:
        if not PHONE.match(value):
            raise ValidationError("手机号格式错误 (must be an 11-digit mainland mobile number)")

    @validates("id_number")
    def _id_number(self, value: str, **_: Any) -> None:
        problem = id_number_problem(value)
        if problem:
            raise ValidationError(problem)
        # A loan contract needs full civil capacity: 18 or older (Beijing date).
        if age_on(birth_date(value), utcnow().astimezone(BEIJING).date()) < ADULT_AGE:
            raise ValidationError(f"申请人须年满 {ADULT_AGE} 周岁 (the applicant must be at least {ADULT_AGE})")


class StatusArgs(Schema):
    phone = fields.String(required=True)


class SubmittedSchema(Schema):
    application_no = fields.String()
    status = fields.String()


class StatusSchema(Schema):
    application_no = fields.String()
    stage = fields.String()
    updated_at = fields.AwareDateTime()
