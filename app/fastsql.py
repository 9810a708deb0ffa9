"""Hot statements: built once, and on PostgreSQL compiled once and run on the driver.

SQLAlchemy spends about 0.1–0.15 ms of Python per statement before and after the driver
(compiled-cache lookup, execution context, result metadata); a task completion runs a
dozen statements, so that overhead is a large share of its CPU. A `Hot` statement is an
ordinary Core statement whose PostgreSQL SQL is compiled once per dialect and executed on
the psycopg connection *of the current session* — same transaction, same connection —
with SQLAlchemy's bind processors applied (JSON, timezone-aware datetimes, decimals).

Results come back as psycopg returns them: for the types used here (integers, text,
timestamptz, numeric, JSON) those are the values SQLAlchemy would give. Other dialects
(the embedded SQLite default) go through `Session.execute` unchanged, so both paths are
exercised by the test suite on both databases.

Limits, checked when a statement is first compiled: no expanding IN parameters, no
escaped bind names, and an INSERT must be given every column that has a Python-side
default (the fast path does not run SQLAlchemy's default generators).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert, UpdateBase

from app import sqlstats
from app.extensions import db

Params = Mapping[str, Any]


class _Compiled:
    """SQL text and bind processors of one statement for one set of parameter names."""

    __slots__ = ("literals", "processors", "query", "sql")

    def __init__(self, sql: str, literals: dict[str, Any], processors: dict[str, Callable[[Any], Any]]) -> None:
        self.sql = sql
        # The same bytes object on every call: psycopg's parsed-query cache hashes it once.
        self.query = sql.encode()
        self.literals = literals  # values written into the statement, e.g. `status == "open"`
        self.processors = processors

    def bind(self, params: Params) -> dict[str, Any]:
        values = {**self.literals, **params}
        for name, process in self.processors.items():
            if name in values:
                values[name] = process(values[name])
        return values


class Result:
    """What callers use of a result: rows with attribute access, scalar, rowcount."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]


class Hot:
    """A statement executed many times per second with different parameters."""

    __slots__ = ("_compiled", "_returns_rows", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled] = {}
        self._returns_rows = bool(getattr(statement, "_returning", None)) or not isinstance(statement, UpdateBase)

    def execute(self, params: Params | Sequence[Params]) -> Result:
        """Run with one parameter set (or several: an executemany) in the session's transaction."""
        session = db.session()
        connection = _connection(session)
        if connection.dialect.name != "postgresql":
            return self._via_session(session, params)
        if not session._is_clean():
            session.flush()
        rows_in = [params] if isinstance(params, Mapping) else list(params)
        many = len(rows_in) > 1  # psycopg runs executemany in pipeline mode: worth it for several rows only
        compiled = self._compile(connection.dialect, rows_in[0])
        _count()
        cursor = _cursor(connection.connection.driver_connection)
        try:
            if many:
                cursor.executemany(
                    compiled.query, [compiled.bind(row) for row in rows_in], returning=self._returns_rows
                )
                rows: list[Any] = []
                if self._returns_rows:
                    while True:
                        rows.extend(cursor.fetchall())
                        if not cursor.nextset():
                            break
                return Result(rows, cursor.rowcount)
            cursor.execute(compiled.query, compiled.bind(rows_in[0]))
            return Result(cursor.fetchall() if self._returns_rows else [], cursor.rowcount)
        except psycopg.Error as exc:
            _CURSORS.pop(cursor.connection, None)
            # As if SQLAlchemy had run it: its exception classes (IntegrityError,
            # OperationalError → 503, …) and a lost connection invalidated in the pool.
            connection._handle_dbapi_exception(exc, compiled.sql, rows_in, cursor, None)
            raise  # not reached: the handler always raises

    def _via_session(self, session: Any, params: Params | Sequence[Params]) -> Result:
        result = session.execute(self.statement, params)
        rows = result.all() if getattr(result, "returns_rows", True) else []  # a SELECT's result has no flag
        return Result(rows, getattr(result, "rowcount", len(rows)))

    def _compile(self, dialect: Any, sample: Params) -> _Compiled:
        key = (dialect.name, frozenset(sample) if isinstance(self.statement, Insert) else frozenset())
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _compile(self.statement, dialect, sample)
        return found


_CONNECTION_KEY = "ydx_hot_connection"


def _connection(session: Any) -> Any:
    """The session's connection for its current transaction. `Session.connection()` costs
    ~25 Python calls (bind lookup through Flask-SQLAlchemy, transaction state checks); a
    transaction keeps one connection, so it is looked up once per transaction."""
    transaction = session.get_transaction()
    if transaction is not None and transaction.is_active:
        cached = session.info.get(_CONNECTION_KEY)
        if cached is not None and cached[0] is transaction:
            return cached[1]
    connection = session.connection()  # begins a transaction if none; raises if it must roll back
    session.info[_CONNECTION_KEY] = (session.get_transaction(), connection)
    return connection


# One cursor per driver connection, reused: its adapters and type lookups stay warm. A
# connection serves one session (one thread) at a time; a failed statement drops its cursor.
_CURSORS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _cursor(driver_connection: Any) -> Any:
    cursor = _CURSORS.get(driver_connection)
    if cursor is None or cursor.closed:
        cursor = _CURSORS[driver_connection] = driver_connection.cursor(row_factory=namedtuple_row)
    return cursor


def _compile(statement: Executable, dialect: Any, sample: Params) -> _Compiled:
    column_keys = sorted(sample) if isinstance(statement, Insert) else None
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    if compiled.escaped_bind_names or any(b.expanding for b in compiled.binds.values()):
        raise ValueError(f"not a fast-path statement: {statement}")
    if isinstance(statement, Insert):
        table = statement.table
        missing = [
            c.key
            for c in table.columns  # type: ignore[attr-defined]
            if c.default is not None and c.key not in sample and not c.primary_key
        ]
        if missing:
            raise ValueError(f"fast-path INSERT into {table} must be given {missing}")
    processors = {name: process for name, process in (compiled._bind_processors or {}).items() if process is not None}
    literals = {
        name: bind.value for name, bind in compiled.binds.items() if not bind.required and bind.callable is None
    }
    return _Compiled(str(compiled), literals, processors)


def _count() -> None:
    """Keep the `X-SQL-Statements` figure right (see app/sqlstats.py): an executemany
    counts once, as SQLAlchemy's cursor event does."""
    if sqlstats.enabled:
        sqlstats.count_statement()
