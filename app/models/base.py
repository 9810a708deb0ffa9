"""Shared column types and helpers for the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated

from sqlalchemy import JSON, DateTime, Numeric, String
from sqlalchemy.orm import mapped_column

from app.extensions import db

Model = db.Model


# Business days, due dates and times entered without an offset are Beijing time.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def utcnow() -> datetime:
    """Timezone-aware now; every stored time is UTC."""
    return datetime.now(UTC)


class TZDateTime(db.TypeDecorator):  # type: ignore[name-defined]
    """A timezone-aware datetime on both PostgreSQL and SQLite (which drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class DecimalType(db.TypeDecorator):  # type: ignore[name-defined]
    """Exact decimal: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC is a float)."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 14, scale: int = 2) -> None:
        super().__init__(precision, scale)
        self.scale = scale

    def load_dialect_impl(self, dialect):  # type: ignore[no-untyped-def]
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(self.impl.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        quantized = Decimal(value).quantize(Decimal(1).scaleb(-self.scale))
        return str(quantized) if dialect.name == "sqlite" else quantized

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        return None if value is None else Decimal(str(value))


def Money() -> DecimalType:  # noqa: N802 - reads like a type in column definitions
    """Yuan with two decimals."""
    return DecimalType(14, 2)


intpk = Annotated[int, mapped_column(primary_key=True)]
created_at = Annotated[datetime, mapped_column(TZDateTime(), default=utcnow, nullable=False)]
money = Annotated[Decimal, mapped_column(Money())]
code = Annotated[str, mapped_column(String(32))]
JSONType = JSON
