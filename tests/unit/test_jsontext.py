"""orjson writes our JSON; it must be the JSON the standard library would have written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from app import jsontext
from app.hardening import SafeJSONProvider


@dataclass
class Point:
    x: int
    y: str


VALUE = {
    "b": [1, 2.5, None, True, "中文"],
    "a": {"when": datetime(2026, 11, 26, 8, 0, tzinfo=UTC), "day": date(2026, 11, 26)},
    "amount": Decimal("100000.00"),
    "id": UUID("12345678-1234-5678-1234-567812345678"),
    "point": Point(1, "y"),
}


def test_responses_are_the_json_flask_would_write():
    app = Flask(__name__)
    ours, flasks = SafeJSONProvider(app), DefaultJSONProvider(app)
    assert json.loads(ours.dumps(VALUE)) == json.loads(flasks.dumps(VALUE))
    assert list(json.loads(ours.dumps(VALUE))) == sorted(str(key) for key in VALUE)
    assert json.loads(ours.dumps({"n": 2**70})) == {"n": 2**70}  # beyond orjson: the standard encoder
    assert json.loads(ours.dumps({3: "an int key"})) == {"3": "an int key"}


def test_columns_and_converted_state_fall_back_for_what_orjson_cannot_write():
    assert json.loads(jsontext.column({"n": 2**70, 1: "x"})) == {"n": 2**70, "1": "x"}
    converted = jsontext.converted({"day": date(2026, 1, 2), "n": 2**70}, lambda o: {"iso": o.isoformat()})
    assert json.loads(converted) == {"day": {"iso": "2026-01-02"}, "n": 2**70}
    assert json.loads(jsontext.converted({"day": date(2026, 1, 2)}, lambda o: o.isoformat())) == {"day": "2026-01-02"}
