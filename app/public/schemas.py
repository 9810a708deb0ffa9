"""Public application form (F1)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates

from app.models.base import BEIJING, utcnow
from app.public.validators import PHONE, adult_problem, id_number_problem, name_problem
from app.tasks.forms import Amount, Term


class MustBeTrue(fields.Boolean):
    """A consent: only JSON `true` counts."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"enum": [True], "description": "only true is accepted"}, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if value is not True:
            raise ValidationError("必须明确同意 (explicit consent required: true)")
        return True


class ApplicationForm(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=32))
    phone = fields.String(
        required=True, metadata={"pattern": r"^1[3-9][0-9]{9}$", "description": "mainland mobile number"}
    )
    id_number = fields.String(
        required=True,
        metadata={
            "pattern": r"^[0-9]{17}[0-9Xx]$",
            "description": "resident ID number (GB 11643: province code, birth date of an adult, check digit)",
        },
    )
    region_code = fields.String(required=True, validate=validate.Length(min=1, max=16))
    product_code = fields.String(load_default=None, validate=validate.Length(min=1, max=16))
    amount = Amount(required=True)
    term_months = Term(required=True)  # the product's own range is checked with the product
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
        problem = name_problem(value)
        if problem:
            raise ValidationError(problem)

    @validates("purpose")
    def _purpose(self, value: str, **_: Any) -> None:
        if not any(ch.isalnum() for ch in value):  # spaces or invisible characters alone are blank
            raise ValidationError("用途不能为空 (purpose is blank)")

    @validates("phone")
    def _phone(self, value: str, **_: Any) -> None:
        if not PHONE.match(value):
            raise ValidationError("手机号格式错误 (must be an 11-digit mainland mobile number)")

    @validates("id_number")
    def _id_number(self, value: str, **_: Any) -> None:
        problem = id_number_problem(value) or adult_problem(value, utcnow().astimezone(BEIJING).date())
        if problem:
            raise ValidationError(problem)

    @post_load
    def _codes_in_upper_case(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Region and product codes are upper case (`hk` is HK, `biz-if` is BIZ-IF)."""
        for name in ("region_code", "product_code"):
            if isinstance(data.get(name), str):
                data[name] = data[name].upper()
        return data


class StatusArgs(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=1, max=32))

    @post_load
    def _mainland_number(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """The number as written on the form: spaces and dashes dropped, and a +86 / 0086
        country code before an 11-digit number (a wrong phone counts toward the lookup's
        limit, so the same number written another way must not)."""
        phone = re.sub(r"[\s-]", "", data["phone"])
        data["phone"] = re.sub(r"^(?:\+86|0086|86)(?=1\d{10}$)", "", phone)
        return data


class SubmittedSchema(Schema):
    application_no = fields.String(required=True)
    status = fields.String(required=True)


class StatusSchema(Schema):
    application_no = fields.String(required=True)
    stage = fields.String(required=True)
    updated_at = fields.AwareDateTime(required=True)
