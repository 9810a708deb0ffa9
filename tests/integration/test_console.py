"""The management web console (C3): session login guarded by CSRF, and the inbox."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog
from app.models.base import BEIJING
from tests.conftest import Api

CSRF_FIELD = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


def csrf_token(client) -> str:  # type: ignore[no-untyped-def]
    """The token the login form carries for this browser session."""
    page = client.get("/login").get_data(as_text=True)
    match = CSRF_FIELD.search(page)
    assert match, page
    return match.group(1)


def console_login(client, username: str = "lead_hka", password: str = "demo1234"):  # type: ignore[no-untyped-def]  # noqa: S107
    token = csrf_token(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_the_login_page_is_a_form_with_a_csrf_token(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<form" in page and 'name="username"' in page and 'name="password"' in page
    assert len(CSRF_FIELD.search(page).group(1)) >= 32


def test_a_login_post_without_the_csrf_token_is_refused(client):
    client.get("/login")
    response = client.post("/login", data={"username": "lead_hka", "password": "demo1234"})
    assert response.status_code == 403
    assert response.mimetype == "text/html"  # a page, even for a client that accepts anything
    assert client.get("/inbox").status_code == 302


def test_a_login_post_with_another_sessions_token_is_refused(fresh):
    stolen = csrf_token(fresh.test_client())
    victim = fresh.test_client()
    victim.get("/login")
    response = victim.post("/login", data={"username": "lead_hka", "password": "demo1234", "csrf_token": stolen})
    assert response.status_code == 403


def test_logging_in_leads_to_the_inbox(client):
    response = console_login(client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/inbox")


def test_a_wrong_password_shows_the_form_again_with_an_error(client):
    response = console_login(client, password="wrong-password")  # noqa: S106
    assert response.status_code == 401
    assert 'name="csrf_token"' in response.get_data(as_text=True)
    assert client.get("/inbox").status_code == 302


def test_the_inbox_lists_the_users_tasks(client, api):
    number = api.submit()
    console_login(client)
    response = client.get("/inbox")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert number in page
    assert "分配客户经理" in page


def test_the_inbox_does_not_list_other_teams_tasks(client, api):
    number = api.submit("SY")
    console_login(client, "lead_hka")
    assert number not in client.get("/inbox").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/inbox", "/applications", "/"])
def test_console_pages_without_a_session_redirect_to_login(client, path):
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    if path == "/":
        location = client.get(location).headers["Location"]
    assert "/login" in location


def session_task(client, number: str) -> int:  # type: ignore[no-untyped-def]
    """The candidate task of `number` as the logged-in console user sees it."""
    items = client.get("/api/v1/tasks?scope=candidate").get_json()["items"]
    return next(t["id"] for t in items if t["application_no"] == number)


def test_an_api_write_with_only_the_session_cookie_needs_the_csrf_header(client, fresh):
    number = Api(fresh.test_client()).submit()
    console_login(client)
    task_id = session_task(client, number)
    response = client.post(f"/api/v1/tasks/{task_id}/claim")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"]
    assert session_task(client, number) == task_id


def test_an_api_write_with_the_session_and_its_csrf_header_is_accepted(client, fresh):
    number = Api(fresh.test_client()).submit()
    console_login(client)
    token = csrf_token(client)
    response = client.post(f"/api/v1/tasks/{session_task(client, number)}/claim", headers={"X-CSRF-Token": token})
    assert response.status_code == 200, response.get_json()


def test_logout_ends_the_console_session(client):
    console_login(client)
    token = csrf_token(client)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/inbox").status_code == 302


def test_a_lead_assigns_an_officer_from_the_console(fresh, api):
    client = fresh.test_client()  # the browser; `api` is another client
    no = api.submit()
    page = client.get("/login")
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": "lead_hka", "password": "demo1234", "csrf_token": token})
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    shown = client.get(f"/tasks/{task['id']}")
    assert shown.status_code == 200 and "分配客户经理" in shown.get_data(as_text=True)
    token = CSRF_FIELD.search(shown.get_data(as_text=True)).group(1)  # a login issues a new one
    wrong = client.post(f"/tasks/{task['id']}", data={"csrf_token": token, "officer_id": "999"})
    assert wrong.status_code == 422 and "客户经理" in wrong.get_data(as_text=True)
    officer = str(api.user_id("officer_hka1"))
    done = client.post(f"/tasks/{task['id']}", data={"csrf_token": token, "officer_id": officer})
    assert done.status_code == 302
    assert api.task("officer_hka1", no, "onsite_visit")["task_key"] == "onsite_visit"


def test_a_bearer_token_decides_who_calls_even_beside_a_console_session_cookie(client, api):
    """A browser logged in to the console that also sends a bearer token (a script, the
    officers' app on the same origin) acts as the token's user, needs no CSRF token for
    its writes, and an invalid token is a 401 rather than the console's user; the cookie
    alone still means the console's user, whose API writes need the CSRF token."""
    console_login(client, "lead_hka")
    gm_token = api.client.post("/api/v1/auth/login", json={"username": "gm", "password": "demo1234"}).get_json()[
        "token"
    ]
    bearer = {"Authorization": f"Bearer {gm_token}"}
    assert client.get("/api/v1/auth/me", headers=bearer).get_json()["username"] == "gm"
    assert client.get("/api/v1/auth/me").get_json()["username"] == "lead_hka"
    bad = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    written = client.post("/api/v1/auth/logout", headers=bearer)  # a write with the token: no CSRF
    assert written.status_code == 200, written.get_json()
    refused = client.post("/api/v1/auth/logout")  # the cookie's user writing without the CSRF token
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"


def test_the_public_form_takes_a_submission_from_a_browser_logged_in_to_the_console(client, api):
    """api.md: the customer endpoints need no login; a staff member's console session in
    the same browser must not make them demand a CSRF token."""
    from tests.conftest import application_body

    console_login(client, "officer_hka1")
    response = client.post("/api/v1/public/applications", json=application_body())
    assert response.status_code == 201, response.get_json()


def test_logging_out_of_the_console_ends_the_session_for_every_copy_of_its_cookie(fresh, client):
    console_login(client, "lead_hka")
    name = fresh.config["SESSION_COOKIE_NAME"]
    copy = fresh.test_client()
    copy.set_cookie(name, client.get_cookie(name).value)  # the same session cookie in another browser
    assert copy.get("/inbox").status_code == 200
    token = csrf_token(client)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    after = copy.get("/inbox")
    assert after.status_code == 302 and "/login" in after.headers["Location"]
    assert copy.get("/api/v1/auth/me").status_code == 401


def test_the_team_pool_pages_through_every_task_and_shows_beijing_time(fresh, api):
    from sqlalchemy import select

    from app.extensions import db
    from app.models import HumanTask
    from app.web import routes

    numbers = [api.submit(region="HK") for _ in range(3)]
    client = fresh.test_client()
    console_login(client)
    page_size = routes.INBOX_PAGE
    routes.INBOX_PAGE = 2
    try:
        first = client.get("/inbox").get_data(as_text=True)
        second = client.get("/inbox?team=2").get_data(as_text=True)
    finally:
        routes.INBOX_PAGE = page_size
    assert "第 1 / 2 页" in first and "下一页" in first
    assert "第 2 / 2 页" in second and "上一页" in second
    shown = {no for no in numbers if no in first.split("团队任务池")[1]} | {
        no for no in numbers if no in second.split("团队任务池")[1]
    }
    assert shown == set(numbers)
    with fresh.app_context():
        created = db.session.scalar(select(HumanTask.created_at).where(HumanTask.application_no == numbers[0]))
    assert routes.beijing(created) in first + second  # stored in UTC, shown at +08:00
    assert created.astimezone(routes.BEIJING).hour == int(routes.beijing(created)[11:13])


def test_the_inbox_page_links_carry_only_its_paging_whatever_the_query_holds(fresh, api):
    """The page links were built from the whole query: `?endpoint=x` was a 500 (url_for's
    own argument twice) and `?_external=1` made them absolute from the Host header."""
    from app.web import routes

    for _ in range(3):
        api.submit(region="HK")
    client = fresh.test_client()
    console_login(client)
    page_size = routes.INBOX_PAGE
    routes.INBOX_PAGE = 2
    try:
        pages = [client.get(f"/inbox?{query}") for query in ("endpoint=x", "_method=POST", "_external=1&_anchor=x")]
    finally:
        routes.INBOX_PAGE = page_size
    assert [page.status_code for page in pages] == [200, 200, 200]
    for page in pages:
        links = re.findall(r'href="(/inbox\?mine=[^"]*)"', page.get_data(as_text=True))  # the page links
        assert links and all(re.fullmatch(r"/inbox\?mine=\d+&amp;candidate=\d+&amp;team=\d+", link) for link in links)


def test_every_page_tells_the_browser_not_to_frame_sniff_or_cache_it(fresh, client, api):
    console_login(client)
    page = client.get("/inbox")
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src" not in policy and "default-src 'none'" in policy
    assert (page.headers["X-Frame-Options"], page.headers["X-Content-Type-Options"]) == ("DENY", "nosniff")
    answer = api.get("lead_hka", "/api/v1/tasks?scope=team")
    assert answer.headers["Cache-Control"] == "no-store" and "sandbox" in answer.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in answer.headers  # only in production (HTTPS there)
    from tests.conftest import make_app

    docs = client.get("/api/docs")  # Swagger UI from its pinned CDN address: only framing refused
    assert docs.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    production = make_app(YDX_PRODUCTION=True).test_client()
    assert production.get("/api/v1/health").headers["Strict-Transport-Security"] == "max-age=31536000"


def test_the_console_offers_the_teams_officers_by_name(client, api):
    no = api.submit(region="HK")
    task = api.task("lead_hka", no, "assign_officer", "candidate")
    console_login(client)
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert f'<option value="{api.user_id("officer_hka1")}"' in page
    assert "(officer_hka1)" in page


@pytest.mark.parametrize(
    ("method", "path", "status"), [("DELETE", "/inbox", 405), ("POST", "/nope", 404), ("PUT", "/login", 405)]
)
def test_unknown_console_paths_and_methods_are_404_and_405_not_csrf_refusals(client, method, path, status):
    console_login(client)
    response = client.open(path, method=method)
    assert response.status_code == status


def test_a_form_posted_for_a_task_already_done_shows_the_reason_as_a_sentence(client, fresh):
    api = Api(fresh.test_client())
    number = api.submit()
    console_login(client)
    task_id = session_task(client, number)
    officer = api.user_id("officer_hka1")
    token = csrf_token(client)
    assert client.post(f"/tasks/{task_id}", data={"action": "claim", "csrf_token": token}).status_code == 302
    assert client.post(f"/tasks/{task_id}", data={"officer_id": officer, "csrf_token": token}).status_code == 302
    again = client.post(f"/tasks/{task_id}", data={"officer_id": officer, "csrf_token": token})
    page = again.get_data(as_text=True)
    assert again.status_code == 409  # as the API answers
    assert "任务已结束" in page and "_：" not in page


def test_the_supervisor_s_page_shows_the_approvers_answers_and_this_application_s_applicant(fresh, client):
    """The supervisor decides on a dispute from the console: the page shows each
    approver's answer by name, says what is to be decided in words, names the candidate
    role as staff know it, and shows the contact details given with this application
    (not those of an earlier application of the same customer)."""
    from tests.integration.test_lifecycle import centralized

    api = Api(fresh.test_client())
    api.submit(name="张三", phone="13500000001")  # the customer record keeps this first contact
    no = centralized(api, ("approve", "100000", 12), ("reject", "100000", 12))  # same customer, new phone
    # (`centralized` submits the default body: 张三, 13800138000)
    task = api.task("supervisor", no, "supervisor_decide", "candidate")
    console_login(client, "supervisor")
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert "审批意见" in page and "同意" in page and "拒绝" in page
    with fresh.app_context():
        from sqlalchemy import select

        from app.extensions import db
        from app.models import User

        names = db.session.scalars(select(User.display_name).where(User.username.in_(["approver1", "approver2"])))
        assert all(name in page for name in names)
    assert "审批意见分歧" in page and "amount" not in page.split("审批意见分歧")[1].split("</p>")[0]
    assert "候选角色 主管审批人员" in page
    assert "138****8000" in page or "13800138000" in page
    assert "13500000001" not in page and "135****0001" not in page


def test_a_new_login_in_the_same_browser_ends_the_previous_session(fresh, client):
    """A shared counter PC: the next login replaces the session — the earlier user's cookie
    (and any copy) stops working and the CSRF token is a new one."""
    name = fresh.config["SESSION_COOKIE_NAME"]
    console_login(client, "approver2")
    before = csrf_token(client)
    earlier = fresh.test_client()
    earlier.set_cookie(name, client.get_cookie(name).value)
    assert earlier.get("/api/v1/auth/me").get_json()["username"] == "approver2"
    console_login(client, "approver3")
    assert client.get("/api/v1/auth/me").get_json()["username"] == "approver3"
    assert earlier.get("/api/v1/auth/me").status_code == 401
    assert csrf_token(client) != before


def _collection_in_the_console(fresh, client):  # type: ignore[no-untyped-def]
    """An application at collect_materials, its officer logged in to the console."""
    from tests.conftest import VISITED_AT

    api = Api(fresh.test_client())
    no = api.submit()
    api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_AT, "notes": ""})
    console_login(client, "officer_hka1")
    return api, api.task("officer_hka1", no, "collect_materials")


