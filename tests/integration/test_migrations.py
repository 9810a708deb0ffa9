"""The schema comes from the Alembic migrations alone (the `app` fixture ran them from an
empty database), so a new install and an upgraded one look the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from app.extensions import db

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def head_revisions() -> set[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return set(ScriptDirectory.from_config(config).get_heads())


def test_the_migrations_have_a_single_head():
    assert len(head_revisions()) == 1


def test_the_database_is_at_the_head_revision(app):
    with app.app_context():
        stamped = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
        db.session.remove()
    assert stamped == head_revisions()


def test_every_model_table_exists(app):
    with app.app_context():
        existing = set(inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) - existing == set()


def test_the_migrated_columns_match_the_models(app):
    with app.app_context():
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = [describe(diff) for diff in compare_metadata(context, db.metadata)]
    assert differences == []


def describe(diff) -> str:  # type: ignore[no-untyped-def]
    """One autogenerate difference as a readable line (constraint and table names)."""
    if isinstance(diff, list):
        return "; ".join(describe(item) for item in diff)
    kind, *rest = diff
    target = rest[0]
    name = getattr(target, "name", None)
    table = getattr(getattr(target, "table", None), "name", None) or getattr(
        getattr(target, "parent", None), "name", ""
    )
    return f"{kind} {name or ''} on {table or rest}"


def test_the_workflow_state_is_compressed_with_lz4_on_postgresql(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("a PostgreSQL storage setting")
        method = db.session.scalar(
            text(
                "SELECT attcompression FROM pg_attribute "
                "WHERE attrelid = 'process_instance'::regclass AND attname = 'state'"
            )
        )
        db.session.remove()
    assert method == "l"
