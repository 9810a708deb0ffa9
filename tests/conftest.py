"""Shared fixtures: one app per test session on the database named by
`YDX_TEST_DATABASE_URL` (PostgreSQL in CI's second run) or a fresh SQLite file.

The schema is built by the real Alembic migrations. Each database test starts from the
demo organisation and freshly deployed `bpmn/` + `rules/`, so tests are independent.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.pop("REDIS_URL", None)
os.environ.pop("YDX_ENV", None)

ROOT = Path(__file__).resolve().parent.parent
# One scratch folder per run, shared by every import of this module (tests import helpers
# from `tests.conftest`, which is a second module object besides pytest's `conftest`).
_TMP = Path(os.environ.setdefault("YDX_TEST_TMP", tempfile.mkdtemp(prefix="ydx-test-")))
_APPS: list[Any] = []  # kept alive until the session ends, then their pools are closed


def database_url() -> str:
    """PostgreSQL when CI says so, else a throw-away SQLite file."""
    return os.environ.get("YDX_TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'test.sqlite3'}"


def make_app(**overrides: Any):  # type: ignore[no-untyped-def]
    """An app on the test database (extra config in `overrides`)."""
    from app import create_app
    from app.config import _engine_options

    url = database_url()
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(url),
        "YDX_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "YDX_UPLOAD_ROOT": str(_TMP / "uploads"),
        "REDIS_URL": None,
    }
    config.update(overrides)
    application = create_app(config)
    _APPS.append(application)
    return application


@pytest.fixture(scope="session", autouse=True)
def _close_pools() -> Iterator[None]:
    """Close every connection pool at the end, so no connection is left to the GC."""
    yield
    from app.extensions import db

    for application in _APPS:
        with application.app_context():
            db.engine.dispose()


def reset_schema(app) -> None:  # type: ignore[no-untyped-def]
    """Drop everything and run the migrations from empty."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        else:
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(directory=str(ROOT / "migrations"))


@pytest.fixture(scope="session")
def app():  # type: ignore[no-untyped-def]
    application = make_app()
    reset_schema(application)
    yield application


def clear_data(app) -> None:  # type: ignore[no-untyped-def]
    """Empty every table, reload the demo organisation, deploy bpmn/ + rules/."""
    from sqlalchemy import text

    from app.auth.permissions import invalidate_grants, invalidate_profiles
    from app.auth.services import forget_tokens
    from app.extensions import db
    from app.seed import seed_demo
    from app.workflow import live, runtime
    from app.workflow.deploy import deploy
    from app.workflow.specs import clear_cache

    with app.app_context():
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            # DELETE beats TRUNCATE on tables this small; the one cycle (team ↔ lead) is cut first.
            conn.execute(text("UPDATE team SET lead_id = NULL"))
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
        seed_demo()
        files = sorted((ROOT / "bpmn").glob("*.bpmn")) + sorted((ROOT / "rules").glob("*.dmn"))
        deploy([(p.name, p.read_bytes()) for p in files], None)
        db.session.commit()
        db.session.remove()
    invalidate_grants()
    invalidate_profiles()
    forget_tokens()
    clear_cache()
    live.clear()
    runtime.forget_definitions()
    app.extensions["ydx_counter"].__init__()


