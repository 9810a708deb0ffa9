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

Writes that nothing reads back within the transaction (the inbox projection, stage
history, audit rows, the state itself) can be queued with `Hot.defer`: on PostgreSQL the
queue goes to the server as one statement of data-modifying CTEs at the next read or at
commit, with rowcount checks and RETURNING ids delivered then; on SQLite it runs at once.

Limits, checked when a statement is first compiled: no expanding IN parameters, no
escaped bind names, and an INSERT must be given every column that has a Python-side
default (the fast path does not run SQLAlchemy's default generators).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert, UpdateBase

from app import sqlstats
from app.extensions import db

log = logging.getLogger(__name__)

Params = Mapping[str, Any]


class _Compiled:
    """SQL and bind processors of one statement for one set of parameter names.

    It runs in PostgreSQL's own `$n` placeholder form on a raw cursor with the values in
    order: psycopg then has no `%(name)s` query to parse (its cache of parsed queries skips
    statements with more than 50 parameters, like a batch of queued writes)."""

    __slots__ = ("literals", "order", "processors", "query", "returning", "sql")

    def __init__(
        self,
        sql: str,
        literals: dict[str, Any],
        processors: dict[str, Callable[[Any], Any]],
        returning: tuple[str, ...] = (),
    ) -> None:
        self.sql = sql  # psycopg's pyformat, as SQLAlchemy compiled it (messages, batches)
        self.returning = returning  # column names of its RETURNING clause (SQLAlchemy adds the key to INSERTs)
        raw, self.order = _numbered(sql)
        self.query = raw.encode()
        self.literals = literals  # values written into the statement, e.g. `status == "open"`
        self.processors = processors

    def bind(self, params: Params) -> list[Any]:
        values = {**self.literals, **params}
        for name, process in self.processors.items():
            if name in values:
                values[name] = process(values[name])
        return [values[name] for name in self.order]


_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """`%(name)s` placeholders → `$1, $2, …` (a name used twice keeps its number)."""
    order: list[str] = []
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        if name not in numbers:
            order.append(name)
            numbers[name] = len(order)
        return f"${numbers[name]}"

    return _PYFORMAT.sub(number, sql), tuple(order)


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
        if _read.active and not db.session.registry.has():  # a read request that needed no session
            try:
                return self._run(_read_connection(), params)
            except DBAPIError as exc:
                if not exc.connection_invalidated or isinstance(self.statement, UpdateBase):
                    raise
                # The kept connection had died (a database restart, a killed backend): a
                # read is safe to repeat once on a new one.
                close_read_connection()
                return self._run(_read_connection(), params)
        session = db.session()
        connection = _connection(session)
        if connection.dialect.name != "postgresql":
            return self._via_session(session, params)
        if _PENDING in session.info:
            flush_writes(session)
        if not session._is_clean():
            session.flush()
        return self._run(connection, params)

    def _run(self, connection: Any, params: Params | Sequence[Params]) -> Result:
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

    def defer(
        self,
        params: Params | Sequence[Params],
        *,
        expect_one: Exception | None = None,
        on_ids: Callable[[list[Any]], None] | None = None,
    ) -> None:
        """Queue a write that nothing in this transaction reads back before it ends.

        On PostgreSQL the queued writes of a transaction go to the server together, as one
        statement of data-modifying CTEs, when the transaction next reads (any statement
        through the session or a `Hot`) or commits; each round trip costs ~55 µs of CPU
        split between the worker and the server (a micro-benchmark, bench/README.md), so
        a completion's five or six writes become one. Elsewhere (SQLite) it runs at once.
        `expect_one`: raised if the write did not touch exactly one row (once per parameter
        set); `on_ids`: called with the first RETURNING column of the rows written."""
        rows_in = [params] if isinstance(params, Mapping) else list(params)
        if not rows_in:
            return
        session = db.session()
        connection = _connection(session)
        if connection.dialect.name != "postgresql":
            for row in rows_in:
                result = self._via_session(session, row)
                _check_write(result.rowcount, expect_one)
                if on_ids is not None:
                    on_ids(result.scalars())
            return
        pending: list[_Write] = session.info.setdefault(_PENDING, [])
        if not isinstance(self.statement, Insert) and any(w.table is self.statement.table for w in pending):
            # PostgreSQL applies only one of two changes to a row within one statement, and an
            # UPDATE cannot see rows INSERTed beside it: such writes go in order instead.
            flush_writes(session)
            pending = session.info.setdefault(_PENDING, [])
        compiled = self._compile(connection.dialect, rows_in[0])
        for row in rows_in:
            pending.append(_Write(self, compiled, compiled.bind(row), expect_one, on_ids))

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


_PENDING = "ydx_pending_writes"
_NUMBER = re.compile(r"\$(\d+)")


class _Write:
    """One queued write: its statement, compiled SQL, bound values and checks."""

    __slots__ = ("compiled", "expect_one", "on_ids", "table", "values")

    def __init__(
        self,
        hot: Hot,
        compiled: _Compiled,
        values: list[Any],
        expect_one: Exception | None,
        on_ids: Callable[[list[Any]], None] | None,
    ) -> None:
        self.table = hot.statement.table  # type: ignore[attr-defined]
        self.compiled = compiled
        self.values = values
        self.expect_one = expect_one
        self.on_ids = on_ids


def _check_write(rowcount: int, expect_one: Exception | None) -> None:
    if expect_one is not None and rowcount != 1:
        raise expect_one


# Composite statements by the sequence of compiled parts they join (a handful of shapes:
# a completion, an advance with or without new tasks, an outbox row, a stage change). The
# key holds the parts themselves (compared by identity), so a key never outlives them.
_BATCHES: dict[tuple[_Compiled, ...], tuple[bytes, str]] = {}


def _batch_sql(writes: list[_Write]) -> tuple[bytes, str]:
    key = tuple(w.compiled for w in writes)
    found = _BATCHES.get(key)
    if found is None:
        parts, outputs, offset = [], [], 0
        for i, write in enumerate(writes):
            shift = offset
            sql = _NUMBER.sub(lambda m, shift=shift: f"${int(m.group(1)) + shift}", write.compiled.query.decode())
            offset += len(write.compiled.order)
            if not write.compiled.returning:
                sql += " RETURNING 1"  # a data-modifying CTE reports its rows only through RETURNING
            if write.on_ids is not None:
                outputs.append(f"(SELECT array_agg({write.compiled.returning[0]}) FROM w{i}) AS r{i}")
            else:
                outputs.append(f"(SELECT count(*) FROM w{i}) AS r{i}")
            parts.append(f"w{i} AS ({sql})")
        text = f"WITH {', '.join(parts)} SELECT {', '.join(outputs)}"
        found = _BATCHES[key] = (text.encode(), text)
    return found


def flush_writes(session: Any) -> None:
    """Send this transaction's queued writes (PostgreSQL), then run their checks."""
    writes: list[_Write] | None = session.info.pop(_PENDING, None)
    if not writes:
        return
    connection = _connection(session)
    cursor = _cursor(connection.connection.driver_connection)
    if len(writes) == 1:
        query, sql = writes[0].compiled.query, writes[0].compiled.sql
        values: list[Any] = writes[0].values
    else:
        query, sql = _batch_sql(writes)
        values = [value for write in writes for value in write.values]
    _count()
    try:
        cursor.execute(query, values)
        if len(writes) == 1:
            write = writes[0]
            outcome: tuple[Any, ...] = ([row[0] for row in cursor.fetchall()] if write.compiled.returning else None,)
            rowcounts = [cursor.rowcount]
        else:
            outcome = cursor.fetchone()
            rowcounts = [
                len(value or ()) if w.on_ids is not None else value for w, value in zip(writes, outcome, strict=True)
            ]
    except psycopg.Error as exc:
        _CURSORS.pop(cursor.connection, None)
        connection._handle_dbapi_exception(exc, sql, values, cursor, None)
        raise  # not reached: the handler always raises
    for write, value, rowcount in zip(writes, outcome, rowcounts, strict=True):
        _check_write(rowcount, write.expect_one)
        if write.on_ids is not None:
            write.on_ids(list(value or ()))


@event.listens_for(Session, "do_orm_execute")
def _flush_before_session_statement(state) -> None:  # type: ignore[no-untyped-def]
    session = state.session
    if _read.active and session.get_transaction() is None:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    if _PENDING in session.info:
        flush_writes(session)


@event.listens_for(Session, "before_flush")
def _flush_before_unit_of_work(session: Session, _context: object, _instances: object) -> None:
    if _PENDING in session.info:
        flush_writes(session)


@event.listens_for(Session, "before_commit")
def _flush_before_commit(session: Session) -> None:
    if _PENDING in session.info:
        flush_writes(session)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def on_postgresql() -> bool:
    """Whether the current session's database is PostgreSQL (else the embedded SQLite)."""
    return _connection(db.session()).dialect.name == "postgresql"


_CONNECTION_KEY = "ydx_hot_connection"


class _ReadRequest(threading.local):
    """An API read request on PostgreSQL (set by the app's before/teardown hooks), and the
    autocommit connection this thread's reads use: kept from one request to the next (a
    pool checkout and return cost ~0.1 ms a request), replaced when it broke, when the app's
    engine changed, or after the pool's recycle time."""

    active = False
    connection: Any = None
    engine: Any = None
    since = 0.0


_read = _ReadRequest()


def begin_read_request() -> None:
    """Statements of this request run in autocommit; Hot ones on a connection of their own."""
    _read.active = True


def end_read_request() -> None:
    """The request is over; its thread keeps the read connection for the next one."""
    _read.active = False


def _read_connection() -> Any:
    connection, engine = _read.connection, db.engine
    if (
        connection is None
        or connection.closed
        or connection.invalidated
        or _read.engine is not engine
        or 0 <= engine.pool._recycle < time.monotonic() - _read.since
        or _older_than_pool_invalidation(connection, engine)
    ):
        if connection is not None:
            close_read_connection()
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        _read.connection, _read.engine, _read.since = connection, engine, time.monotonic()
    return connection


def _older_than_pool_invalidation(connection: Any, engine: Any) -> bool:
    """Whether the pool has seen a lost connection since this one was opened: the pool then
    renews every connection it hands out, and a kept one must be renewed the same way."""
    record = getattr(connection.connection, "_connection_record", None)
    invalidated_at = getattr(engine.pool, "_invalidate_time", 0)
    return bool(invalidated_at) and record is not None and record.starttime < invalidated_at


def close_read_connection() -> None:
    """Give this thread's read connection back to its pool (one that broke is discarded)."""
    connection, _read.connection, _read.engine = _read.connection, None, None
    if connection is not None:
        try:
            connection.close()
        except Exception:  # a connection of a disposed engine or a dead socket: nothing to keep
            log.debug("read connection could not be closed cleanly", exc_info=True)


def _connection(session: Any) -> Any:
    """The session's connection for its current transaction. `Session.connection()` costs
    ~25 Python calls (bind lookup through Flask-SQLAlchemy, transaction state checks); a
    transaction keeps one connection, so it is looked up once per transaction. In an API
    read request with no transaction begun, an autocommit connection outside the session
    (a session transaction costs ~60 µs to begin and close)."""
    transaction = session.get_transaction()
    if transaction is None and _read.active:
        return _read_connection()
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
        cursor = _CURSORS[driver_connection] = psycopg.RawCursor(driver_connection, row_factory=namedtuple_row)
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
    returning = tuple(column.name for column in getattr(compiled, "effective_returning", None) or ())
    return _Compiled(str(compiled), literals, processors, returning)


def _count() -> None:
    """Keep the `X-SQL-Statements` figure right (see app/sqlstats.py): an executemany
    counts once, as SQLAlchemy's cursor event does."""
    if sqlstats.enabled:
        sqlstats.count_statement()
