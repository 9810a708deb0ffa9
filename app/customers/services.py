"""Customer information (F10): scoped through the customer's applications, masked per PIPL."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import exists, func, or_, select

from app import audit
from app.auth.permissions import Caller
from app.errors import ApiError, not_found
from app.extensions import db
from app.loans.services import application_filter
from app.models import Application, Customer
from app.public.validators import PROVINCE_CODES
from app.ratelimit import throttle


def mask_phone(phone: str) -> str:
    """138****5678."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_id(id_number: str) -> str:
    """First 6 and last 4 digits: 460100********1234."""
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:] if len(id_number) > 10 else "****"


def mask_name(name: str) -> str:
    """张** — the surname only."""
    return name[:1] + "*" * max(1, len(name) - 1)


def may_see_full(who: Caller) -> bool:
    """Whether the caller's role may see full names, phones and ID numbers (F10)."""
    return who.scope("customer.view_full") is not None


def reveal(who: Caller, asked: bool, object_type: str, object_id: Any) -> bool:
    """Full values only when asked for (`?full=true`): customer data is masked by default
    for every viewer (api.md, PIPL's minimum necessary), and a role that needs the full
    values (`customer.view_full`) asks for them deliberately; each such view is audited.
    Asking without that grant is a 403, audited as refused."""
    if not asked:
        return False
    if not may_see_full(who):
        audit.record_refusal(
            "customer.view_full", who.id, object_type, object_id, "full values asked without the grant"
        )
        raise ApiError("forbidden", _("无权查看完整的客户信息"), 403)
    return True


def customer_view(customer: Customer, who: Caller, full: bool = False) -> dict[str, Any]:
    """Masked unless `full` (granted and asked for: `reveal`); a full view is audited."""
    if full:
        audit.record("customer.view_full", who.id, "customer", customer.id)
    return {
        "id": customer.id,
        "name": customer.name if full else mask_name(customer.name),
        "phone": customer.phone if full else mask_phone(customer.phone),
        "id_number": customer.id_number if full else mask_id(customer.id_number),
        "region_id": customer.region_id,
        "masked": not full,
    }


_PROFILE_MASKS = (  # by what a key mentions: `spouse_phone`, `Mobile`, `idcard`, `证件号码`, `contact_name`, …
    (("phone", "mobile", "手机", "电话"), mask_phone),
    (("id_number", "idnumber", "id_no", "idcard", "id_card", "身份证", "证件", "passport", "护照"), mask_id),
    (("name", "姓名"), mask_name),
)
_PROFILE_TOKENS = {"tel": mask_phone}  # whole words only: not the `tel` of `hotel`
# What a document's type, validity or issuer is called: `证件类型`, `passport_expiry` say
# nothing of the number.
_ABOUT_A_DOCUMENT = ("类型", "有效", "签发", "机关", "type", "expir", "valid", "issue")
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
# What a value looks like, wherever it stands (`"contact": "李四 13700001111"`): a
# mainland mobile number, with or without +86 and spaces or dashes between its groups;
# a resident ID number, 18 or 15 characters, whose province and birth date are real.
# Neither inside a longer word or number (`YDX2026…` application numbers, accounts).
_MOBILE_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])((?:\+|00)?86[ -]?)?(1[3-9][0-9])([ -]?)([0-9]{4})([ -]?)([0-9]{4})(?![0-9])"
)
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")
_MIN_MASKED_DIGITS = 7  # a number under a phone or ID key shorter than this is a count or an amount


