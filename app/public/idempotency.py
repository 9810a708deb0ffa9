"""`Idempotency-Key` for public submissions: a customer's phone that lost the answer to
`POST /public/applications` sends the same request again with the same key and gets the
application it already made, not a second one.

Opt-in (no header, no change). The key (1–64 of `A-Z a-z 0-9 _ -`, e.g. a UUID) is kept
for 24 hours with a fingerprint of the body: the same key with another body is a 422. The
key is a database row written in the submission's own transaction, so the guard holds on
every web node and whether or not Redis is up (a Redis outage is exactly when phones
retry). Two requests with one key at the same moment: the second waits for the first's
transaction on PostgreSQL (SQLite serializes writers), finds the key taken, drops its own
work and answers the first one's application.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import request
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from app.errors import ApiError
from app.extensions import db
from app.models import IdempotencyKey
from app.models.base import utcnow

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Claim:
    """The key a request came with and what its body was."""

    key: str
    fingerprint: str


class KeyTaken(Exception):
    """A concurrent request with the same key committed first."""


def claim_of_request(form: dict[str, Any]) -> Claim | None:
    """The request's key (None without the header); 400 for a malformed one."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise ApiError(
            "bad_request",
            "Idempotency-Key 格式无效 (Idempotency-Key must be 1 to 64 letters, digits, - or _)",
            400,
            fields={HEADER: ["须为 1 至 64 个字母、数字、- 或 _ (1 to 64 letters, digits, - or _)"]},
        )
    fingerprint = hashlib.sha256(json.dumps(form, sort_keys=True, default=str).encode()).hexdigest()
    return Claim(key, fingerprint)


def replayed(claim: Claim) -> dict[str, Any] | None:
    """The answer the key already got (None if it got none within 24 h); a key used with
    another body is a 422."""
    row = db.session.execute(
        select(IdempotencyKey.fingerprint, IdempotencyKey.answer, IdempotencyKey.created_at).where(
            IdempotencyKey.key == claim.key
        )
    ).first()
    if row is None:
        return None
    if row.created_at < utcnow() - KEEP:  # expired, not yet swept: the key may be used anew
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.key == claim.key))
        return None
    if row.fingerprint != claim.fingerprint:
        raise ApiError(
            "validation_error",
            "此 Idempotency-Key 已用于另一份申请 (the key was used with a different request)",
            422,
            fields={HEADER: ["已用于另一份申请 (used with a different request)"]},
        )
    return dict(row.answer)


def remember(claim: Claim, answer: dict[str, Any]) -> None:
    """Keep the key with its answer in the submission's transaction; KeyTaken if a
    concurrent request with the same key got there first."""
    try:
        db.session.execute(
            insert(IdempotencyKey).values(
                key=claim.key, fingerprint=claim.fingerprint, answer=answer, created_at=utcnow()
            )
        )
    except IntegrityError as exc:
        raise KeyTaken from exc


def forget_expired(now: datetime) -> int:
    """Delete keys older than 24 hours (periodic job)."""
    return db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP)).rowcount or 0
