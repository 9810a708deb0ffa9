"""`Idempotency-Key` for public submissions: a customer's phone that lost the answer to
`POST /public/applications` sends the same request again with the same key and gets the
application it already made, not a second one.

Opt-in (no header, no change). The key (1–64 of `A-Z a-z 0-9 _ -`, e.g. a UUID) is kept
for 24 hours with a fingerprint of the body: the same key with another body is a 422; a
second request while the first is still running is a 409. Keys live in Redis when it is
configured (every web node sees them), in process memory otherwise (the embedded mode's
single process); if Redis is unreachable the submission goes ahead without the guard
(logged), as the rate limits do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import current_app, request

from app.errors import ApiError
from app.ratelimit import redis_breaker, redis_client

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
KEEP_SECONDS = 24 * 3600
RUNNING_SECONDS = 60  # a reservation outlives no request
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RUNNING = "running"


class _MemoryStore:
    """Keys with expiry in this process (embedded mode, tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[str, float]] = {}

    def reserve(self, key: str, value: str, ttl: int) -> str | None:
        """Store `value` unless the key holds something: None, or what it holds."""
        with self._lock:
            now = time.monotonic()
            held = self._data.get(key)
            if held is not None and held[1] > now:
                return held[0]
            self._data[key] = (value, now + ttl)
            return None

    def put(self, key: str, value: str, ttl: int) -> None:
        with self._lock:
            self._data[key] = (value, time.monotonic() + ttl)

    def forget(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


class _RedisStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def reserve(self, key: str, value: str, ttl: int) -> str | None:
        if self._redis.set(key, value, nx=True, ex=ttl):
            return None
        held = self._redis.get(key)
        return held.decode() if held is not None else None

    def put(self, key: str, value: str, ttl: int) -> None:
        self._redis.set(key, value, ex=ttl)

    def forget(self, key: str) -> None:
        self._redis.delete(key)


def _store() -> Any:
    client = redis_client()
    if client is not None:
        return _RedisStore(client)
    return current_app.extensions.setdefault("ydx_idempotency", _MemoryStore())


def guarded(form: dict[str, Any], submit: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `submit` once per key: the answer it gave, for every repetition of the request."""
    key = request.headers.get(HEADER)
    if key is None:
        return submit()
    if not _KEY.fullmatch(key):
        raise ApiError(
            "bad_request",
            "Idempotency-Key 格式无效 (1 to 64 letters, digits, - or _)",
            400,
            fields={HEADER: ["须为 1 至 64 个字母、数字、- 或 _ (1 to 64 letters, digits, - or _)"]},
        )
    fingerprint = hashlib.sha256(json.dumps(form, sort_keys=True, default=str).encode()).hexdigest()
    slot = f"ydx:idem:submit:{key}"
    store, breaker = _store(), redis_breaker()
    if breaker is not None and breaker.is_open():
        log.warning("idempotency store unavailable; submitting without the %s guard", HEADER)
        return submit()
    try:
        held = store.reserve(slot, json.dumps({"state": _RUNNING, "body": fingerprint}), RUNNING_SECONDS)
    except redis.RedisError:
        if breaker is not None:
            breaker.trip()
        log.warning("idempotency store unavailable; submitting without the %s guard", HEADER)
        return submit()
    if held is not None:
        return _replay(json.loads(held), fingerprint)
    try:
        answer = submit()
    except BaseException:
        _quietly(store.forget, slot)  # a refused or failed request may be sent again
        raise
    _quietly(store.put, slot, json.dumps({"state": "done", "body": fingerprint, "answer": answer}), KEEP_SECONDS)
    return answer


def _replay(held: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    if held.get("body") != fingerprint:
        raise ApiError(
            "validation_error",
            "此 Idempotency-Key 已用于另一份申请 (the key was used with a different request)",
            422,
            fields={HEADER: ["已用于另一份申请 (used with a different request)"]},
        )
    if held.get("state") == _RUNNING:
        raise ApiError("conflict", "相同的申请正在处理中，请稍后重试 (the same request is still being processed)", 409)
    return held["answer"]


def _quietly(action: Callable[..., None], *args: Any) -> None:
    try:
        action(*args)
    except redis.RedisError:
        log.warning("idempotency store unavailable; %s not updated", HEADER)
