"""What the JSON answers of the routes that build their bodies by hand look like, for the
OpenAPI document only (`blp.alt_response(..., success=True)` documents without dumping:
these views answer dicts they already shaped, and the inbox's hot paths stay as they are).

Money is a decimal string, times ISO-8601 with offset (api.md conventions).
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class _Doc(Schema):
    """Documentation only: an answer may carry keys beyond those listed (the OpenAPI
    document says `additionalProperties: true`), as answers grow compatibly."""

    class Meta:
        unknown = INCLUDE


def _money() -> fields.String:
    return fields.String(metadata={"format": "decimal", "example": "95000.00"})


def _time() -> fields.String:
    return fields.String(metadata={"format": "date-time"})


class HealthDoc(_Doc):
    status = fields.String(metadata={"description": "ok | degraded (503)"})
    checks = fields.Dict(keys=fields.String(), values=fields.String())
    mode = fields.String(metadata={"description": "the database in use: postgresql | sqlite"})


class UserDoc(_Doc):
    id = fields.Integer()
    username = fields.String()
    roles = fields.List(fields.String())
    team_id = fields.Integer(allow_none=True)


class LoginDoc(_Doc):
    token = fields.String(metadata={"description": "send as Authorization: Bearer <token>"})
    user = fields.Nested(UserDoc)


class StatusDoc(_Doc):
    status = fields.String()


class ApplicationItemDoc(_Doc):
    application_no = fields.String()
    stage = fields.String(
        metadata={"description": "pending_assignment | onsite_visit | collecting | approval | disbursement | rejected"}
    )
    amount = _money()
    term_months = fields.Integer()
    team_id = fields.Integer()
    officer_id = fields.Integer(allow_none=True)
    created_at = _time()
    updated_at = _time()


class ApplicationPageDoc(_Doc):
    items = fields.List(fields.Nested(ApplicationItemDoc))
    total = fields.Integer()


class StageDoc(_Doc):
    stage = fields.String()
    actor_id = fields.Integer(allow_none=True)
    at = _time()


class ApprovalDoc(_Doc):
    approver_id = fields.Integer()
    decision = fields.String(metadata={"description": "approve | reject"})
    amount = fields.String(allow_none=True, metadata={"format": "decimal", "description": "null on a rejection"})
    term_months = fields.Integer(allow_none=True, metadata={"description": "null on a rejection"})
    comment = fields.String()


class DecisionDoc(_Doc):
    outcome = fields.String(metadata={"description": "approved | rejected"})
    final_amount = fields.String(allow_none=True, metadata={"format": "decimal"})
    final_term = fields.Integer(allow_none=True)
    amount_strategy = fields.String(
        allow_none=True, metadata={"description": "lowest | median | escalate (rules), supervisor, committee"}
    )
    term_strategy = fields.String(allow_none=True, metadata={"description": "median | escalate, supervisor, committee"})


class MaskedPersonDoc(_Doc):
    name = fields.String()
    phone = fields.String()
    masked = fields.Boolean()


class CustomerDoc(MaskedPersonDoc):
    id = fields.Integer()
    id_number = fields.String()
    region_id = fields.Integer()


class AttachmentDoc(_Doc):
    id = fields.Integer()
    sha256 = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    filename = fields.String()


class ApplicationDetailDoc(ApplicationItemDoc):
    region_id = fields.Integer()
    product_code = fields.String()
    purpose = fields.String()
    channel = fields.String()
    approval_mode = fields.String(metadata={"description": "centralized | committee"})
    history = fields.List(fields.Nested(StageDoc))
    approvals = fields.List(fields.Nested(ApprovalDoc))
    decision = fields.Nested(
        DecisionDoc, allow_none=True, metadata={"description": "only for the roles allowed to see it (F6)"}
    )
    credit_report = fields.Dict(allow_none=True)
    committee = fields.Dict(allow_none=True)
    customer = fields.Nested(CustomerDoc)
    applicant = fields.Nested(MaskedPersonDoc, metadata={"description": "contact given with this application"})
    visit = fields.Dict(allow_none=True)
    materials = fields.Dict(allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentDoc))
    process_instance_id = fields.Integer(allow_none=True)
    loan_id = fields.Integer(allow_none=True)


class CustomerPageDoc(_Doc):
    items = fields.List(fields.Nested(CustomerDoc))
    total = fields.Integer()


class CustomerApplicationDoc(_Doc):
    application_no = fields.String()
    stage = fields.String()
    amount = _money()


class CustomerDetailDoc(CustomerDoc):
    profile = fields.Dict(metadata={"description": "details registered on site, masked like the customer"})
    applications = fields.List(fields.Nested(CustomerApplicationDoc))


class LoanDoc(_Doc):
    id = fields.Integer()
    principal = _money()
    annual_rate = fields.String(metadata={"format": "decimal", "description": "a fraction: 0.12 is 12 %"})
    method = fields.String(metadata={"description": "equal_installment | equal_principal | interest_first"})
    fee = _money()
    term_months = fields.Integer()
    start_date = fields.Date()
    apr = fields.String(metadata={"format": "decimal", "description": "annualized rate (IRR) in percent"})
    core_status = fields.String()


class InstallmentDoc(_Doc):
    seq = fields.Integer()
    due_date = fields.Date()
    principal = _money()
    interest = _money()
    payment = _money()
    balance = _money()


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


class VersionPageDoc(_Doc):
    items = fields.List(fields.Nested(VersionDoc))
    total = fields.Integer()


class DeploymentDoc(_Doc):
    created = fields.List(fields.Nested(VersionDoc))
    unchanged = fields.Boolean(metadata={"description": "true when every file equals its newest version"})


class EvaluationDoc(_Doc):
    decision_id = fields.String()
    version = fields.Integer()
    outputs = fields.Dict(metadata={"example": {"strategy": "lowest", "final_amount": "95000.00"}})


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
