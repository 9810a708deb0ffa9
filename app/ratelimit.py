"""Fixed-window counters for throttling (login failures, public submissions, searches).

With `REDIS_URL` the counters live in Redis so every web node sees the same numbers;
the embedded default keeps them in process memory (one process serves everything).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import redis
from flask import Flask, current_app

log = logging.getLogger(__name__)


class Counter(Protocol):
    def incr(self, key: str, window: int) -> int: ...
    def get(self, key: str) -> int: ...
    def ttl(self, key: str) -> int: ...
    def reset(self, key: str) -> None: ...


class MemoryCounter:
    """Process-local counters with expiry, for the embedded mode and tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[int, float]] = {}

    def _live(self, key: str) -> tuple[int, float] | None:
        entry = self._data.get(key)
        if entry and entry[1] <= time.monotonic():
            del self._data[key]
            return None
        return entry

    def incr(self, key: str, window: int) -> int:
        with self._lock:
            entry = self._live(key)
            count, expires = entry if entry else (0, time.monotonic() + window)
            self._data[key] = (count + 1, expires)
            return count + 1

    def get(self, key: str) -> int:
        with self._lock:
            entry = self._live(key)
            return entry[0] if entry else 0

    def ttl(self, key: str) -> int:
        with self._lock:
            entry = self._live(key)
            return max(1, int(entry[1] - time.monotonic())) if entry else 0

    def reset(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


class Breaker:
    """After a failure of a shared service (Redis as counter store or broker), the calls
    that can do without it skip it for `pause` seconds in this process. A Redis that
    hangs (accepts, never answers) would otherwise cost every request its full socket
    timeout — seconds per call — and a few requests would hold every web worker."""

    def __init__(self, pause: float = 10.0) -> None:
        self.pause = pause
        self._until = 0.0

    def is_open(self) -> bool:
        """True while calls should not even be tried."""
        return time.monotonic() < self._until

    def trip(self) -> None:
        self._until = time.monotonic() + self.pause


class RedisCounter:
    """Counters shared by all web nodes through Redis.

    If Redis is unreachable the limits fail open (logged): an outage of the limiter must
    not take logins and applications down with it. After a failure the counter is not
    asked again for a few seconds (`Breaker`).
    """

    def __init__(self, client: redis.Redis, breaker: Breaker) -> None:
        self._redis = client
        self._breaker = breaker

    def _unavailable(self, what: str, key: str) -> None:
        self._breaker.trip()
        log.warning("rate-limit counter unavailable; %s %s", what, key)

    def incr(self, key: str, window: int) -> int:
        if self._breaker.is_open():
            return 0
        try:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
            count, _ = pipe.execute()
            return int(count)
        except redis.RedisError:
            self._unavailable("not counting", key)
            return 0

    def get(self, key: str) -> int:
        if self._breaker.is_open():
            return 0
        try:
            value = self._redis.get(key)
        except redis.RedisError:
            self._unavailable("not limiting", key)
            return 0
        return int(value) if value else 0

    def ttl(self, key: str) -> int:
        if self._breaker.is_open():
            return 60
        try:
            return max(1, int(self._redis.ttl(key)))
        except redis.RedisError:
            self._breaker.trip()
            return 60

    def reset(self, key: str) -> None:
        if self._breaker.is_open():
            return
        try:
            self._redis.delete(key)
        except redis.RedisError:
            self._unavailable("not reset", key)


def init_app(app: Flask) -> None:
    """Pick the backend once per app."""
    url = app.config.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        breaker = app.extensions["ydx_redis_breaker"] = Breaker()
        app.extensions["ydx_redis"] = client
        app.extensions["ydx_counter"] = RedisCounter(client, breaker)
    else:
        app.extensions["ydx_counter"] = MemoryCounter()


def counter() -> Counter:
    """The current app's counter backend."""
    return current_app.extensions["ydx_counter"]


def too_many(retry_after: int, message: str | None = None) -> Exception:
    """The 429 every limit answers: a message (default: "too many requests, try later")
    and the seconds to wait."""
    from flask_babel import gettext as _

    from app.errors import ApiError

    text = message or _("请求过于频繁，请稍后再试")
    return ApiError("too_many_requests", text, 429, headers={"Retry-After": str(retry_after)})


def throttle(key: str, limit: int, window: int) -> None:
    """Count one more under `key`; past `limit` within `window` seconds answer 429."""
    store = counter()
    if store.incr(key, window) > limit:
        raise too_many(store.ttl(key))


def redis_client() -> redis.Redis | None:
    """The shared Redis client, or None in the embedded mode."""
    return current_app.extensions.get("ydx_redis")


def redis_breaker() -> Breaker | None:
    """The breaker of the shared Redis (None in the embedded mode): callers that can do
    without Redis skip it while it is open and trip it when a call fails."""
    return current_app.extensions.get("ydx_redis_breaker")
