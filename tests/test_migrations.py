"""The migrations make exactly the schema the models describe, on both databases, and run down and up again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from accountdesk.models import Base

# Made by hand in migrations because the models cannot say them: the trigram index (PostgreSQL).
HAND_MADE = {"ix_accounts_search_text_trgm"}


def _other_dialects_indexes(dialect: str) -> set[str]:
    """Indexes declared with .ddl_if(dialect=...) for another database than this one."""
    return {index.name for table in Base.metadata.tables.values() for index in table.indexes
            if index._ddl_if is not None and index._ddl_if.dialect not in (None, dialect)}


def _differences(db) -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
        skipped = HAND_MADE | _other_dialects_indexes(conn.dialect.name)
    return [d for d in diffs if not (isinstance(d, tuple) and getattr(d[1], "name", None) in skipped)]


def test_models_match_the_migrated_schema(db):
    assert _differences(db) == []
