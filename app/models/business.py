"""Loan business: customers, applications with stage history, attachments, loans (F1-F10)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import DecimalType, Model, Money, TZDateTime, created_at, intpk, utcnow

STAGES = ("pending_assignment", "onsite_visit", "collecting", "approval", "disbursement", "rejected")


class Customer(Model):
    __tablename__ = "customer"
    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow)


class Application(Model):
    """A loan application; `team_id`/`region_id`/`officer_id` carry its data scope."""

    __tablename__ = "loan_application"
    id: Mapped[intpk]
    application_no: Mapped[str] = mapped_column(String(24), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_product.id"))
    amount: Mapped[Decimal] = mapped_column(Money())
    term_months: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    # The contact details as submitted: the public form never rewrites customer master data.
    applicant_name: Mapped[str] = mapped_column(String(64))
    applicant_phone: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(24), default="pending_assignment", index=True)
    consent_text_version: Mapped[str] = mapped_column(String(64))
    consent_at: Mapped[datetime] = mapped_column(TZDateTime())
    credit_auth_text_version: Mapped[str] = mapped_column(String(64))
    credit_auth_at: Mapped[datetime] = mapped_column(TZDateTime())
    client_ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship()
    history: Mapped[list[StageEntry]] = relationship(order_by="StageEntry.id", viewonly=True)


class StageEntry(Model):
    """One stage reached by an application, with who caused it and when (F3)."""

    __tablename__ = "stage_entry"
    id: Mapped[intpk]
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class Attachment(Model):
    """An uploaded photo or document; the bytes live on disk under their sha256."""

    __tablename__ = "attachment"
    id: Mapped[intpk]
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(200))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[created_at]


class Loan(Model):
    __tablename__ = "loan"
    id: Mapped[intpk]
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id"), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_product.id"))
    principal: Mapped[Decimal] = mapped_column(Money())
    annual_rate: Mapped[Decimal] = mapped_column(DecimalType(8, 6))
    method: Mapped[str] = mapped_column(String(24))
    fee: Mapped[Decimal] = mapped_column(Money())
    term_months: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    apr: Mapped[Decimal] = mapped_column(DecimalType(8, 2))
    core_status: Mapped[str] = mapped_column(String(32), default="not_configured")
    created_at: Mapped[created_at]

    installments: Mapped[list[Installment]] = relationship(order_by="Installment.seq")


class Installment(Model):
    __tablename__ = "installment"
    __table_args__ = (UniqueConstraint("loan_id", "seq"),)
    id: Mapped[intpk]
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    principal: Mapped[Decimal] = mapped_column(Money())
    interest: Mapped[Decimal] = mapped_column(Money())
    payment: Mapped[Decimal] = mapped_column(Money())
    balance: Mapped[Decimal] = mapped_column(Money())


class AuditLog(Model):
    """Who did what, when, from where, with the before/after values (F21)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)  # one object's trail
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(Text)


class ApiToken(Model):
    """A bearer token's server-side record, so it can expire and be revoked."""

    __tablename__ = "api_token"
    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime] = mapped_column(TZDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class IdempotencyKey(Model):
    """A public submission's `Idempotency-Key` and the answer it got, so a repeated
    request gets that answer again (24 h). Written in the submission's own transaction:
    no second application, with or without Redis."""

    __tablename__ = "idempotency_key"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, nullable=False, index=True)
