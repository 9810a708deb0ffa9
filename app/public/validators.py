"""Chinese identity and contact formats."""

from __future__ import annotations

import re
from datetime import date

# ASCII digits and the end of the text: `\d` would take full-width and other scripts'
# digits and `$` a trailing newline, storing numbers no SMS gateway or search can use.
PHONE = re.compile(r"^1[3-9][0-9]{9}\Z")
_ID = re.compile(r"^[0-9]{17}[0-9X]\Z")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """GB 11643 / ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def id_number_problem(value: str) -> str | None:
    """Why an 18-digit resident ID is invalid, or None when it is valid."""
    value = value.upper()
    if not _ID.match(value):
        return "须为 18 位身份证号 (must be 18 characters: 17 digits and a digit or X)"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "出生日期无效 (invalid birth date)"
    if born > date.today() or born.year < 1900:
        return "出生日期无效 (invalid birth date)"
    if id_check_digit(value[:17]) != value[17]:
        return "校验位错误 (check digit does not match)"
    return None
