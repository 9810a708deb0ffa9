"""Validation messages in Chinese first, English in brackets (zh-CN is the default
language; the English keeps them readable for integrators). Installed once at import.

A client that asks for English (`Accept-Language: en`) gets the English part alone:
`english_only` turns "须为整数 (not a valid integer)" into "not a valid integer", keeping
text around the pair that is not Chinese ("item 2: 须为整数 (not …)" → "item 2: not …").
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, fields, validate

_CHINESE = re.compile("[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
_SEPARATORS = re.compile(r"(?:: |：| — |; |；)")
_CHINESE_RUN = re.compile("[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")
_QUOTED = re.compile(r"'[^']*'|`[^`]*`")


def _foreign(english: str, chinese: str) -> bool:
    """Chinese in the English part that is neither a name quoted from the Chinese part (a
    file or element called 贷款流程 appears in both) nor quoted data (`'金额('`, a value
    from an analyst's table)."""
    return any(run not in chinese for run in _CHINESE_RUN.findall(_QUOTED.sub("", english)))


def _closing(text: str, start: int) -> int:
    """Index of the bracket closing the one at `start`, or -1."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _pairs(text: str) -> list[tuple[int, int, int, int]]:
    """The "中文 (English)" pairs of a message, in order: (where the text not yet copied
    starts, where the neutral text before the Chinese ends, the " (" and the closing ")")."""
    pairs = []
    segment = 0  # where the text not yet copied starts
    search = 0
    while (opening := text.find(" (", search)) != -1:
        closing = _closing(text, opening + 1)
        if closing == -1 and text.endswith(")"):  # a quoted "(" left open inside the English
            closing = len(text) - 1
        if closing == -1:
            break
        chinese = _CHINESE.search(text, segment, opening)
        english = text[opening + 2 : closing]
        after = _SEPARATORS.search(text, closing + 1)
        trailing = text[closing + 1 : after.start() if after else len(text)]
        if chinese is None or _foreign(english, text[chinese.start() : opening]) or _CHINESE.search(trailing):
            search = opening + 2
            continue
        separators = list(_SEPARATORS.finditer(text, segment, chinese.start()))
        keep = separators[-1].end() if separators else segment  # neutral text before the Chinese
        pairs.append((segment, keep, opening, closing))
        segment = search = closing + 1
    return pairs


def english_only(text: str) -> str:
    """The English of a "中文 (English)" message; the text unchanged when it is not made of
    such pairs (or when any Chinese would be left over)."""
    if not _CHINESE.search(text):
        return text
    out: list[str] = []
    neutral: list[str] = []  # the text kept around the pairs: no Chinese may be left in it
    end = 0
    for segment, keep, opening, closing in _pairs(text):
        out.append(text[segment:keep] + text[opening + 2 : closing])
        neutral.append(text[segment:keep])
        end = closing + 1
    out.append(text[end:])
    neutral.append(text[end:])
    return text if any(_CHINESE.search(part) for part in neutral) else "".join(out)


def chinese_only(text: str) -> str:
    """The Chinese of a "中文 (English)" message, for a Chinese page (the console): the
    English in brackets after each Chinese part is left out."""
    if not _CHINESE.search(text):
        return text
    out: list[str] = []
    end = 0
    for segment, _keep, opening, closing in _pairs(text):
        out.append(text[segment:opening])
        end = closing + 1
    out.append(text[end:])
    return "".join(out)


def english_messages(value: Any) -> Any:
    """`english_only` over every string of a field-message structure."""
    if isinstance(value, str):
        return english_only(value)
    if isinstance(value, dict):
        return {key: english_messages(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [english_messages(item) for item in value]
    return value


def in_english() -> bool:
    """The request asked for English (`Accept-Language: en`); zh-CN otherwise (and outside
    a request: a worker, a command)."""
    from flask import has_request_context
    from flask_babel import get_locale

    if not has_request_context():
        return False
    locale = get_locale()
    return locale is not None and locale.language == "en"


def for_reader(text: str) -> str:
    """A stored "中文 (English)" text (a service task's message kept in the instance's
    data) as the reader's language wants it."""
    return english_only(text) if isinstance(text, str) and in_english() else text


def task_title(title: str | None) -> str | None:
    """A user task's title as the reader's language wants it. Titles are the diagram's
    names (Chinese, edited by analysts); under English the catalog's translation of the
    name, the name itself when the catalog has none (a task an analyst added or renamed)."""
    if not title or not in_english():
        return title
    from flask_babel import gettext

    return gettext(title)


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
    # Every bound in this code base is inclusive (marshmallow's default); its operator words
    # ("greater than or equal to") would land in the Chinese part, so they are not used.
    validate.Range.message_min = "须不小于 {{min}} (must be at least {{min}})"
    validate.Range.message_max = "须不大于 {{max}} (must be at most {{max}})"
    validate.Range.message_all = "须在 {{min}} 与 {{max}} 之间 (must be {{min}} to {{max}})"
    validate.Length.message_min = "长度至少 {min} (shorter than minimum length {min})"
    validate.Length.message_max = "长度至多 {max} (longer than maximum length {max})"
    validate.Length.message_all = "长度须在 {min} 与 {max} 之间 (length must be between {min} and {max})"
    validate.Regexp.default_message = "格式不符 (does not match the expected pattern)"


install()
