"""The operator commands: seed-demo (never in production), create-admin, process deploy."""

from sqlalchemy import func, select

from tests.conftest import make_app


def test_seed_demo_is_refused_in_production(fresh):
    result = make_app(YDX_PRODUCTION=True).test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code != 0
    assert "refused in production" in result.output


def test_seed_demo_twice_changes_nothing(fresh):
    result = fresh.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0
    assert "already present" in result.output


def test_create_admin_makes_a_user_who_can_log_in(fresh):
    result = fresh.test_cli_runner().invoke(args=["create-admin", "root2", "--password", "s3cret-pass"])
    assert result.exit_code == 0, result.output
    login = fresh.test_client().post("/api/v1/auth/login", json={"username": "root2", "password": "s3cret-pass"})
    assert login.status_code == 200
    assert login.get_json()["user"]["roles"] == ["admin"]


def test_create_admin_refuses_a_weak_password(fresh):
    result = fresh.test_cli_runner().invoke(args=["create-admin", "root3", "--password", "12345678"])
    assert result.exit_code != 0
    assert "letters and digits" in result.output
    login = fresh.test_client().post("/api/v1/auth/login", json={"username": "root3", "password": "12345678"})
    assert login.status_code == 401


def test_process_deploy_is_idempotent(fresh):
    from app.extensions import db
    from app.models import ProcessDefinition

    result = fresh.test_cli_runner().invoke(args=["process", "deploy"])
    assert result.exit_code == 0
    assert "nothing changed" in result.output
    with fresh.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProcessDefinition)) == 4


def test_production_refuses_to_start_without_a_secret(monkeypatch):
    import pytest

    from app import create_app
    from app.config import ConfigError

    monkeypatch.setenv("YDX_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()