def test_a_refused_part_of_an_object_is_shown_with_its_path_and_reason(fresh, client):
    """The console turns nested field messages into sentences (`customer · id_number`)."""
    from tests.conftest import resident_id

    _api, task = _collection_in_the_console(fresh, client)
    token = csrf_token(client)
    other = resident_id("46010019800101124")
    refused = client.post(f"/tasks/{task['id']}", data={"csrf_token": token, "customer": f'{{"id_number": "{other}"}}'})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "客户信息（JSON） · id_number：与申请人的身份证号不一致" in page, page


def test_customer_details_with_a_repeated_key_are_refused_as_in_the_api(fresh, client):
    api, task = _collection_in_the_console(fresh, client)
    details = '{"occupation": "个体户", "occupation": "教师"}'
    refused = client.post(f"/tasks/{task['id']}", data={"csrf_token": csrf_token(client), "customer": details})
    assert refused.status_code == 422
    assert api.get("officer_hka1", f"/api/v1/tasks/{task['id']}").get_json()["status"] == "open"


def test_an_officer_collects_materials_entirely_from_the_console(fresh, client):
    """Upload a photo on the collection page, see it listed with its number and a download
    link, refer to it in the form; a list item's error names the item from 1."""
    from io import BytesIO

    from tests.conftest import VISITED_AT
    from tests.integration.test_loans import png

    api = Api(fresh.test_client())
    no = api.submit()
    api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_AT, "notes": "店铺正常"})
    task = api.task("officer_hka1", no, "collect_materials")
    console_login(client, "officer_hka1")
    token = csrf_token(client)
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and "店铺正常" in page  # the upload form, the visit
    uploaded = client.post(
        f"/tasks/{task['id']}/attachments",
        data={"csrf_token": token, "file": (BytesIO(png()), "营业执照.png")},
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 302
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    (attachment,) = api.application("officer_hka1", no)["attachments"]
    assert "营业执照.png" in page and f"/attachments/{attachment['id']}" in page
    download = client.get(f"/api/v1/applications/{no}/attachments/{attachment['id']}")  # with the console's cookie
    assert download.status_code == 200 and download.get_data() == png()
    download.close()
    two = client.post(
        f"/tasks/{task['id']}/attachments",
        data={"csrf_token": token, "file": [(BytesIO(png()), "a.png"), (BytesIO(png()), "b.png")]},
        content_type="multipart/form-data",
    )
    assert two.status_code == 422 and "一次只能上传一个" in two.get_data(as_text=True)  # as the API answers
    refused = client.post(f"/tasks/{task['id']}", data={"csrf_token": token, "attachments": "x"})
    assert refused.status_code == 422 and "第 1 项" in refused.get_data(as_text=True)
    done = client.post(f"/tasks/{task['id']}", data={"csrf_token": token, "attachments": str(attachment["id"])})
    assert done.status_code == 302
    assert api.application("gm", no)["materials"]["attachments"] == [attachment["id"]]


def test_committee_members_typed_with_the_chinese_list_mark_are_three_members(fresh, client):
    from tests.integration.test_lifecycle import MEETING_AT

    api = Api(fresh.test_client())
    no = api.submit(region="SY")
    api.to_approval(no, lead="lead_sya", officer="officer_sya1")
    task = api.task("lead_sya", no, "register_committee", "candidate")
    console_login(client, "lead_sya")
    inbox = client.get("/inbox").get_data(as_text=True)
    assert "团队主管" in inbox and ">team_lead<" not in inbox  # the candidate role by name
    form = {"csrf_token": csrf_token(client), "meeting_at": MEETING_AT, "members": "王委员、李委员；赵委员"}
    assert client.post(f"/tasks/{task['id']}", data=form).status_code == 302
    assert api.application("lead_sya", no)["committee"]["meeting"]["members"] == ["王委员", "李委员", "赵委员"]
    record = api.task("lead_sya", no, "record_committee_decision", "candidate")
    page = client.get(f"/tasks/{record['id']}").get_data(as_text=True)
    assert "王委员、李委员、赵委员" in page and "金额按整元向下取整" in page  # the meeting, the rounding


CJK = re.compile("[\u4e00-\u9fff]")


def test_the_console_speaks_english_when_asked_and_remembers_it(fresh, client):
    """`?lang=en` on any console page switches the console to English for the session,
    through the login; `?lang=zh_CN` switches back. Only data (people's names, the
    applicant's masked name) and the link back to 中文 stay Chinese."""
    from tests.conftest import VISITED_AT

    login_page = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in login_page and "User name" in login_page and "Log in" in login_page
    assert CJK.findall(login_page.replace("中文", "")) == []
    console_login(client, "officer_hka1")
    inbox = client.get("/inbox").get_data(as_text=True)
    assert "My tasks" in inbox and "To claim" in inbox and "Log out" in inbox

    api = Api(fresh.test_client())
    no = api.submit()
    api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_AT, "notes": ""})
    task = api.task("officer_hka1", no, "collect_materials")
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    for text in ("Collect and upload materials", "Application no.", "Customer details (JSON)", "Submit", "Upload"):
        assert text in page, text
    refused = client.post(f"/tasks/{task['id']}", data={"csrf_token": csrf_token(client), "attachments": "x"})
    assert refused.status_code == 422
    assert "Attachment numbers (separated by commas)" in refused.get_data(as_text=True)

    assert "我的任务" in client.get("/inbox?lang=zh_CN").get_data(as_text=True)
    assert "我的任务" in client.get("/inbox").get_data(as_text=True)


