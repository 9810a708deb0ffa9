"""User-facing messages are Chinese by default, English on request."""


def test_errors_are_chinese_by_default(client):
    body = client.post("/api/v1/auth/login", json={"username": "gm", "password": "nope"}).get_json()
    assert body["error"]["message"] == "用户名或密码错误"


def test_errors_are_english_when_asked(client):
    body = client.post(
        "/api/v1/auth/login", json={"username": "gm", "password": "nope"}, headers={"Accept-Language": "en"}
    ).get_json()
    assert body["error"]["message"] == "Wrong username or password"
