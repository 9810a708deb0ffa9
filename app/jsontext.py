"""JSON text of stored values (workflow state, JSON columns) and responses, through orjson.

The state of an instance is written after every step (7–12 KB) and the outbox payload,
form data and audit rows are JSON columns: the standard library's encoder spent about a
tenth of a task completion's CPU on them; orjson writes the same JSON several times faster.
Only the serialization changes: non-string keys become strings, as `json.dumps` makes
them, and what orjson cannot write (integers beyond 64 bits) falls back to `json.dumps`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_COLUMN_OPTIONS = orjson.OPT_NON_STR_KEYS
# For values whose converter has its own `default` for dates, dataclasses and subclasses
# of str/int/dict/list (SpiffWorkflow's registry): hand those to it instead of orjson.
_CONVERTED_OPTIONS = (
    orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def column(value: Any) -> str:
    """SQLAlchemy's `json_serializer` for JSON columns."""
    try:
        return orjson.dumps(value, option=_COLUMN_OPTIONS).decode()
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits, which JSON itself allows
        return json.dumps(value)


def converted(value: Any, default: Callable[[Any], Any]) -> str:
    """JSON of `value`, with `default` converting every non-JSON object (dates included)."""
    try:
        return orjson.dumps(value, default=default, option=_CONVERTED_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=default, separators=(",", ":"))


_RESPONSE_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def response(value: Any, default: Callable[[Any], Any]) -> str:
    """A response body as Flask's JSON provider writes it (sorted keys, its `default` for
    dates, Decimals and dataclasses), without the `\\u` escapes of non-ASCII text."""
    try:
        return orjson.dumps(value, default=default, option=_RESPONSE_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=default, sort_keys=True, separators=(",", ":"))


def parsed(text: str | bytes) -> Any:
    """Values of JSON text this module (or the standard library) wrote; the standard
    library reads what orjson refuses (integers beyond 64 bits, NaN)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
