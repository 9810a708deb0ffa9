"""Chinese identity and contact formats."""

from __future__ import annotations

import re
from datetime import date

# ASCII digits and the end of the text: `\d` would take full-width and other scripts'
# digits and `$` a trailing newline, storing numbers no SMS gateway or search can use.
PHONE = re.compile(r"^1[3-9][0-9]{9}\Z")
_ID = re.compile(r"^[0-9]{17}[0-9X]\Z")
# The first two digits: a province-level division (GB/T 2260), or 81/82/83 for the
# residence permits of Hong Kong, Macao and Taiwan residents.
PROVINCE_CODES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)
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
    if int(value[:2]) not in PROVINCE_CODES:
        return "地区代码无效 (the first two digits are not a province of China)"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "出生日期无效 (invalid birth date)"
    if born > date.today() or born.year < 1900:
        return "出生日期无效 (invalid birth date)"
    if id_check_digit(value[:17]) != value[17]:
        return "校验位错误 (check digit does not match)"
    return None


def birth_date(value: str) -> date:
    """The birth date of a valid resident ID number (`id_number_problem` gave None)."""
    return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def age_on(born: date, day: date) -> int:
    """Whole years from `born` to `day` (a 29 February birthday counts on 1 March)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


ADULT_AGE = 18


def name_problem(value: str) -> str | None:
    """Why a person's name cannot be one, or None: 1 to 32 characters with a letter among
    them (an invisible character alone is blank) and no digits."""
    if not 1 <= len(value.strip()) <= 32:
        return "姓名须为 1 至 32 个字符 (a name is 1 to 32 characters)"
    if not any(ch.isalpha() for ch in value):
        return "姓名不能为空 (name is blank)"
    if any(ch.isdigit() for ch in value):
        return "姓名不能含数字 (a name has no digits)"
    return None


def adult_problem(id_number: str, today: date) -> str | None:
    """Why the holder of a valid ID number cannot sign a loan contract on `today` (a
    Beijing date), or None: full civil capacity comes at 18."""
    if age_on(birth_date(id_number), today) < ADULT_AGE:
        return f"申请人须年满 {ADULT_AGE} 周岁 (the applicant must be at least {ADULT_AGE})"
    return None
