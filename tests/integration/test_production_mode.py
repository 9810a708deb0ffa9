"""Production parts for real: Redis-backed counters, a Celery worker running the outbox,
and no lost work when the broker is down."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from tests.conftest import ROOT, Api, database_url, make_app

REDIS_URL = os.environ.get("YDX_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_db():  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # fail loudly: Redis is part of the suite, never skipped
    client.flushdb()
    yield client
    client.flushdb()


def test_login_throttle_is_shared_by_web_nodes_through_redis(fresh, redis_db):
    node_a = make_app(REDIS_URL=REDIS_URL).test_client()
    node_b = make_app(REDIS_URL=REDIS_URL).test_client()
    for _ in range(5):
        assert node_a.post("/api/v1/auth/login", json={"username": "gm", "password": "wrong"}).status_code == 401
    refused = node_b.post("/api/v1/auth/login", json={"username": "gm", "password": "demo1234"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0


def test_an_idempotency_key_holds_on_every_web_node_with_or_without_redis(fresh, redis_db):
    """The key is kept with the application in the database: another node answers the
    same application, and so does a node whose Redis is down (a retry during an outage
    made a second application while the keys lived in Redis)."""
    from tests.conftest import application_body

    node_a = make_app(REDIS_URL=REDIS_URL).test_client()
    node_b = make_app(REDIS_URL=REDIS_URL).test_client()
    headers = {"Idempotency-Key": "c0ffee-0001"}
    first = node_a.post("/api/v1/public/applications", json=application_body(), headers=headers)
    again = node_b.post("/api/v1/public/applications", json=application_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    down = make_app(REDIS_URL="redis://127.0.0.1:6390/0").test_client()  # Redis unreachable
    retried = down.post("/api/v1/public/applications", json=application_body(), headers=headers)
    assert retried.status_code == 201 and retried.get_json() == first.get_json()
    other = down.post("/api/v1/public/applications", json=application_body(), headers={"Idempotency-Key": "c0ffee-2"})
    assert other.status_code == 201 and other.get_json() != first.get_json()


def test_health_reports_redis(fresh, redis_db):
    body = make_app(REDIS_URL=REDIS_URL).test_client().get("/api/v1/health").get_json()
    assert body["checks"] == {"database": "ok", "redis": "ok"}


def test_broker_outage_loses_no_work_and_the_relay_finishes_it(fresh):
    """With Redis unreachable the officer's completion still succeeds; the credit lookup
    stays in the outbox and runs when the relay gets to it."""
    from app.extensions import db
    from app.models import Outbox
    from app.workflow import outbox

    down = make_app(REDIS_URL="redis://127.0.0.1:6390/0")
    api = Api(down.test_client())
    no = api.submit()
    api.to_approval(no)
    with down.app_context():
        pending = db.session.scalars(select(Outbox).where(Outbox.status == "pending")).all()
        assert [row.operation for row in pending] == ["credit_lookup_service"]
        outbox.run_inline([pending[0].id])
    assert api.task("approver1", no, "approve")["task_key"] == "approve"


@pytest.fixture
def hung_redis():  # type: ignore[no-untyped-def]
    """A Redis that accepts connections and never answers (hung, or cut off behind a
    firewall that drops packets): the port of a listening socket nobody reads."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join(timeout=2)
    for connection in held:
        connection.close()
    server.close()


def test_a_hung_redis_delays_requests_by_one_timeout_not_one_per_call(fresh, hung_redis):
    """Redis hangs: the first call that meets it waits out its socket timeout (1–2 s), then
    this process leaves Redis alone for a while — limits fail open, the publish is left to
    the relay. A completion that publishes the credit lookup answered nothing for 30 s
    (gunicorn then killed the worker) although its work was committed."""
    from app.extensions import db
    from app.models import Outbox

    node = make_app(REDIS_URL=hung_redis)
    api = Api(node.test_client())
    started = time.monotonic()
    no = api.submit()
    api.to_approval(no)  # login, assign, visit, collect: the last one publishes
    elapsed = time.monotonic() - started
    assert elapsed < 15, f"{elapsed:.1f} s: every Redis call waited for the hung server"
    with node.app_context():
        pending = db.session.scalars(select(Outbox.operation).where(Outbox.status == "pending")).all()
    assert pending == ["credit_lookup_service"]  # committed, waiting for the relay
    assert api.application("lead_hka", no)["stage"] == "approval"


@pytest.mark.skipif(not database_url().startswith("postgresql"), reason="the worker run needs the PostgreSQL run")
def test_celery_worker_runs_service_tasks_from_the_outbox(fresh, redis_db):
    """The credit lookup is queued while no worker runs; a worker started afterwards
    picks the message up from Redis, and later service tasks flow through it too."""
    web = make_app(REDIS_URL=REDIS_URL)
    api = Api(web.test_client())
    no = api.submit()
    api.to_approval(no)
    assert api.get("approver1", f"/api/v1/tasks?scope=mine&application_no={no}").get_json()["items"] == []
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": os.environ["SECRET_KEY"],
        "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(  # noqa: S603 - our own celery binary and fixed arguments
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "workers.worker",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            items = api.get("approver1", f"/api/v1/tasks?scope=mine&application_no={no}").get_json()["items"]
            if items:
                break
            time.sleep(0.2)
        assert items and items[0]["task_key"] == "approve", "the worker did not run the credit lookup"
        assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
        assert api.approve("approver2", no, "approve", "95000", 12).status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and api.application("lead_hka", no)["loan_id"] is None:
            time.sleep(0.2)
        detail = api.application("lead_hka", no)
        assert detail["stage"] == "disbursement"
        assert detail["loan_id"] is not None
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_the_periodic_relay_runs_an_effect_nobody_picked_up(fresh):
    """A service task whose outbox row was never run (broker down, worker crashed) is run
    by the periodic job once it is older than the relay's grace period."""
    from datetime import timedelta

    from sqlalchemy import update

    from app.extensions import db
    from app.models import Outbox
    from app.models.base import utcnow
    from app.scheduler import run_periodic_jobs

    down = make_app(REDIS_URL="redis://127.0.0.1:6390/0")
    api = Api(down.test_client())
    no = api.submit()
    api.to_approval(no)
    with fresh.app_context():
        assert run_periodic_jobs()["relayed"] == 0  # still within the grace period
        db.session.execute(update(Outbox).values(available_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
        assert run_periodic_jobs()["relayed"] == 1
        assert db.session.scalar(select(Outbox.status)) == "done"
    assert api.task("approver1", no, "approve")["task_key"] == "approve"
