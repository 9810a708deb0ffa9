"""What the JSON answers of the routes that build their bodies by hand look like, for the
OpenAPI document only (`blp.alt_response(..., success=True)` documents without dumping:
these views answer dicts they already shaped, and the inbox's hot paths stay as they are).

Money is a decimal string, times ISO-8601 with offset (api.md conventions).
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields

from app.schemas import PageFields


class _Doc(Schema):
    """Documentation only: an answer may carry keys beyond those listed (the OpenAPI
    document says `additionalProperties: true`), as answers grow compatibly."""

    class Meta:
        unknown = INCLUDE


MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"  # yuan with the fen: "95000.00"


def _money(description: str | None = None, **kwargs: object) -> fields.String:
    metadata = {"format": "decimal", "pattern": MONEY_PATTERN, "example": "95000.00"}
    if description:
        metadata["description"] = description
    return fields.String(metadata=metadata, **kwargs)  # type: ignore[arg-type]


def _time(**kwargs: object) -> fields.String:
    return fields.String(metadata={"format": "date-time"}, **kwargs)  # type: ignore[arg-type]


class HealthDoc(_Doc):
    status = fields.String(metadata={"description": "ok | degraded (503)"})
    checks = fields.Dict(keys=fields.String(), values=fields.String())
    mode = fields.String(metadata={"description": "the database in use: postgresql | sqlite"})


class UserDoc(_Doc):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    team_id = fields.Integer(allow_none=True, required=True)


class LoginDoc(_Doc):
    token = fields.String(metadata={"description": "send as Authorization: Bearer <token>"}, required=True)
    user = fields.Nested(UserDoc, required=True)


class StatusDoc(_Doc):
    status = fields.String()


class ApplicationItemDoc(_Doc):
    application_no = fields.String(required=True)
    stage = fields.String(
        required=True,
        metadata={"description": "pending_assignment | onsite_visit | collecting | approval | disbursement | rejected"},
    )
    amount = _money()
    term_months = fields.Integer()
    team_id = fields.Integer()
    officer_id = fields.Integer(allow_none=True)
    created_at = _time()
    updated_at = _time()


class ApplicationPageDoc(_Doc, PageFields):
    items = fields.List(fields.Nested(ApplicationItemDoc), required=True)


class StageDoc(_Doc):
    stage = fields.String(required=True)
    actor_id = fields.Integer(allow_none=True, required=True)
    at = _time(required=True)


class ApprovalDoc(_Doc):
    approver_id = fields.Integer(required=True)
    decision = fields.String(metadata={"description": "approve | reject"}, required=True)
    amount = _money("null on a rejection", allow_none=True)
    term_months = fields.Integer(allow_none=True, metadata={"description": "null on a rejection"})
    comment = fields.String()
    answered_at = _time()


class DecisionDoc(_Doc):
    outcome = fields.String(required=True, metadata={"description": "approved | rejected"})
    final_amount = _money(allow_none=True, required=True)
    final_term = fields.Integer(allow_none=True, required=True)
    amount_strategy = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "lowest | median | escalate (rules), supervisor, committee"},
    )
    term_strategy = fields.String(
        allow_none=True, required=True, metadata={"description": "median | escalate, supervisor, committee"}
    )


class MaskedPersonDoc(_Doc):
    name = fields.String()
    phone = fields.String()
    masked = fields.Boolean()


class CustomerDoc(MaskedPersonDoc):
    id = fields.Integer()
    id_number = fields.String()
    region_id = fields.Integer()


class AttachmentDoc(_Doc):
    id = fields.Integer(required=True)
    sha256 = fields.String()
    content_type = fields.String(required=True)
    size = fields.Integer(required=True)
    filename = fields.String()


class ListedAttachmentDoc(AttachmentDoc):
    uploaded_by_id = fields.Integer(required=True)
    uploaded_at = _time()


class ApplicationDetailDoc(ApplicationItemDoc):
    region_id = fields.Integer()
    product_code = fields.String()
    purpose = fields.String()
    channel = fields.String()
    approval_mode = fields.String(metadata={"description": "centralized | committee"})
    history = fields.List(fields.Nested(StageDoc), required=True)
    approvals = fields.List(fields.Nested(ApprovalDoc), required=True)
    decision = fields.Nested(
        DecisionDoc,
        allow_none=True,
        metadata={"description": "only for the roles allowed to see it (F6); null until decided"},
    )
    credit_report = fields.Dict(allow_none=True, required=True)
    committee = fields.Dict(allow_none=True)
    customer = fields.Nested(CustomerDoc)
    applicant = fields.Nested(MaskedPersonDoc, metadata={"description": "contact given with this application"})
    visit = fields.Dict(allow_none=True)
    materials = fields.Dict(allow_none=True)
    attachments = fields.List(fields.Nested(ListedAttachmentDoc))
    process_instance_id = fields.Integer(allow_none=True)
    loan_id = fields.Integer(allow_none=True, required=True)


class CustomerPageDoc(_Doc, PageFields):
    items = fields.List(fields.Nested(CustomerDoc), required=True)


class CustomerApplicationDoc(_Doc):
    application_no = fields.String()
    stage = fields.String()
    amount = _money()


class CustomerDetailDoc(CustomerDoc):
    profile = fields.Dict(metadata={"description": "details registered on site, masked like the customer"})
    applications = fields.List(fields.Nested(CustomerApplicationDoc))


class LoanDoc(_Doc):
    id = fields.Integer()
    principal = _money(required=True)
    annual_rate = fields.String(
        metadata={"format": "decimal", "description": "a fraction: 0.12 is 12 %"}, required=True
    )
    method = fields.String(
        metadata={"description": "equal_installment | equal_principal | interest_first"}, required=True
    )
    fee = _money(required=True)
    term_months = fields.Integer(required=True)
    start_date = fields.Date(required=True)
    apr = fields.String(
        metadata={"format": "decimal", "description": "annualized rate (IRR) in percent"}, required=True
    )
    core_status = fields.String()


class InstallmentDoc(_Doc):
    seq = fields.Integer(required=True)
    due_date = fields.Date(required=True)
    principal = _money(required=True)
    interest = _money(required=True)
    payment = _money(required=True)
    balance = _money(required=True)


class VersionDoc(_Doc):
    kind = fields.String(metadata={"description": "process | decision"})
    key = fields.String()
    version = fields.Integer()
    name = fields.String(allow_none=True)
    checksum = fields.String()
    file_name = fields.String()
    bound_decisions = fields.Dict(keys=fields.String(), values=fields.Integer())
    deployed_by_id = fields.Integer(allow_none=True)
    deployed_at = _time()


class VersionPageDoc(_Doc, PageFields):
    items = fields.List(fields.Nested(VersionDoc), required=True)


class CurrentVersionDoc(VersionDoc):
    new = fields.Boolean(required=True, metadata={"description": "made by this deployment"})


class DeploymentDoc(_Doc):
    created = fields.List(fields.Nested(VersionDoc), required=True, metadata={"description": "the new versions"})
    unchanged = fields.Boolean(
        required=True, metadata={"description": "true when every file equals its newest version"}
    )
    versions = fields.List(
        fields.Nested(CurrentVersionDoc),
        required=True,
        metadata={
            "description": "the version now current of every process and decision the files define, and of"
            " every process a changed decision re-versioned"
        },
    )


class EvaluationDoc(_Doc):
    decision_id = fields.String(required=True)
    version = fields.Integer(required=True)
    outputs = fields.Dict(metadata={"example": {"strategy": "lowest", "final_amount": "95000.00"}}, required=True)


class InstanceTaskDoc(_Doc):
    id = fields.Integer()
    task_key = fields.String()


class CurrentTaskDoc(InstanceTaskDoc):
    assignee_id = fields.Integer(allow_none=True)
    candidate_role = fields.String(allow_none=True)


class CompletedTaskDoc(InstanceTaskDoc):
    completed_at = _time()
    completed_by_id = fields.Integer(allow_none=True)


class IncidentDoc(_Doc):
    at = _time()
    task_id = fields.Integer(metadata={"description": "the open inbox task whose action failed"})
    element = fields.String(metadata={"description": "the BPMN element that failed"})
    reason = fields.String()
    actor_id = fields.Integer(allow_none=True, metadata={"description": "whose completion it was (the latest)"})
    count = fields.Integer(metadata={"description": "how often it happened since the instance last advanced"})


class InstanceDoc(_Doc):
    id = fields.Integer()
    business_key = fields.String()
    process_key = fields.String()
    process_version = fields.Integer()
    status = fields.String()
    state = fields.String()
    version = fields.Integer(metadata={"description": "the process version the instance runs on (= process_version)"})
    revision = fields.Integer(metadata={"description": "optimistic version counter of the stored state"})
    current_tasks = fields.List(fields.Nested(CurrentTaskDoc))
    completed_tasks = fields.List(fields.Nested(CompletedTaskDoc))
    history = fields.List(fields.Nested(StageDoc))
    pending_effects = fields.Integer(metadata={"description": "service tasks waiting to run"})
    failed_effects = fields.List(
        fields.Dict(), metadata={"description": "service tasks that used up their attempts (incidents)"}
    )
    incidents = fields.List(
        fields.Nested(IncidentDoc),
        metadata={
            "description": "engine failures since the instance's latest completed task, one per element and reason"
        },
    )
