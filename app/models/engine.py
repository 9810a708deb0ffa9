"""Workflow engine tables: deployed versions, instances, the inbox projection, the outbox.

The serialized SpiffWorkflow state lives in `process_instance.state`; everything that is
queried (inbox, pools, dashboards) reads `human_task`, never the serialized state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Model, TZDateTime, created_at, intpk, utcnow


class ProcessDefinition(Model):
    """One deployed version of a BPMN process or a DMN decision (F19)."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("kind", "key", "version"),)
    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(8))  # "process" | "decision"
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    checksum: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(Text)
    bound_decisions: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    spec_json: Mapped[str | None] = mapped_column(Text)
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    deployed_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class ProcessInstance(Model):
    __tablename__ = "process_instance"
    id: Mapped[intpk]
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"), index=True)
    business_key: Mapped[str] = mapped_column(String(64), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("loan_application.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class HumanTask(Model):
    """The inbox projection of one user task of one instance."""

    __tablename__ = "human_task"
    __table_args__ = (
        Index("ix_human_task_open_team", "status", "team_id"),
        Index("ix_human_task_open_assignee", "status", "assignee_id"),
    )
    id: Mapped[intpk]
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    task_key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(128))
    process_key: Mapped[str] = mapped_column(String(64))
    process_version: Mapped[int] = mapped_column(Integer)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("loan_application.id"), index=True)
    application_no: Mapped[str | None] = mapped_column(String(24), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))
    candidate_role: Mapped[str | None] = mapped_column(String(32))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    status: Mapped[str] = mapped_column(String(12), default="open")
    priority: Mapped[int] = mapped_column(Integer, default=50)
    form_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[created_at]
    claimed_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    due_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class Outbox(Model):
    """A pending effect (service task) written in the same transaction as the state."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_available", "status", "available_at"),)
    id: Mapped[intpk]
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    operation: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    available_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(TZDateTime())
