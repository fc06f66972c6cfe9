"""The migrations make exactly the schema the models describe, on both databases, and run down and up again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from accountdesk.models import Base

# Made by hand in migrations because the models cannot say them: the trigram indexes (PostgreSQL).
HAND_MADE = {"ix_accounts_search_text_trgm", "ix_accounts_search_words_trgm", "ix_accounts_name_trgm"}


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


SELF_REGISTRATION_NEEDS_ANONYMOUS_ACCESS = "0007"  # the migration that settles stored policies


def test_self_registration_is_turned_off_where_anonymous_access_is_off(db):
    from alembic import command
    from sqlalchemy import select

    from accountdesk.core.migrate import alembic_config, upgrade
    from accountdesk.core.models import AuditEvent
    from accountdesk.storefronts.models import Storefront
    from tests import factories as f

    stored = {"legacy": f.storefront(db, anonymous_access=False, self_registration=True),
              "public": f.storefront(db, anonymous_access=True, self_registration=True),
              "private": f.storefront(db, anonymous_access=False, self_registration=False)}
    command.downgrade(alembic_config(db.url), f"{SELF_REGISTRATION_NEEDS_ANONYMOUS_ACCESS}-1")
    upgrade(db.url)
    with db.transaction() as session:
        now = {name: session.get(Storefront, s.id) for name, s in stored.items()}
        assert {name: (s.anonymous_access, s.self_registration, s.sign_in_after_registration)
                for name, s in now.items()} == {"legacy": (False, False, False), "public": (True, True, False),
                                                "private": (False, False, False)}
        [event] = session.scalars(select(AuditEvent)).all()
        assert (event.action, event.subject_id, event.actor_type, event.changes) == (
            "storefront.policy_changed", stored["legacy"].id, "system", {"self_registration": [True, False]})


OUTBOX_SUBJECT_KEY = "0008"  # the migration that gives waiting ERP pushes their key


def test_erp_pushes_waiting_before_the_subject_key_are_still_found(db):
    from alembic import command
    from sqlalchemy import select, update

    from accountdesk.accounts.models import Account
    from accountdesk.core import outbox
    from accountdesk.core.migrate import alembic_config, upgrade
    from accountdesk.core.models import OutboxMessage
    from accountdesk.registration import erp
    from tests import factories as f

    waiting, delivered = f.account(db), f.account(db)
    with db.transaction() as session:
        pushes = [erp.request_erp_push(session, session.get(Account, a.id), "approved") for a in (waiting, delivered)]
        mail = outbox.enqueue(session, "email", {"to": ["pat@example.com"]})
    with db.transaction() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == pushes[1].id).values(status="sent"))
    command.downgrade(alembic_config(db.url), f"{OUTBOX_SUBJECT_KEY}-1")
    upgrade(db.url)
    with db.transaction() as session:
        keys = dict(session.execute(select(OutboxMessage.id, OutboxMessage.subject_key)).all())
        assert keys == {pushes[0].id: f"account-{waiting.id}", pushes[1].id: None, mail.id: None}
        assert erp.request_erp_push(session, session.get(Account, waiting.id), "first order") is None
        assert erp.request_erp_push(session, session.get(Account, delivered.id), "first order") is not None


def test_why_a_webhook_endpoint_was_disabled_becomes_a_code(db, settings):
    """Before 0021 the reason was an English sentence; it becomes the code whose words each reader's language gives."""
    from alembic import command
    from sqlalchemy import text

    from accountdesk.core.audit import Actor
    from accountdesk.core.migrate import alembic_config, upgrade
    from accountdesk.webhooks import service

    allowed = settings.model_copy(update={"webhook_allow_private_targets": True})
    with db.transaction() as session:
        ids = [service.create_endpoint(session, Actor.system(), allowed, url=f"https://hooks.example/{n}",
                                       event_types=["account.created"], storefront_id=None)[0].id for n in range(3)]
    command.downgrade(alembic_config(db.url), "0020")
    old = ["disabled by staff", "every delivery failed since 2026-11-01 10:00 UTC", ""]
    with db.transaction() as session:
        for endpoint_id, reason in zip(ids, old, strict=True):
            session.execute(text("UPDATE webhook_endpoints SET disabled_reason = :r WHERE id = :i"),
                            {"r": reason, "i": endpoint_id})
    upgrade(db.url)
    with db.transaction() as session:
        reasons = dict(session.execute(text("SELECT id, disabled_reason FROM webhook_endpoints")).all())
    assert [reasons[i] for i in ids] == [service.DISABLED_BY_STAFF, service.DISABLED_BY_FAILURES, ""]
