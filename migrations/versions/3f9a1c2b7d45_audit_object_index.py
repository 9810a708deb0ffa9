"""audit rows found by their object

A task's detail lists its assignment trail (assign, claim, unclaim) from the audit log;
without an index on the object that is a scan of every audit row of those actions.

Revision ID: 3f9a1c2b7d45
Revises: 8c4d2e6f1a37
Create Date: 2026-11-26 13:40:00
"""

from alembic import op

revision = "3f9a1c2b7d45"
down_revision = "8c4d2e6f1a37"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Every write request adds an audit row: build the index without blocking them.
        with op.get_context().autocommit_block():
            op.create_index(
                "ix_audit_log_object", "audit_log", ["object_type", "object_id"], postgresql_concurrently=True
            )
        return
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_object", ["object_type", "object_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_object")