def _key_words(key: str) -> list[str]:
    """`spouseTel`, `spouse_tel`, `SPOUSE-TEL` → ["spouse", "tel"]."""
    return [word.lower() for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+", key)]


def _profile_mask(key: str):  # type: ignore[no-untyped-def]
    lowered = key.lower()
    for words, mask in _PROFILE_MASKS:
        if any(word in lowered for word in words):
            if mask is mask_id and any(word in lowered for word in _ABOUT_A_DOCUMENT):
                continue
            return mask
    for word in _key_words(key):
        if word in _PROFILE_TOKENS:
            return _PROFILE_TOKENS[word]
    return None


def _looks_like_id(candidate: str) -> bool:
    """A real province and a real birth date where a resident ID number has them."""
    if int(candidate[:2]) not in PROVINCE_CODES:
        return False
    year, month, day = (
        (int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
        if len(candidate) == 18
        else (1900 + int(candidate[6:8]), int(candidate[8:10]), int(candidate[10:12]))
    )
    try:
        date(year, month, day)
    except ValueError:
        return False
    return 1900 <= year


def _masked_text(text: str) -> str:
    text = text.translate(_FULL_WIDTH_DIGITS)
    text = _ID_IN_TEXT.sub(lambda m: mask_id(m.group()) if _looks_like_id(m.group()) else m.group(), text)
    return _MOBILE_IN_TEXT.sub(lambda m: f"{m[1] or ''}{m[2]}{m[3]}****{m[5]}{m[6]}", text)


def _masked_value(key: str | None, value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _masked_value(str(name), item) for name, item in value.items()}
    if isinstance(value, list):
        return [_masked_value(key, item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):  # a phone typed as a number is still a phone
        text = str(value)
        mask = _profile_mask(key) if key else None
        if mask is not None and sum(ch.isdigit() for ch in text) >= _MIN_MASKED_DIGITS:
            return mask(text)
        masked = _masked_text(text)
        return value if masked == text else masked
    if isinstance(value, str):
        mask = _profile_mask(key) if key else None
        return mask(value) if mask is not None else _masked_text(value)
    return value


def profile_view(details: dict[str, Any] | None, full: bool = False) -> dict[str, Any]:
    """Customer details registered by staff (`collect_materials.customer`), with every
    name, phone and ID number masked by the same rule as the customer record: by what its
    key mentions (e.g. `spouse_phone`), at any depth, and — whatever the key — every
    mobile or ID number a text or a number holds."""
    details = details or {}
    if full:
        return details
    return {key: _masked_value(key, value) for key, value in details.items()}


def applicant_view(name: str, phone: str, full: bool = False) -> dict[str, Any]:
    """The contact details as submitted with one application (a returning customer may
    give a new name or phone; the customer record keeps what staff maintain), masked by
    the same rule as the customer."""
    return {
        "name": name if full else mask_name(name),
        "phone": phone if full else mask_phone(phone),
        "masked": not full,
    }


def _visible(who: Caller):  # type: ignore[no-untyped-def]
    return exists().where(Application.customer_id == Customer.id, application_filter(who, who.scope("customer.view")))


def _search(who: Caller, q: str) -> Any:
    """Who may see full values searches by part of a name, phone or ID number; a masked
    viewer only by the whole name, phone or ID number, and only so often. A part would let
    a masked viewer test the hidden digits one by one (`136` + each digit …) and so read
    what masking hides; the limit keeps guessing whole values just as impractical."""
    if may_see_full(who):  # the grant, not `?full=`: searching shows nothing unmasked
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = (Customer.name, Customer.phone, Customer.id_number)
        return or_(*(column.like(like, escape="\\") for column in columns))
    config = current_app.config
    throttle(f"ydx:search:{who.id}", config["YDX_MASKED_SEARCH_LIMIT"], config["YDX_MASKED_SEARCH_WINDOW_SECONDS"])
    return or_(Customer.name == q, Customer.phone == q, Customer.id_number == q.upper())


def list_customers(who: Caller, q: str | None, page: int, per_page: int) -> tuple[list[Customer], int]:
    """Visible customers, optionally searched (see `_search`)."""
    where = [_visible(who)]
    q = (q or "").strip()
    if q:
        where.append(_search(who, q))
    total = db.session.scalar(select(func.count()).select_from(Customer).where(*where)) or 0
    rows = db.session.scalars(
        select(Customer).where(*where).order_by(Customer.id.desc()).limit(per_page).offset((page - 1) * per_page)
    )
    return list(rows), total


def get_customer(customer_id: int, who: Caller) -> Customer:
    """One visible customer, else 404."""
    customer = db.session.scalar(select(Customer).where(Customer.id == customer_id, _visible(who)))
    if customer is None:
        raise not_found("customer")
    return customer


def customer_applications(customer: Customer, who: Caller) -> list[dict[str, Any]]:
    """The customer's applications the caller may see."""
    rows = db.session.scalars(
        select(Application)
        .where(Application.customer_id == customer.id, application_filter(who, who.scope("application.view")))
        .order_by(Application.id)
    )
    return [{"application_no": a.application_no, "stage": a.stage, "amount": str(a.amount)} for a in rows]
