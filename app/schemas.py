"""Schemas shared by several blueprints."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, fields, post_load, pre_load, validate


def jsonable(value: Any) -> Any:
    """Decimal → decimal string, recursively (for JSON columns and responses)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


MAX_PER_PAGE = 200


class QueryArgs(Schema):
    """Query parameters: `?scope=&page=` (an HTML form's empty inputs) means the defaults,
    as leaving the parameters out does; the document calls such parameters optional."""

    @pre_load
    def _empty_is_absent(self, data: Any, **_: Any) -> dict[str, Any]:
        return {key: value for key, value in data.items() if value != ""}


class PageArgs(QueryArgs):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1),
        metadata={"description": f"items per page (default 20); more than {MAX_PER_PAGE} gives {MAX_PER_PAGE}"},
    )

    @post_load
    def _at_most_a_full_page(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """A client asking for "everything" (`per_page=1000`) gets the largest page, not a
        422; `total` tells it whether there is more."""
        data["per_page"] = min(data["per_page"], MAX_PER_PAGE)
        return data


def page_of(items: list[Any], total: int, args: dict[str, Any]) -> dict[str, Any]:
    """A list answer: api.md's `{items, total}` with the page served and its size (a
    `per_page` beyond the largest page is served as the largest: the client sees it)."""
    return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}


class PageFields(Schema):
    """The page a list answer served (documentation of `page_of`)."""

    total = fields.Integer(required=True)
    page = fields.Integer(required=True, metadata={"description": "the page served"})
    per_page = fields.Integer(required=True, metadata={"description": f"its size (at most {MAX_PER_PAGE})"})


def full_flag() -> fields.Boolean:
    """`?full=true`: customer names, phones and ID numbers unmasked, for roles granted it."""
    return fields.Boolean(
        load_default=False,
        metadata={
            "description": "show full names, phones and ID numbers (masked by default); roles without the"
            " grant get 403, every full view is audited"
        },
    )


class RevealArgs(QueryArgs):
    full = full_flag()


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable error code, e.g. validation_error"})
    message = fields.String(required=True, metadata={"description": "what went wrong, zh-CN or per Accept-Language"})
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        required=True,
        metadata={
            "description": (
                "field name → list of reasons; for a nested field, an object of the same shape"
                ' (`{"customer": {"name": [...]}}`, the items of a list by index); empty when no'
                " field is at fault"
            )
        },
    )


class ErrorSchema(Schema):
    """The body of every error answer (api.md): `{"error": {"code", "message", "fields"}}`."""

    error = fields.Nested(ErrorBodySchema, required=True)
