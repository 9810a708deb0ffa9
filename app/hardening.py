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
from flask_babel import gettext as _
from flask_smorest import Blueprint as SmorestBlueprint
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from app import jsontext
from app.errors import ApiError

MAX_JSON_BYTES = 1024 * 1024


class MalformedJSON(ValueError):
    """The body is not acceptable JSON; `field` names the key at fault when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


GIVEN_TWICE = "同一字段只能出现一次 (given more than once)"


def malformed(exc: ValueError) -> ApiError:
    """The 400 for a body that is not acceptable JSON, naming the key at fault if known."""
    field = getattr(exc, "field", None)
    fields = {field: [_(GIVEN_TWICE)]} if field else None
    return ApiError("bad_request", f"请求体不是有效的 JSON (malformed JSON body: {exc})", 400, fields)


def _first_repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no repeated key")  # only called when there is one


def _refuse_repeated_keys(value: Any, repeated: list[tuple[str, dict[str, Any]]]) -> None:
    """The standard parser keeps the last of a repeated key, so `{"amount": "50000",
    "amount": "70000"}` would be read as 70,000 whatever a client's own parser or a log
    showed: a repeated key is refused. `fields` names it when it is a key of the body
    itself; a repeat inside a nested object is named in the message only (its path is
    not known, and a top-level field of the same name may be fine)."""
    for key, obj in repeated:
        if obj is value:
            raise MalformedJSON(f'the key "{key[:64]}" is given more than once', key[:64])
    key = repeated[0][0]
    raise MalformedJSON(f'the key "{key[:64]}" is given more than once in a nested object')


def bad_text(value: str) -> str | None:
    """Why a string cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in value:
        return "NUL characters are not allowed"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid Unicode: a lone surrogate"
    return None


