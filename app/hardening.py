"""Hardened request parsing shared by every API blueprint.

Bad input must end in a 4xx, never a 5xx: JSON nested deeper than the interpreter's
recursion limit, integers with thousands of digits, and NUL characters (which
PostgreSQL text refuses) are rejected as malformed requests.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Blueprint as SmorestBlueprint
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from app.errors import ApiError

MAX_JSON_BYTES = 1024 * 1024


class MalformedJSON(ValueError):
    """The body is not acceptable JSON."""


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def safe_loads(data: str | bytes) -> Any:
    """`json.loads` that raises `MalformedJSON` for every way a body can be unacceptable."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON("body is not UTF-8") from exc
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedJSON(str(exc)[:200]) from exc
    if _contains_nul(value):
        raise MalformedJSON("NUL characters are not allowed")
    return value


class SafeJSONProvider(DefaultJSONProvider):
    """`request.get_json()` through `safe_loads` (a failure becomes Flask's 400)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return safe_loads(s)
        except MalformedJSON as exc:
            raise ValueError(str(exc)) from exc


class SafeParser(FlaskParser):
    """webargs parser whose JSON loading cannot raise anything but a 400."""

    def _raw_load_json(self, req):  # type: ignore[no-untyped-def]
        if not is_json_request(req):
            return core.missing
        try:
            return safe_loads(req.get_data(cache=True))
        except MalformedJSON as exc:
            raise ApiError("bad_request", f"malformed JSON body: {exc}", 400) from exc


class Blueprint(SmorestBlueprint):
    """flask-smorest blueprint with the hardened parser."""

    ARGUMENTS_PARSER = SafeParser()


def init_app(app: Flask) -> None:
    """Install the JSON provider and refuse NUL characters in paths, queries and forms."""
    app.json_provider_class = SafeJSONProvider
    app.json = SafeJSONProvider(app)

    @app.before_request
    def _refuse_nul() -> None:
        if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
            raise ApiError("bad_request", "NUL characters are not allowed", 400)
        if request.content_length and request.content_length > MAX_JSON_BYTES and request.is_json:
            raise ApiError("too_large", "JSON body too large", 413)
