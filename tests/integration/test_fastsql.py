"""Hot statements (app/fastsql.py) give what the ordinary session path gives.

On PostgreSQL they run on the driver connection; on SQLite through the session. The
whole suite runs on both, so these checks pin down the places the two could differ:
values and types of a read row, a multi-row INSERT … RETURNING, rowcounts, literals
written into the statement, and the guard against INSERTs that rely on Python defaults.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, insert, select, text, update

from app.extensions import db
from app.fastsql import Hot
from app.models import HumanTask, LoanProduct, StageEntry
from app.models.base import utcnow
from app.tasks.services import _GET_TASK, _TASK_COLUMNS

_TASKS = HumanTask.__table__


def test_a_task_row_reads_like_the_orm_entity(api, fresh):
    application_no = api.submit()
    with fresh.test_request_context():
        entity = db.session.scalar(select(HumanTask).where(HumanTask.application_no == application_no))
        row = _GET_TASK.execute({"task_id_": entity.id}).first()
        assert tuple(row._fields) == _TASK_COLUMNS
        for name in _TASK_COLUMNS:
            assert getattr(row, name) == getattr(entity, name), name
        assert isinstance(row.created_at, datetime) and row.created_at.utcoffset() is not None
        assert _GET_TASK.execute({"task_id_": 2_000_000_000}).first() is None


def test_decimals_come_back_as_decimals(fresh):
    products = LoanProduct.__table__
    limits = Hot(select(products.c.min_amount, products.c.annual_rate).where(products.c.code == bindparam("code_")))
    with fresh.test_request_context():
        row = limits.execute({"code_": "BIZ-EQ"}).first()
        assert isinstance(row.min_amount, Decimal) and isinstance(row.annual_rate, Decimal)


def test_a_multi_row_insert_returns_every_id_and_counts_updates(api, fresh):
    application_no = api.submit()
    add = Hot(insert(StageEntry.__table__).returning(StageEntry.__table__.c.id))
    open_only = Hot(  # the literal "open" is bound by the statement itself
        update(_TASKS)
        .where(_TASKS.c.application_no == bindparam("no_"), _TASKS.c.status == "open")
        .values(priority=bindparam("priority_"))
    )
    with fresh.test_request_context():
        application_id = db.session.scalar(
            select(HumanTask.application_id).where(HumanTask.application_no == application_no)
        )
        rows = [{"application_id": application_id, "stage": "x", "actor_id": None, "at": utcnow()} for _ in range(3)]
        ids = add.execute(rows).scalars()
        assert len(ids) == 3 and len(set(ids)) == 3
        assert open_only.execute({"no_": application_no, "priority_": 70}).rowcount == 1
        assert open_only.execute({"no_": "nobody", "priority_": 70}).rowcount == 0
        db.session.rollback()


def test_an_insert_that_needs_python_defaults_is_refused(fresh):
    """The fast path does not run SQLAlchemy's default generators, so it refuses to guess."""
    lazy = Hot(insert(StageEntry.__table__))
    with fresh.test_request_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("only the PostgreSQL path compiles its own SQL")
        with pytest.raises(ValueError, match="at"):
            lazy.execute({"application_id": 1, "stage": "x", "actor_id": None})
        db.session.rollback()


def test_driver_errors_surface_as_sqlalchemy_errors(fresh):
    """A unique violation is SQLAlchemy's IntegrityError (the submit retry relies on it) and
    a lost connection is its OperationalError (a 503), with the connection invalidated so
    the pool does not hand it out again."""
    from sqlalchemy import exc, text

    from app.models import Region

    regions = Region.__table__
    add_region = Hot(insert(regions))
    region_ids = Hot(select(regions.c.id).where(regions.c.code == bindparam("code_")))
    with fresh.test_request_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("the SQLite path is the session's own")
        with pytest.raises(exc.IntegrityError):
            add_region.execute({"code": "HK", "name": "重复", "default_product_id": None})
        db.session.rollback()
        backend = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        with pytest.raises(exc.OperationalError) as lost:
            region_ids.execute({"code_": "HK"})
        assert lost.value.connection_invalidated
        db.session.rollback()
        assert region_ids.execute({"code_": "HK"}).scalar() is not None


@pytest.mark.parametrize(
    ("method", "path", "autocommit"),
    [("GET", "/api/v1/tasks", True), ("POST", "/api/v1/tasks/1/complete", False), ("GET", "/console", False)],
)
def test_api_reads_run_without_a_transaction_on_postgresql(fresh, method, path, autocommit):
    """No BEGIN/ROLLBACK round trips around an API read — for hot statements (on a
    connection outside the session) and ORM ones alike; writes keep their transaction."""
    from app import fastsql
    from app.models import Region

    with fresh.test_request_context(path, method=method):
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite keeps its BEGIN IMMEDIATE transactions")
        fresh.preprocess_request()
        hot = fastsql._connection(db.session())
        assert hot.connection.driver_connection.autocommit is autocommit
        assert (db.session().get_transaction() is None) is autocommit
        assert db.session.scalars(select(Region.code)).all()  # an ORM statement
        assert db.session.connection().connection.driver_connection.autocommit is autocommit
        fresh.do_teardown_request()
        assert not fastsql._read.active
        db.session.remove()