def test_an_approver_reads_the_decision_choices_in_english(fresh, client):
    api = Api(fresh.test_client())
    no = api.submit()
    api.to_approval(no)
    client.get("/login?lang=en")
    console_login(client, "approver1")
    page = client.get(f"/tasks/{api.task('approver1', no, 'approve')['id']}").get_data(as_text=True)
    assert ">Approve</option>" in page and ">Reject</option>" in page
    assert "<th>Stage</th><td>Approval</td>" in page  # the stage, not the task's name


def test_console_pages_are_not_kept_by_the_browser(client):
    console_login(client, "lead_hka")
    for path in ("/inbox", "/applications", "/login"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_the_language_link_after_a_refused_upload_leads_to_the_task_page(fresh, client):
    from io import BytesIO

    _api, task = _collection_in_the_console(fresh, client)
    refused = client.post(
        f"/tasks/{task['id']}/attachments",
        data={"csrf_token": csrf_token(client), "file": (BytesIO(b"not a photo"), "a.txt")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert f'href="/tasks/{task["id"]}?lang=en"' in page
    assert client.get(f"/tasks/{task['id']}?lang=en").status_code == 200
    assert "(" not in re.search(r'<div class="error">(.*?)</div>', page, re.S).group(1)  # Chinese alone


def test_a_wrong_password_keeps_the_user_name_and_speaks_one_language(client):
    token = csrf_token(client)
    page = client.post("/login", data={"username": "lead_hka", "password": "nope", "csrf_token": token})
    text = page.get_data(as_text=True)
    assert 'value="lead_hka"' in text
    assert "用户名或密码错误" in text and "Wrong" not in text


def test_an_error_page_keeps_the_menu_for_a_logged_in_user(client):
    console_login(client, "lead_hka")
    page = client.get("/tasks/987654").get_data(as_text=True)
    assert 'action="/logout"' in page and 'href="/inbox"' in page


def test_times_registered_in_forms_read_like_every_other_time_on_the_page(fresh, client):
    from tests.conftest import VISITED_AT

    _api, task = _collection_in_the_console(fresh, client)
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    shown = datetime.fromisoformat(VISITED_AT).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    assert f'<td colspan="3">{shown} ' in page
    assert VISITED_AT not in page


def test_whoever_completed_a_task_sees_what_they_submitted(fresh, client):
    api = Api(fresh.test_client())
    no = api.submit()
    api.to_approval(no)
    console_login(client, "approver1")
    task = api.task("approver1", no, "approve")
    form = {"csrf_token": csrf_token(client), "decision": "approve", "amount": "95000", "term_months": "12"}
    assert client.post(f"/tasks/{task['id']}", data=form).status_code == 302
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert "你提交的内容" in page and "<td>同意</td>" in page and "<td>95000.00</td>" in page
    other = fresh.test_client()
    console_login(other, "lead_hka")  # sees the task, but the answer is shown among the approvals only
    assert "你提交的内容" not in other.get(f"/tasks/{task['id']}").get_data(as_text=True)


def test_an_application_page_shows_history_answers_decision_and_loan_to_those_who_may_see_them(fresh, client):
    from tests.integration.test_lifecycle import centralized

    api = Api(fresh.test_client())
    no = centralized(api, ("approve", "100000", 12), ("approve", "95000", 12))
    console_login(client, "lead_hka")
    listing = client.get("/applications").get_data(as_text=True)
    assert f'href="/applications/{no}"' in listing
    page = client.get(f"/applications/{no}").get_data(as_text=True)
    for text in ("办理经过", "审批意见", "决定", "95000.00", "贷款", "海口经理一"):
        assert text in page, text
    assert "*" in page  # the applicant masked, as everywhere by default
    english = client.get(f"/applications/{no}?lang=en").get_data(as_text=True)
    for text in ("History", "Approvers' answers", "Decision", "Approved", "Loan", "Annualized rate"):
        assert text in english, text
    client.get("/inbox?lang=zh_CN")

    officer = fresh.test_client()
    console_login(officer, "officer_hka1")
    seen = officer.get(f"/applications/{no}").get_data(as_text=True)
    assert "办理经过" in seen and "<h3>决定</h3>" not in seen  # F6: not the centralized decision

    other = fresh.test_client()
    console_login(other, "lead_sya")
    assert other.get(f"/applications/{no}").status_code == 404


def test_the_language_link_keeps_the_page_s_paging_and_nothing_that_could_steer_it(client):
    console_login(client, "lead_hka")
    page = client.get("/inbox?mine=1&task_id=7&_external=1&_scheme=javascript&endpoint=x")
    assert page.status_code == 200
    link = re.search(r'<a href="([^"]*)" lang="en">English</a>', page.get_data(as_text=True)).group(1)
    assert link.startswith("/inbox?") and "mine=1" in link and "lang=en" in link
    assert "javascript" not in link and "_external" not in link
    assert client.get("/tasks/987654?task_id=7").status_code == 404  # not a 500 from the link's url_for


def test_a_role_granted_full_customer_details_reveals_them_on_the_application_page_and_is_audited(fresh, client):
    from tests.integration.test_lifecycle import centralized

    api = Api(fresh.test_client())
    no = centralized(api, ("approve", "100000", 12), ("approve", "95000", 12))
    console_login(client, "gm")
    masked = client.get(f"/applications/{no}").get_data(as_text=True)
    assert "张三" not in masked and "张*" in masked
    assert f'href="/applications/{no}?full=1"' in masked
    full = client.get(f"/applications/{no}?full=1").get_data(as_text=True)
    assert "张三" in full and f'href="/applications/{no}"' in full  # and the way back to the masked page
    with fresh.app_context():
        viewed = db.session.scalars(select(AuditLog).where(AuditLog.action == "customer.view_full")).all()
    assert [entry.actor_id for entry in viewed] and all(entry.outcome == "ok" for entry in viewed)

    lead = fresh.test_client()
    console_login(lead, "lead_hka")
    assert "?full=1" not in lead.get(f"/applications/{no}").get_data(as_text=True)
    refused = lead.get(f"/applications/{no}?full=1")
    assert refused.status_code == 403 and "张三" not in refused.get_data(as_text=True)
