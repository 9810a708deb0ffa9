"""The inputs a client gives `POST /decisions/{id}/evaluate`, checked before evaluation.

A decision table reads variables (`amounts`, `terms`, `days`) in its input
expressions; the sandbox would evaluate whatever JSON arrives and answer with Python's
own exception text, or worse, with a plausible answer for nonsense (`terms: [0]`).
Here every name the table's input expressions read must be present, every key must be
a name the table reads (as task forms refuse unknown fields), and the inputs the
product's decisions use are checked against rules.md:

* `amounts`: a non-empty list of yuan amounts as the approval form takes them
  (`forms.Amount`: > 0, at most 2 decimals, never a boolean); they become `Decimal`.
* `terms`: a non-empty list of whole months as the approval form takes them
  (`forms.Term`: JSON integers ≥ 1, here at most `MAX_TERM_MONTHS`; no floats, strings
  or booleans).
* `days`: a leave length in whole working days ≥ 1, a JSON number or decimal string
  whose value is integral. Half days are refused: a leave request (F16) is a range of
  whole dates, and the table declares the input as `integer`.

Only the shapes live here; every threshold stays in the DMN tables. Inputs of tables
added later that this module does not know pass through `decisions.coerce_inputs`
unchanged, as before. The lifecycle's business rule tasks do not come through here:
their data was already checked by the approval forms (app/tasks/forms.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from marshmallow import ValidationError, fields

from app.errors import ApiError
from app.tasks.forms import Amount, Term
from app.workflow import decisions

MAX_LEAVE_DAYS = 366  # a sanity bound, far above any authority threshold
MAX_TERM_MONTHS = 600  # fifty years: a sanity bound, far above any product's range
_DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d+)?$")


class InvalidInput(ValueError):
    """One value is not acceptable; the message is already translated."""


def _decimal(value: Any) -> Decimal:
    """A JSON number or decimal string as Decimal; booleans and anything else refused."""
    if isinstance(value, bool):
        raise InvalidInput(_("须为数字，不能是布尔值"))
    if isinstance(value, (int, float)):
        number = Decimal(str(value))
    elif isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        number = Decimal(value.strip())
    else:
        raise InvalidInput(_("须为数字或十进制数字字符串"))
    if not number.is_finite():
        raise InvalidInput(_("须为有限的数字"))
    return number


# Money and months follow the approval form's own fields, so the endpoint and the tasks
# can never disagree on what an amount or a term is.
_AMOUNT, _TERM = Amount(), Term()


def _field(field: fields.Field) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        try:
            return field.deserialize(value)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
            raise InvalidInput(*messages) from exc

    return check


def _list_of(item: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    """A non-empty JSON array whose items all pass `item`; messages name the item (1-based)."""

    def check(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise InvalidInput(_("须为非空数组"))
        if not value:
            raise InvalidInput(_("至少需要一项"))
        clean, problems = [], []
        for index, element in enumerate(value, start=1):
            try:
                clean.append(item(element))
            except InvalidInput as exc:
                problems.append(_("第%(index)d项：%(reason)s", index=index, reason=str(exc.args[0])))
        if problems:
            raise InvalidInput(*problems)
        return clean

    return check


def _term(value: Any) -> int:
    """A term as the approval form takes it, within a sanity bound: evaluation has no
    product whose range would stop `9223372036854775808` months (beyond what a JavaScript
    client can even read back)."""
    months = _field(_TERM)(value)
    if months > MAX_TERM_MONTHS:
        raise InvalidInput(_("期限须不超过 %(max)d 个月", max=MAX_TERM_MONTHS))
    return months


def _days(value: Any) -> int:
    number = _decimal(value)
    if number != number.to_integral_value():
        raise InvalidInput(_("请假天数须为整数个工作日，不支持半天"))
    if not 1 <= number <= MAX_LEAVE_DAYS:
        raise InvalidInput(_("请假天数须在 1 至 %(max)d 个工作日之间", max=MAX_LEAVE_DAYS))
    return int(number)


CHECKS: dict[str, Callable[[Any], Any]] = {
    "amounts": _list_of(_field(_AMOUNT)),
    "terms": _list_of(_term),
    "days": _days,
}
"""Inputs whose meaning the product fixes, by the variable name the tables read."""


def check_inputs(table: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The clean inputs for `table`, or a 422 naming each offending field and why."""
    required, known = decisions.required_inputs(table), decisions.known_inputs(table)
    problems: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name in sorted(required - payload.keys()):
        problems[name] = [_("缺少字段：决策表的输入表达式需要此值")]
    for name, value in payload.items():
        if name not in known:
            problems[name] = [_("未知字段：决策表不使用此值")]
        elif name in CHECKS:
            try:
                clean[name] = CHECKS[name](value)
            except InvalidInput as exc:
                problems[name] = [str(message) for message in exc.args]
        else:
            clean[name] = decisions.coerce_inputs(value)
    if problems:
        raise ApiError("validation_error", _("输入数据无效"), 422, fields=problems)
    return clean