INBOX = "/api/v1/tasks?scope=candidate"


@pytest.fixture
def kept_reads(fresh):  # type: ignore[no-untyped-def]
    """The PostgreSQL read path with no connection kept yet (and none left behind)."""
    from app import fastsql

    with fresh.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("reads on SQLite go through the session")
    fastsql.close_read_connection()
    yield fastsql
    fastsql.close_read_connection()


def test_reads_of_one_thread_share_a_kept_connection_until_it_breaks(fresh, api, kept_reads):
    """The read connection stays with its thread between requests (no pool round trip per
    request); a read whose kept connection died is repeated once on a new one."""
    assert api.get("lead_hka", INBOX).status_code == 200
    first = kept_reads._read.connection
    assert first is not None and not first.closed
    assert api.get("lead_hka", INBOX).status_code == 200
    assert kept_reads._read.connection is first
    backend = first.connection.driver_connection.info.backend_pid
    with fresh.app_context(), db.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    assert api.get("lead_hka", INBOX).status_code == 200
    assert kept_reads._read.connection is not first


def test_a_kept_read_connection_is_renewed_once_the_pool_saw_a_lost_one(fresh, api, kept_reads):
    """After one lost connection the pool renews what it hands out; a connection another
    thread keeps is renewed too instead of failing its next request."""
    assert api.get("lead_hka", INBOX).status_code == 200
    kept = kept_reads._read.connection
    with fresh.app_context():
        db.engine.pool._invalidate_time = time.time() + 1  # as after a disconnect elsewhere
        try:
            assert api.get("lead_hka", INBOX).status_code == 200
            assert kept_reads._read.connection is not kept
        finally:
            db.engine.pool._invalidate_time = 0


def test_sql_counters_include_hot_statements(fresh):
    """The benchmark's X-SQL-* headers count statements of both paths and the commits."""
    from tests.conftest import Api, make_app

    counted = make_app(YDX_SQL_STATS=True)
    api = Api(counted.test_client())
    no = api.submit()
    listed = api.get("lead_hka", f"/api/v1/tasks?scope=candidate&application_no={no}")
    assert int(listed.headers["X-SQL-Statements"]) >= 1
    assert listed.headers["X-SQL-Commits"] == "0"
    done = api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    assert done.status_code == 200
    # task, officer check, close+lock, then the queued writes (state, new task, stage, officer, audit)
    assert int(done.headers["X-SQL-Statements"]) >= 4
    assert done.headers["X-SQL-Commits"] == "1"


def test_queued_writes_arrive_before_the_next_read_in_order_and_checked(api, fresh):
    """`Hot.defer`: on PostgreSQL the writes wait and go together at the next read or the
    commit; on SQLite they run at once. Either way a read sees them, two UPDATEs of the
    same rows apply in order, and a write that must touch one row fails the transaction."""
    from app import fastsql

    application_no = api.submit()
    add_stage = Hot(insert(StageEntry.__table__).returning(StageEntry.__table__.c.id))
    set_priority = Hot(
        update(_TASKS)
        .where(_TASKS.c.application_no == bindparam("no_"), _TASKS.c.status == "open")
        .values(priority=bindparam("priority_"))
    )
    with fresh.test_request_context():
        postgresql = db.engine.dialect.name == "postgresql"
        application_id = db.session.scalar(
            select(HumanTask.application_id).where(HumanTask.application_no == application_no)
        )
        ids: list[int] = []
        stage = {"application_id": application_id, "stage": "queued", "actor_id": None, "at": utcnow()}
        add_stage.defer([stage, dict(stage, stage="queued2")], on_ids=ids.extend)
        set_priority.defer({"no_": application_no, "priority_": 60})
        if postgresql:
            assert ids == [] and len(db.session.info[fastsql._PENDING]) == 3
        set_priority.defer({"no_": application_no, "priority_": 61}, expect_one=LookupError("no open task"))
        if postgresql:  # a second UPDATE of the table sent what was queued before it
            assert len(ids) == 2 and len(db.session.info[fastsql._PENDING]) == 1
        priority = db.session.scalar(select(HumanTask.priority).where(HumanTask.application_no == application_no))
        assert priority == 61 and len(ids) == 2
        assert fastsql._PENDING not in db.session.info
        stages = db.session.scalars(select(StageEntry.stage).where(StageEntry.id.in_(ids))).all()
        assert sorted(stages) == ["queued", "queued2"]
        db.session.commit()

        with pytest.raises(LookupError):
            set_priority.defer({"no_": "nobody", "priority_": 1}, expect_one=LookupError("no open task"))
            db.session.commit()
        db.session.rollback()

        add_stage.defer(dict(stage, stage="rolled back"))
        db.session.rollback()
        assert fastsql._PENDING not in db.session.info
        assert db.session.scalar(select(StageEntry.id).where(StageEntry.stage == "rolled back")) is None
