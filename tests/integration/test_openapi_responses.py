"""The OpenAPI document describes what the server really answers: the JSON bodies of a
whole centralized lifecycle, a committee case, a dispute, the reads around them and their
refusals are validated against the schema documented for their operation and status."""

from __future__ import annotations

import re
from typing import Any

from openapi_schema_validator import OAS30Validator

from tests.conftest import VISITED_AT, Api

_PARAMETER = re.compile(r"<(?:[^>:]+:)?([A-Za-z_]+)>")


class Checked:
    """Every JSON answer the client gets, checked against the document as it arrives."""

    def __init__(self, app, document: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
        self.document = document
        self.adapter = app.url_map.bind("localhost")
        self.checked: list[tuple[str, str, int]] = []
        self.problems: list[str] = []

    def _pointer(self, ref: str) -> dict[str, Any]:
        found: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            found = found[part]
        return found

    def check(self, method: str, path: str, response) -> None:  # type: ignore[no-untyped-def]
        if response.mimetype != "application/json":
            return
        rule, _ = self.adapter.match(path.split("?")[0], method=method, return_rule=True)
        template = _PARAMETER.sub(r"{\1}", rule.rule)
        operation = self.document["paths"].get(template, {}).get(method.lower())
        if operation is None:
            self.problems.append(f"{method} {template}: not in the document")
            return
        responses = operation["responses"]
        documented = responses.get(str(response.status_code))
        if documented is None and response.status_code >= 400:  # errors share the documented `default`
            documented = responses.get("default")
        if documented is None:
            self.problems.append(f"{method} {template} {response.status_code}: status not documented")
            return
        if "$ref" in documented:  # a shared response: #/components/responses/...
            documented = self._pointer(documented["$ref"])
        schema = documented.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            self.problems.append(f"{method} {template} {response.status_code}: no JSON schema")
            return
        # `#/components/...` resolves inside the schema validated: carry the components along.
        errors = list(
            OAS30Validator({**schema, "components": self.document["components"]}).iter_errors(response.get_json())
        )
        for error in errors[:3]:
            where = "/".join(map(str, error.absolute_path))
            self.problems.append(f"{method} {template} {response.status_code} at /{where}: {error.message[:200]}")
        self.checked.append((method, template, response.status_code))


def _checked_client(app, checked: Checked):  # type: ignore[no-untyped-def]
    client = app.test_client()
    original = client.open

    def open_(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        response = original(*args, **kwargs)
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "/")
        if path.startswith("/api/"):
            checked.check(kwargs.get("method", "GET"), path, response)
        return response

    client.open = open_  # type: ignore[method-assign]
    return client


def test_the_answers_of_a_lifecycle_and_its_refusals_are_what_the_document_says(fresh):
    from tests.integration.test_lifecycle import COMMITTEE, centralized, supervisor_decides
    from tests.integration.test_loans import png

    document = fresh.test_client().get("/api/v1/openapi.json").get_json()
    checked = Checked(fresh, document)
    api = Api(_checked_client(fresh, checked))
    client = api.client

    # A centralized application approved by the rules, with a photo, to its loan.
    no = api.submit()
    client.get(f"/api/v1/public/applications/{no}?phone=13800138000")
    client.get(f"/api/v1/public/applications/{no}?phone=13900000000")  # 404
    pool = api.task("lead_hka", no, "assign_officer", "candidate")
    form = api.get("lead_hka", f"/api/v1/tasks/{pool['id']}").get_json()["form"]
    # Only an array field says what its items are (marshmallow once filled `items` of every
    # field with the text of `dict.items`: a string, so the schema alone did not catch it).
    assert all("items" not in field for field in form["fields"]), form
    api.post("lead_hka", f"/api/v1/tasks/{pool['id']}/claim")
    api.post("lead_hka", f"/api/v1/tasks/{pool['id']}/unclaim")
    api.post("officer_hka1", f"/api/v1/tasks/{pool['id']}/complete", json={"officer_id": 1})  # 403
    api.complete("lead_hka", no, "assign_officer", {"officer_id": api.user_id("officer_hka1")}, "candidate")
    api.complete("officer_hka1", no, "onsite_visit", {"visited_at": VISITED_AT, "notes": "到访"})
    upload = api.post(
        "officer_hka1",
        f"/api/v1/applications/{no}/attachments",
        data={"file": (__import__("io").BytesIO(png()), "id.png")},
        content_type="multipart/form-data",
    )
    materials = {"customer": {"address": "海口"}, "attachments": [upload.get_json()["id"]], "notes": ""}
    collect = api.task("officer_hka1", no, "collect_materials")
    api.post("officer_hka1", f"/api/v1/tasks/{collect['id']}/complete", json={"attachments": "x"})  # 422
    api.complete("officer_hka1", no, "collect_materials", materials)
    for approver, amount in (("approver1", "100000"), ("approver2", "95000")):
        task = api.task(approver, no, "approve")
        api.get(approver, f"/api/v1/tasks/{task['id']}")
        api.approve(approver, no, "approve", amount, 12)
    api.post("approver2", f"/api/v1/tasks/{task['id']}/complete", json={"decision": "approve"})  # 409: done
    detail = api.application("gm", no)
    api.get("gm", f"/api/v1/loans/{detail['loan_id']}")
    api.get("gm", f"/api/v1/loans/{detail['loan_id']}/schedule")
    api.get("gm", f"/api/v1/process-instances/{detail['process_instance_id']}")  # 403: not an analyst
    api.get("analyst", f"/api/v1/process-instances/{detail['process_instance_id']}")
    api.get("gm", f"/api/v1/customers/{detail['customer']['id']}")
    api.get("lead_hka", "/api/v1/customers?q=张三")
    api.get("lead_hka", "/api/v1/applications")
    api.get("lead_hka", "/api/v1/tasks?scope=team&status=all")
    api.get("officer_hka1", "/api/v1/applications/NOSUCH")  # 404

    # A dispute the supervisor rejects; everyone rejecting; a committee decision.
    disputed = centralized(api, ("approve", "100000", 12), ("reject", "100000", 12))
    supervisor_decides(api, disputed, {"decision": "reject"})
    api.application("gm", disputed)
    rejected = api.submit()
    api.to_approval(rejected)
    for approver in ("approver1", "approver2"):  # a rejection gives no amount and no term
        api.complete(approver, rejected, "approve", {"decision": "reject", "comment": "经营风险高"})
    assert api.application("gm", rejected)["approvals"][0]["amount"] is None
    committee = api.submit(region="SY")
    api.to_approval(committee, lead="lead_sya", officer="officer_sya1")
    registration = api.task("lead_sya", committee, "register_committee", "candidate")
    fields = api.get("lead_sya", f"/api/v1/tasks/{registration['id']}").get_json()["form"]["fields"]
    assert [f["name"] for f in fields if "items" in f] == ["members"]  # an array's items are described
    api.complete("lead_sya", committee, "register_committee", COMMITTEE, "candidate")
    record = api.task("lead_sya", committee, "record_committee_decision", "candidate")
    api.get("lead_sya", f"/api/v1/tasks/{record['id']}")
    decided = {"decision": "approve", "amount": "80000", "term_months": 10, "minutes": "同意"}
    api.complete("lead_sya", committee, "record_committee_decision", decided, "candidate")
    api.application("lead_sya", committee)

    # Rules, processes, accounts.
    api.post("analyst", "/api/v1/decisions/loan_amount/evaluate", json={"amounts": ["100000", "80000"]})
    api.post("analyst", "/api/v1/decisions/loan_term/evaluate", json={"terms": [12, 18]})
    api.post("analyst", "/api/v1/decisions/leave_authority/evaluate", json={"days": 5})
    api.post("analyst", "/api/v1/decisions/loan_amount/evaluate", json={"amounts": []})  # 422
    api.get("analyst", "/api/v1/processes")
    client.get("/api/v1/health")
    client.post("/api/v1/auth/login", json={"username": "gm", "password": "wrong"})  # 401
    api.get("gm", "/api/v1/auth/me")
    client.get("/api/v1/tasks")  # 401

    assert not checked.problems, "\n".join(checked.problems)
    statuses = {status for _, _, status in checked.checked}
    assert {200, 201, 401, 403, 404, 409, 422} <= statuses, statuses
    assert len(checked.checked) > 60
