"""A history reads in words (core.history): every event the sources record and every field of the records a history
keeps has its words there (tests/test_i18n.py checks that every language has them); values read as people say
them."""

from __future__ import annotations

import re
from pathlib import Path

from accountdesk.accounts.models import Account, Address, Invoice
from accountdesk.contacts.models import Contact
from accountdesk.core import history
from accountdesk.core.i18n import speaking
from accountdesk.domains.models import AccountDomain
from accountdesk.orders.models import Order
from accountdesk.resellers.models import Subscription, SubscriptionKind
from accountdesk.staff.models import StaffUser
from accountdesk.storefronts.models import Storefront

SOURCES = Path(__file__).resolve().parent.parent / "src" / "accountdesk"
# an event's name: "<record>.<what happened>", as audit.record and the packages' _log helpers are given it
ACTION = re.compile(r'"((?:account|address|cart|contact|domain|invoice|legal_hold|oidc_client|order|registration|'
                    r'staff|storefront|webhook_endpoint|webhook_delivery)\.[a-z_]+)"')
KEPT = (Account, Address, Invoice, Contact, StaffUser, Order, Subscription, AccountDomain, Storefront)


def recorded_actions() -> set[str]:
    found = {name for path in SOURCES.rglob("*.py") for name in ACTION.findall(path.read_text())}
    # built from parts: staff_admin.service ("staff." + reactivated/deactivated), resellers.service (the kind)
    found |= {"staff.reactivated", "staff.deactivated"}
    found |= {f"{kind}.{what}" for kind in SubscriptionKind for what in ("recorded", "updated")}
    return found


def test_every_recorded_event_and_kept_field_has_its_words():
    actions = recorded_actions()
    assert len(actions) > 60
    missing = sorted(a for a in actions if a not in history.ACTIONS)
    assert not missing, f"add these events to core.history.ACTIONS: {missing}"
    columns = {column.key for model in KEPT for column in model.__table__.columns} - {"id"}
    unnamed = sorted(columns - set(history.FIELDS))
    assert not unnamed, f"add these fields to core.history.FIELDS: {unnamed}"


def test_names_groups_and_values_read_in_words():
    with speaking("fr"):
        assert history.action_label("contact.erp_missing") == "Contact introuvable dans l'ERP"
        assert history.field_label("preferred_language") == "Langue préférée"
        assert history.field_label("first_contact.email") == "Premier contact: E-mail"
        assert history.field_label("attributes.seats", {"attributes.seats": "Sièges"}) == "Sièges"
        assert history.value_text("prorate_billing", True) == "oui"
        assert history.value_text("status", "pending_approval") == "en attente d'approbation"
        assert history.value_text("language", "de") == "Deutsch"
        assert history.value_text("billing_address.country", "DE") == "Allemagne"
        assert history.value_text("billing_address.region", "DE-BE") == "Berlin"
        assert history.value_text("billing_address.region", "US-CA") == "Californie"
        assert history.value_text("partial_charges_invoicing", "next_invoice") == "Sur la prochaine facture"
        assert history.value_text("storefront_id", 3, {"storefront_id": {3: "Main Shop"}}) == "Main Shop"
        assert history.value_text("customer_group", "") == "—"
        assert history.actor_text("system", "system") == "Système"
        assert history.actor_text("ada@example.com", "staff") == "ada@example.com"
    assert history.action_label("something.new_here") == "Something new here"  # never a crash on an unknown one


def test_an_account_opened_on_a_storefront_records_its_flags_as_yes_or_no(db, client):
    from sqlalchemy import select

    from accountdesk.core.models import AuditEvent
    from tests import factories as f

    store = f.storefront(db)
    admin = f.token(client, f.staff(db, "admin"))
    made = client.post("/api/v1/accounts", headers=admin, json={"name": "Flag GmbH", "storefront_id": store.id})
    assert made.status_code == 201, made.text
    with db.transaction() as session:
        changes = session.scalar(select(AuditEvent.changes).where(AuditEvent.action == "account.created"))
    assert changes["prorate_billing"][1] is False and changes["auto_invoice_email"][1] is True
    with speaking("de"):
        assert history.value_text("auto_invoice_email", changes["auto_invoice_email"][1]) == "ja"