@pytest.fixture
def fresh(app) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A database holding just the demo organisation and the deployed processes."""
    clear_data(app)
    yield app


@pytest.fixture
def client(fresh):  # type: ignore[no-untyped-def]
    return fresh.test_client()


class Api:
    """A thin client helper: logs demo users in and drives the lifecycle over HTTP."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self._tokens: dict[str, str] = {}
        self._ids: dict[str, int] = {}

    def headers(self, username: str) -> dict[str, str]:
        if username not in self._tokens:
            response = self.client.post("/api/v1/auth/login", json={"username": username, "password": "demo1234"})
            assert response.status_code == 200, response.get_json()
            self._tokens[username] = response.get_json()["token"]
            self._ids[username] = response.get_json()["user"]["id"]
        return {"Authorization": f"Bearer {self._tokens[username]}"}

    def user_id(self, username: str) -> int:
        self.headers(username)
        return self._ids[username]

    def get(self, username: str, path: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.client.get(path, headers=self.headers(username), **kwargs)

    def post(self, username: str, path: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.client.post(path, headers=self.headers(username), **kwargs)

    def submit(self, region: str = "HK", **overrides: Any) -> str:
        body = application_body(region=region, **overrides)
        response = self.client.post("/api/v1/public/applications", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["application_no"]

    def task(self, username: str, application_no: str, task_key: str, scope: str = "mine") -> dict[str, Any]:
        items = self.get(username, f"/api/v1/tasks?scope={scope}&per_page=200").get_json()["items"]
        found = [t for t in items if t["application_no"] == application_no and t["task_key"] == task_key]
        assert found, f"{username} has no {task_key} for {application_no} in {scope}: {items}"
        return found[0]

    def complete(self, username: str, application_no: str, task_key: str, form: dict[str, Any], scope: str = "mine"):  # type: ignore[no-untyped-def]
        task = self.task(username, application_no, task_key, scope)
        return self.post(username, f"/api/v1/tasks/{task['id']}/complete", json=form)

    def to_approval(self, application_no: str, lead: str = "lead_hka", officer: str = "officer_hka1") -> None:
        """Assign, visit and collect, so the application waits for approval."""
        ok = self.complete(lead, application_no, "assign_officer", {"officer_id": self.user_id(officer)}, "candidate")
        assert ok.status_code == 200, ok.get_json()
        ok = self.complete(officer, application_no, "onsite_visit", {"visited_at": VISITED_AT, "notes": "到访"})
        assert ok.status_code == 200, ok.get_json()
        ok = self.complete(
            officer, application_no, "collect_materials", {"customer": {}, "attachments": [], "notes": ""}
        )
        assert ok.status_code == 200, ok.get_json()

    def approve(self, username: str, application_no: str, decision: str, amount: str, term: int):  # type: ignore[no-untyped-def]
        return self.complete(
            username,
            application_no,
            "approve",
            {"decision": decision, "amount": amount, "term_months": term, "comment": ""},
        )

    def application(self, username: str, application_no: str, full: bool = False) -> dict[str, Any]:
        response = self.get(username, f"/api/v1/applications/{application_no}" + ("?full=true" if full else ""))
        assert response.status_code == 200, response.get_json()
        return response.get_json()


BEIJING = timezone(timedelta(hours=8))
# A visit time the visit form accepts (recent, not in the future), with and without offset.
VISITED_NAIVE = (datetime.now(BEIJING) - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
VISITED_AT = VISITED_NAIVE.isoformat()
VISITED_NAIVE_TEXT = VISITED_NAIVE.replace(tzinfo=None).isoformat()
# A committee meeting a few days ago (registration takes meetings within a year either way).
MEETING_AT = (VISITED_NAIVE - timedelta(days=4)).replace(hour=15).isoformat()

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def resident_id(first17: str) -> str:
    """An 18-character resident ID: the ISO 7064 MOD 11-2 check character appended
    (computed here, independently of the application's validator)."""
    return first17 + ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def application_body(region: str = "HK", **overrides: Any) -> dict[str, Any]:
    """A valid public application."""
    body = {
        "name": "张三",
        "phone": "13800138000",
        "id_number": "11010519491231002X",
        "region_code": region,
        "amount": "100000",
        "term_months": 12,
        "purpose": "进货周转",
        "channel": "wechat",
        "consent": True,
        "credit_authorization": True,
    }
    body.update(overrides)
    return body


@pytest.fixture
def api(client) -> Api:  # type: ignore[no-untyped-def]
    return Api(client)


def at_once(*calls: Callable[[], Any], timeout: float = 60) -> None:
    """Run the calls in threads released together (a barrier), wait for them all, and fail
    as the first failing call did (a thread's exception would otherwise only be printed)."""
    start = threading.Barrier(len(calls))
    failures: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        start.wait()
        try:
            call()
        except BaseException as exc:  # re-raised in the test's own thread below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), f"a call still ran after {timeout} s"
    if failures:
        raise failures[0]
