"""API authentication as a client sees it: login, tokens, throttling, logout, password change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import ApiToken, Team, User
from app.models.base import utcnow
from tests.conftest import at_once, make_app

PASSWORD = "demo1234"  # noqa: S105 -- the documented demo password


def login(client, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(client, username: str, password: str = PASSWORD) -> str:  # type: ignore[no-untyped-def]
    response = login(client, username, password)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["token"]


def assert_error(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    """The api.md error format: {"error": {"code", "message", ...}}."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def test_login_returns_a_token_and_the_user(client, fresh):
    response = login(client, "lead_hka")
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body["token"], str) and len(body["token"]) > 20
    with fresh.app_context():
        user = db.session.scalar(select(User).where(User.username == "lead_hka"))
        team_id = db.session.scalar(select(Team.id).where(Team.code == "HK-A"))
        assert body["user"] == {"id": user.id, "username": "lead_hka", "roles": ["team_lead"], "team_id": team_id}


def test_wrong_password_and_unknown_user_get_the_same_401(client):
    wrong_password = assert_error(login(client, "lead_hka", "not-the-password"), 401)
    unknown_user = assert_error(login(client, "nobody_here", "not-the-password"), 401)
    assert wrong_password == unknown_user


def test_missing_credentials_are_a_validation_error_not_a_crash(client):
    error = assert_error(client.post("/api/v1/auth/login", json={"username": "lead_hka"}), 422)
    assert set(error["fields"]) == {"password"}


def test_five_failed_logins_lock_the_user_out_even_with_the_right_password(client):
    for _ in range(5):
        assert login(client, "officer_hka1", "wrong-password").status_code == 401
    response = login(client, "officer_hka1")
    assert_error(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_failed_logins_of_one_user_do_not_lock_out_another(client):
    for _ in range(5):
        login(client, "officer_hka1", "wrong-password")
    assert login(client, "officer_hka2").status_code == 200


def test_a_successful_login_resets_the_failure_count(client):
    for _ in range(4):
        login(client, "officer_hka1", "wrong-password")
    assert login(client, "officer_hka1").status_code == 200
    for _ in range(4):
        login(client, "officer_hka1", "wrong-password")
    assert login(client, "officer_hka1").status_code == 200


def test_a_token_identifies_its_user(client):
    token = token_of(client, "approver1")
    response = client.get("/api/v1/auth/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["username"] == "approver1"
    assert response.get_json()["roles"] == ["approver"]


def test_no_token_is_401(client):
    assert_error(client.get("/api/v1/auth/me"), 401)


def test_a_garbage_token_is_401(client):
    assert_error(client.get("/api/v1/auth/me", headers=bearer("garbage.not-a-token")), 401)


def test_a_token_signed_with_another_key_is_401(client):
    from itsdangerous import URLSafeSerializer

    forged = URLSafeSerializer("some-other-secret", salt="ydx-api-token").dumps("x" * 43)
    assert_error(client.get("/api/v1/auth/me", headers=bearer(forged)), 401)


def test_logout_revokes_that_token_only(client):
    first = token_of(client, "officer_hka1")
    second = token_of(client, "officer_hka1")
    assert client.post("/api/v1/auth/logout", headers=bearer(first)).status_code == 200
    assert_error(client.get("/api/v1/auth/me", headers=bearer(first)), 401)
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 200


def test_an_expired_token_is_refused(client, fresh):
    token = token_of(client, "officer_hka1")
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    with fresh.app_context():
        db.session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401)


def test_a_token_issued_with_a_past_expiry_never_works(fresh):
    short_lived = make_app(YDX_TOKEN_TTL_SECONDS=-1)
    try:
        other = short_lived.test_client()
        token = token_of(other, "officer_hka1")
        assert_error(other.get("/api/v1/auth/me", headers=bearer(token)), 401)
    finally:
        with short_lived.app_context():
            db.engine.dispose()


def test_password_change_ends_existing_tokens_and_the_new_password_works(client):
    token = token_of(client, "officer_hka1")
    other_device = token_of(client, "officer_hka1")
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a-new-secret-9"},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.get_json()
    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert_error(client.get("/api/v1/auth/me", headers=bearer(other_device)), 401)
    assert login(client, "officer_hka1", PASSWORD).status_code == 401
    fresh_token = token_of(client, "officer_hka1", "a-new-secret-9")
    assert client.get("/api/v1/auth/me", headers=bearer(fresh_token)).status_code == 200


def test_password_change_needs_the_current_password(client):
    token = token_of(client, "officer_hka1")
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-it", "new_password": "a-new-secret-9"},
        headers=bearer(token),
    )
    assert response.status_code in (401, 403, 422)
    assert_error(response, response.status_code)
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    assert login(client, "officer_hka1", PASSWORD).status_code == 200


def test_guessing_the_current_password_is_limited_like_logins(client):
    token = token_of(client, "officer_hka1")
    guess = {"current_password": "not-it", "new_password": "a-new-secret-9"}
    for _ in range(5):
        assert client.post("/api/v1/auth/password", json=guess, headers=bearer(token)).status_code == 422
    response = client.post("/api/v1/auth/password", json={**guess, "current_password": PASSWORD}, headers=bearer(token))
    assert_error(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert login(client, "officer_hka1", PASSWORD).status_code == 429  # the same secret, the same count


@pytest.mark.parametrize("new_password", ["short", PASSWORD, "12345678", "password-only", "Officer_HKA1-2026"])
def test_password_change_refuses_a_weak_or_unchanged_new_password(client, new_password):
    """Too short, unchanged, digits or letters only, or containing the user name."""
    token = token_of(client, "officer_hka1")
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=bearer(token),
    )
    assert set(assert_error(response, 422)["fields"]) == {"new_password"}
    assert client.get("/api/v1/tasks", headers=bearer(token)).status_code == 200  # nothing was ended
    assert login(client, "officer_hka1", PASSWORD).status_code == 200


