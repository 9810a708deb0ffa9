"""Validation messages in Chinese first, English in brackets (zh-CN is the default
language; the English keeps them readable for integrators). Installed once at import."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


def install() -> None:
    """Replace marshmallow's English-only defaults."""
    fields.Field.default_error_messages.update(
        required="必填 (missing data for required field)",
        null="不能为空 (may not be null)",
        validator_failed="值无效 (invalid value)",
    )
    fields.Integer.default_error_messages.update(invalid="须为整数 (not a valid integer)")
    fields.Number.default_error_messages.update(
        invalid="须为数字 (not a valid number)", too_large="数值过大 (too large)"
    )
    fields.Decimal.default_error_messages.update(special="不允许 NaN 或无穷大 (nan or infinity not permitted)")
    fields.String.default_error_messages.update(invalid="须为字符串 (not a valid string)")
    fields.Boolean.default_error_messages.update(invalid="须为布尔值 (not a valid boolean)")
    fields.DateTime.default_error_messages.update(
        invalid="时间格式无效，须为 ISO-8601 (not a valid {obj_type})",
        invalid_awareness="时间须带时区 (not a valid {awareness} {obj_type})",
    )
    fields.List.default_error_messages.update(invalid="须为数组 (not a valid list)")
    fields.Dict.default_error_messages.update(invalid="须为对象 (not a valid mapping)")
    Schema._default_error_messages.update(
        type="须为 JSON 对象 (invalid input type)", unknown="未知字段 (unknown field)"
    )
    validate.OneOf.default_message = "须为以下之一 (must be one of): {choices}"
    validate.Range.message_min = "须 {min_op} {{min}} (must be {min_op} {{min}})"
    validate.Range.message_max = "须 {max_op} {{max}} (must be {max_op} {{max}})"
    validate.Range.message_all = "须在 {{min}} 与 {{max}} 之间 (must be {min_op} {{min}} and {max_op} {{max}})"
    validate.Length.message_min = "长度至少 {min} (shorter than minimum length {min})"
    validate.Length.message_max = "长度至多 {max} (longer than maximum length {max})"
    validate.Length.message_all = "长度须在 {min} 与 {max} 之间 (length must be between {min} and {max})"
    validate.Regexp.default_message = "格式不符 (does not match the expected pattern)"


install()
