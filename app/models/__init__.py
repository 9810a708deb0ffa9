"""All models, importable from one place (Alembic sees them through this module)."""

from app.models.business import (
    ApiToken,
    Application,
    Attachment,
    AuditLog,
    Customer,
    IdempotencyKey,
    Installment,
    Loan,
    StageEntry,
)
from app.models.engine import HumanTask, Outbox, ProcessDefinition, ProcessInstance
from app.models.org import LoanProduct, Region, Role, RoleGrant, Team, User, team_approvers, user_roles

__all__ = [
    "ApiToken",
    "Application",
    "Attachment",
    "AuditLog",
    "Customer",
    "HumanTask",
    "IdempotencyKey",
    "Installment",
    "Loan",
    "LoanProduct",
    "Outbox",
    "ProcessDefinition",
    "ProcessInstance",
    "Region",
    "Role",
    "RoleGrant",
    "StageEntry",
    "Team",
    "User",
    "team_approvers",
    "user_roles",
]