def test_password_change_without_a_token_is_401(client):
    response = client.post(
        "/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "a-new-secret-9"}
    )
    assert_error(response, 401)


def test_a_deactivated_user_can_neither_log_in_nor_use_an_old_token(client, fresh):
    token = token_of(client, "officer_hka2")
    with fresh.app_context():
        db.session.execute(update(User).where(User.username == "officer_hka2").values(active=False))
        db.session.commit()
    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert_error(login(client, "officer_hka2"), 401)


def test_a_deactivation_through_the_orm_ends_a_cached_token_at_once(client, fresh):
    token = token_of(client, "officer_hka2")
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200  # now cached
    with fresh.app_context():
        user = db.session.scalar(select(User).where(User.username == "officer_hka2"))
        user.active = False
        db.session.commit()
    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401)


def test_a_revocation_by_another_process_applies_within_the_token_cache_time(client, fresh, monkeypatch):
    """Another server process revoking the row is not seen through this process's session
    events: the cached token stays good for at most YDX_TOKEN_CACHE_SECONDS."""
    import time

    monkeypatch.setitem(fresh.config, "YDX_TOKEN_CACHE_SECONDS", 0.5)
    token = token_of(client, "officer_hka1")
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    with fresh.app_context(), db.engine.begin() as conn:  # not through the session: as another process would
        conn.execute(update(ApiToken).values(revoked_at=utcnow()))
    time.sleep(0.6)
    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401)


def test_without_the_token_cache_every_request_checks_the_row(client, fresh, monkeypatch):
    monkeypatch.setitem(fresh.config, "YDX_TOKEN_CACHE_SECONDS", 0)
    token = token_of(client, "officer_hka1")
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    with fresh.app_context(), db.engine.begin() as conn:
        conn.execute(update(ApiToken).values(revoked_at=utcnow()))
    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401)


def test_token_rows_that_ended_over_a_day_ago_are_deleted_by_the_periodic_job(client, fresh):
    """Every API and console login adds a row; ended ones do not pile up."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from app.extensions import db
    from app.models import ApiToken
    from app.models.base import utcnow
    from app.scheduler import run_periodic_jobs

    tokens = [
        client.post("/api/v1/auth/login", json={"username": "gm", "password": "demo1234"}).get_json()["token"]
        for _ in range(3)
    ]
    with fresh.app_context():
        ids = db.session.scalars(select(ApiToken.id).order_by(ApiToken.created_at)).all()[-3:]
        db.session.execute(
            update(ApiToken).where(ApiToken.id == ids[0]).values(expires_at=utcnow() - timedelta(days=2))
        )
        db.session.execute(
            update(ApiToken).where(ApiToken.id == ids[1]).values(revoked_at=utcnow() - timedelta(days=2))
        )
        db.session.commit()
        assert run_periodic_jobs()["tokens_removed"] == 2
        assert db.session.scalars(select(ApiToken.id).where(ApiToken.id.in_(ids))).all() == [ids[2]]
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens[2]}"}).status_code == 200


def test_a_login_checked_just_before_a_password_change_gets_a_token_the_change_ends(fresh, monkeypatch):
    """The login checked the old password, the change revoked every token it found, then
    the login stored its token: it outlived the change (for its whole lifetime). The login
    now holds the user row until its token is stored, so the change revokes it too."""
    import threading
    import time

    from app.auth import services

    checked, real_issue = threading.Event(), services.issue_token

    def issue_slowly(user):  # type: ignore[no-untyped-def]
        checked.set()
        time.sleep(0.5)  # the password change arrives now
        return real_issue(user)

    token = token_of(fresh.test_client(), "officer_hka1")
    monkeypatch.setattr(services, "issue_token", issue_slowly)
    late: list[str] = []
    racing = threading.Thread(
        target=lambda: late.append(login(fresh.test_client(), "officer_hka1").get_json()["token"])
    )
    racing.start()
    assert checked.wait(10)
    changed = fresh.test_client().post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a-new-secret-9"},
        headers=bearer(token),
    )
    racing.join(30)
    monkeypatch.undo()
    assert changed.status_code == 200, changed.get_json()
    assert_error(fresh.test_client().get("/api/v1/auth/me", headers=bearer(late[0])), 401)


def test_of_two_password_changes_sent_at_once_one_is_made_and_the_other_refused(fresh, monkeypatch):
    """Both checked the same current password and both answered 200, but only the last
    write counted: the other user was told of a password that does not work."""
    import threading

    from app.auth import services

    token = token_of(fresh.test_client(), "officer_hka1")
    both_checked, real_hash = threading.Barrier(2), services.hash_password

    def hash_when_both_checked(password: str) -> str:
        try:
            both_checked.wait(timeout=1)  # (with the row held, the second never gets here first)
        except threading.BrokenBarrierError:
            pass
        return real_hash(password)

    monkeypatch.setattr(services, "hash_password", hash_when_both_checked)
    statuses: dict[str, int] = {}

    def change(new: str) -> None:
        body = {"current_password": PASSWORD, "new_password": new}
        statuses[new] = fresh.test_client().post("/api/v1/auth/password", json=body, headers=bearer(token)).status_code

    at_once(lambda: change("first-secret-1"), lambda: change("second-secret-2"))
    monkeypatch.undo()
    # the other is refused: its current password is no longer the password (422), or its
    # token was revoked by the change before it was checked (401)
    assert sorted(statuses.values()) in ([200, 401], [200, 422]), statuses
    made = next(new for new, status in statuses.items() if status == 200)
    assert login(fresh.test_client(), "officer_hka1", made).status_code == 200
