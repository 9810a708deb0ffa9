"""JSON text of stored values (workflow state, JSON columns) through orjson.

The state of an instance is written after every step (7–12 KB) and the outbox payload,
form data and audit rows are JSON columns: the standard library's encoder spent about a
tenth of a task completion's CPU on them; orjson writes the same JSON several times faster.
Only the serialization changes: what it accepts is a superset of `json.dumps` (it also
writes datetimes and UUIDs, which our callers convert first anyway) and non-string keys
become strings, as `json.dumps` makes them.
"""

from __future__ import annotations

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
    return orjson.dumps(value, option=_COLUMN_OPTIONS).decode()


def converted(value: Any, default: Callable[[Any], Any]) -> str:
    """JSON of `value`, with `default` converting every non-JSON object (dates included)."""
    return orjson.dumps(value, default=default, option=_CONVERTED_OPTIONS).decode()