def _first_bad_string(value: Any) -> str | None:
    """Walk a parsed JSON value without recursion (depth is attacker-controlled)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = bad_text(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise MalformedJSON(f"{text[:20]} is out of range")
    return number


def _refuse_constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not a number JSON allows")


def safe_loads(data: str | bytes) -> Any:
    """`json.loads` that raises `MalformedJSON` for every way a body can be unacceptable."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON("body is not UTF-8") from exc
    repeated: list[tuple[str, dict[str, Any]]] = []

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            repeated.append((_first_repeated(pairs), obj))
        return obj

    try:
        value = json.loads(
            data, parse_constant=_refuse_constant, parse_float=_finite_float, object_pairs_hook=unique_keys
        )
    except MalformedJSON:
        raise
    except json.JSONDecodeError as exc:  # the parser's own words and where; nothing of the interpreter
        if data.startswith("\ufeff"):
            raise MalformedJSON("the body starts with a byte order mark") from exc
        raise MalformedJSON(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except RecursionError as exc:
        raise MalformedJSON("nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise MalformedJSON("a number has too many digits") from exc
    problem = _first_bad_string(value)
    if problem:  # before naming a repeated key: that key may be what cannot be shown
        raise MalformedJSON(problem)
    if repeated:
        _refuse_repeated_keys(value, repeated)
    return value


class SafeJSONProvider(DefaultJSONProvider):
    """`request.get_json()` through `safe_loads` (a failure becomes Flask's 400); responses
    written by orjson with Flask's own conversions (`default`: dates as HTTP dates,
    Decimal and UUID as strings, dataclasses as dicts) and sorted keys — the same JSON,
    except that non-ASCII text is sent as UTF-8 rather than `\\u` escapes."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if set(kwargs) - {"separators"}:  # e.g. indent in debug mode: the standard encoder
            return super().dumps(obj, **kwargs)
        return jsontext.response(obj, self.default)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return safe_loads(s)  # MalformedJSON is a ValueError: Flask's loading failure


class SafeParser(FlaskParser):
    """webargs parser whose JSON loading cannot raise anything but a 400."""

    def _raw_load_json(self, req):  # type: ignore[no-untyped-def]
        if not is_json_request(req):
            return core.missing
        try:
            return safe_loads(req.get_data(cache=True))
        except MalformedJSON as exc:
            raise malformed(exc) from exc


class Blueprint(SmorestBlueprint):
    """flask-smorest blueprint with the hardened parser."""

    ARGUMENTS_PARSER = SafeParser()


FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# The API endpoints that take files (multipart); every other API body is a JSON object.
UPLOAD_ENDPOINTS = frozenset({"loans.upload_attachment", "processes.create_deployment"})
# Actions that take no body at all: whatever a client sends with them (curl's `-d '{}'`
# arrives form-encoded) is ignored, as before.
BODYLESS_ENDPOINTS = frozenset({"tasks.claim", "tasks.unclaim", "auth.logout"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_OTHER_JSON_VALUES = b'["-0123456789tfn'  # how an array, string, number, true, false or null starts


def _require_json_object() -> None:
    """An API body must be a JSON object, declared as JSON: one answer (400) for a body
    sent as text/plain or a form, and for `[]`, `"x"` or `42`, whichever endpoint gets it."""
    endpoint = request.endpoint
    if request.method not in _BODY_METHODS or endpoint is None or endpoint in UPLOAD_ENDPOINTS:
        return  # (no endpoint: the 404 or 405 comes first)
    if endpoint in BODYLESS_ENDPOINTS or (not request.content_length and "Transfer-Encoding" not in request.headers):
        return
    if not request.content_length and not request.get_data(cache=True).strip():
        return  # a chunked body that turned out empty
    if not request.is_json:
        raise ApiError(
            "bad_request", "请求体须为 JSON (the body must be JSON, sent with Content-Type: application/json)", 400
        )
    first = request.get_data(cache=True).lstrip()[:1]
    if first and first in _OTHER_JSON_VALUES:  # anything else is for the parser to explain
        raise ApiError("bad_request", "请求体须为 JSON 对象 (the body must be a JSON object)", 400)


def init_app(app: Flask) -> None:
    """Install the JSON provider and refuse NUL characters in paths, queries and forms."""
    app.json_provider_class = SafeJSONProvider
    app.json = SafeJSONProvider(app)

    @app.before_request
    def _refuse_bad_text() -> None:
        req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
        chunked = req.content_length is None and "HTTP_TRANSFER_ENCODING" in req.environ
        texts = [req.path]
        sources = [req.args]
        if req.mimetype in FORM_TYPES:  # JSON bodies are checked by the JSON parser
            if chunked:  # read it whole first: the form parser would take a cut body as whole
                req.get_data(cache=True)  # bounded by MAX_CONTENT_LENGTH
                _refuse_capped_stream(req)
            sources.append(req.form)
            texts.extend(upload.filename or "" for upload in req.files.values())
        for source in sources:
            for key, value in source.items(multi=True):
                texts.extend((key, value))
        try:
            joined = "".join(texts)  # one check of everything: the message names no part
        except TypeError:  # a multipart part without a readable name has the key None
            joined = "".join(text for text in texts if isinstance(text, str))
        problem = bad_text(joined)
        if problem:
            raise ApiError(
                "bad_request",
                f"请求中有无法保存的字符 (the request holds characters that cannot be stored: {problem})",
                400,
            )
        if _json_too_large(req, chunked):
            raise ApiError("too_large", "JSON 请求体过大 (JSON body too large)", 413)
        if req.path.startswith("/api/") and req.endpoint is not None:  # (no endpoint: the 404/405 first)
            _refuse_repeated_query_keys(req)
            _require_json_object()


def _refuse_capped_stream(req: Any) -> None:
    """werkzeug stops reading a chunked body at `MAX_CONTENT_LENGTH` without a word (the
    form parser would see a truncated body and tell the client "no file", the JSON parser
    an unterminated string). A body that reached the cap is too large if anything follows."""
    cap = req.max_content_length
    if cap is not None and req.stream.tell() >= cap and req.environ["wsgi.input"].read(1):
        raise ApiError("too_large", _("请求内容过大"), 413)


def _json_too_large(req: Any, chunked: bool) -> bool:
    """A JSON body over `MAX_JSON_BYTES`, by its Content-Length or, chunked, by what arrived."""
    length = req.content_length
    if length is not None:
        return length > MAX_JSON_BYTES and req.is_json
    if not chunked or not req.is_json:
        return False
    body = req.get_data(cache=True)  # bounded by MAX_CONTENT_LENGTH
    _refuse_capped_stream(req)
    return len(body) > MAX_JSON_BYTES


def _refuse_repeated_query_keys(req: Any) -> None:
    """Every query parameter of the API takes one value: `per_page=1&per_page=500` is a
    400 naming it (as a repeated JSON key is), rather than one of the two silently winning."""
    parts = req.environ.get("QUERY_STRING", "").split("&")
    args = req.args
    if len(args) == len(parts) - parts.count(""):  # as many keys as parameters: none repeated
        return
    repeated = sorted(key for key in args if len(args.getlist(key)) > 1)
    if repeated:
        fields = {key[:64]: [_(GIVEN_TWICE)] for key in repeated}
        raise ApiError("bad_request", _("请求格式错误"), 400, fields)
