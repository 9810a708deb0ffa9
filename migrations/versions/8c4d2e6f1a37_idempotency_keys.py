"""idempotency keys of public submissions in the database

They lived in Redis (or process memory): during a Redis outage the guard was off, and a
phone retrying then — exactly when retries happen — made a second application. A row
written in the submission's own transaction holds with or without Redis.

Revision ID: 8c4d2e6f1a37
Revises: 5b1e0c7d9a21
Create Date: 2026-11-26 11:30:00
"""

import sqlalchemy as sa
from alembic import op

import app.models.base

revision = "8c4d2e6f1a37"
down_revision = "5b1e0c7d9a21"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("created_at", app.models.base.TZDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_key")),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_key_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_key_created_at"))
    op.drop_table("idempotency_key")
