"""Organisation: regions, teams, users, roles and (action, scope) grants (F18, F21)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import DecimalType, Model, Money, TZDateTime, created_at, intpk, utcnow

SCOPES = ("own", "team", "region", "all")
APPROVAL_MODES = ("centralized", "committee")

user_roles = Table(
    "user_role",
    Model.metadata,
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("role_code", ForeignKey("role.code", ondelete="CASCADE"), primary_key=True),
)

team_approvers = Table(
    "team_approver",
    Model.metadata,
    Column("team_id", ForeignKey("team.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
)


class Region(Model):
    __tablename__ = "region"
    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    default_product_id: Mapped[int | None] = mapped_column(ForeignKey("loan_product.id", use_alter=True))

    teams: Mapped[list[Team]] = relationship(back_populates="region")
    default_product: Mapped[LoanProduct | None] = relationship(foreign_keys=[default_product_id])


class Team(Model):
    __tablename__ = "team"
    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    approval_mode: Mapped[str] = mapped_column(String(16), default="centralized")
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", use_alter=True))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    region: Mapped[Region] = relationship(back_populates="teams")
    approvers: Mapped[list[User]] = relationship(secondary=team_approvers, order_by="User.id")


class Role(Model):
    __tablename__ = "role"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))


class RoleGrant(Model):
    """One permission: `action` on data within `scope`, granted to a role (editable data)."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("role_code", "action"),)
    id: Mapped[intpk]
    role_code: Mapped[str] = mapped_column(ForeignKey("role.code", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(8))


class User(UserMixin, Model):
    __tablename__ = "app_user"
    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(256))
    password_changed_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]

    roles: Mapped[list[Role]] = relationship(secondary=user_roles)
    team: Mapped[Team | None] = relationship(foreign_keys=[team_id])

    @property
    def role_codes(self) -> list[str]:
        """Codes of the roles held, sorted for stable output."""
        return sorted(role.code for role in self.roles)

    def get_id(self) -> str:
        """Session identity; changes with the password so old sessions stop working."""
        return f"{self.id}:{int(self.password_changed_at.timestamp())}"


class LoanProduct(Model):
    """A loan product (F18): the approved loan takes its rate, method and fee."""

    __tablename__ = "loan_product"
    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    annual_rate: Mapped[Decimal] = mapped_column(DecimalType(8, 6))
    method: Mapped[str] = mapped_column(String(24))
    fee_rate: Mapped[Decimal] = mapped_column(DecimalType(8, 6), default=Decimal("0"))
    min_amount: Mapped[Decimal] = mapped_column(Money())
    max_amount: Mapped[Decimal] = mapped_column(Money())
    min_term: Mapped[int] = mapped_column(Integer)
    max_term: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
