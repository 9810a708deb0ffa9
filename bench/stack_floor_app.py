"""The HTTP server alone, for `bench/lifecycle.py`'s stack floor: a WSGI function with no
framework, no token check and no database that answers every request with the empty
inbox page the request floor fetches. What gunicorn and the loopback exchange cost per
request on this machine; everything a real request adds is the application's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_BODY = b'{"items":[],"total":0}\n'
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(_BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """200 with the empty page, whatever was asked."""
    start_response("200 OK", _HEADERS)
    return [_BODY]
