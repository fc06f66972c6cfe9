"""Personal data: the export holds everything about a person (one e-mail, every login); erasure removes every
personal field from the whole database — checked by reading every text column of every table — and keeps orders,
invoices and numbers; it is refused while an order is open or a legal hold is on, and the person can do both from
the storefront (erasure confirmed with their password)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, Invoice, SavedPaymentMethod
from accountdesk.carts.models import Cart, CartLine, Favourite
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.core.models import AuditEvent, AuthSession, OutboxMessage, SingleUseToken
from accountdesk.models import Base
from accountdesk.orders import service as orders
from accountdesk.orders.models import Order
from accountdesk.registration import service as registration
from accountdesk.storefronts.models import Storefront
from accountdesk.webhooks import service as webhooks
from accountdesk.webhooks.events import EVENT_TYPES
from accountdesk.webhooks.models import WebhookDelivery
from tests import factories as f
from tests.page_world import storefront_sign_in
from tests.reseller_world import csrf_of

EMAIL = "zorya.quillfeather@privacy.example"
FIRST, LAST, PHONE = "Zorya", "Quillfeather", "+12175550199"
ADDRESS_LINE = "77 Wistful Vista"
SECRETS = (EMAIL, FIRST, LAST, PHONE, PHONE.removeprefix("+1"), ADDRESS_LINE, "privacy.example")
LINES = [{"sku": "LAMP-1", "name": "Desk lamp", "quantity": 2, "unit_cost": Decimal("10.00")}]


def person(db, settings, *, open_order: bool = False):
    """Zorya: a buyer of a company (B2B) on one storefront and a private (B2C) customer on another, with orders,
    a cart, favourites, history, e-mails to her and a staff notification about her; and a bystander."""
    with db.transaction() as session:  # an operator-wide webhook endpoint takes every event (nothing is sent)
        webhooks.create_endpoint(session, Actor.system(), settings, url="https://hooks.example.com/all",
                                 event_types=list(EVENT_TYPES), storefront_id=None)
    shop = f.storefront(db, name="Trade Shop", staff_notification_to="team@trade.example")
    home = f.storefront(db, name="Home Shop")
    company = f.account(db, name="Brightwater Trading", storefront_id=shop.id, email=EMAIL, phone=PHONE)
    private = f.account(db, name=f"{FIRST} {LAST}", kind="b2c", storefront_id=home.id, email=EMAIL, phone=PHONE,
                        billing={"line1": ADDRESS_LINE, "city": "Springfield", "region": "US-IL",
                                 "postcode": "62701", "country": "US"})
    buyer = f.contact(db, company, shop, first_name=FIRST, last_name=LAST, email=EMAIL, phone=PHONE,
                      role="account_admin")
    customer = f.contact(db, private, home, first_name=FIRST, last_name=LAST, email=EMAIL, phone=PHONE)
    bystander = f.contact(db, company, shop, first_name="Ivo", last_name="Stays", email="ivo@brightwater.example")
    with db.transaction() as session:
        me = session.get(Contact, buyer.id)
        actor = Actor("contact", me.id, me.email)
        contacts.update_contact(session, actor, me, {"language": "de"})
        contacts.send_password_reset(session, Actor.system(), me, settings)
        registration.send_verification(session, Actor.system(), session.get(Contact, customer.id), settings.base_url)
        registration.notify_staff(session, session.get(Storefront, shop.id), session.get(Account, company.id), me,
                                  "http://testserver/console/approvals/1")
        placed = orders.place_order(session, actor, session.get(Account, company.id), None, LINES, may_price=True,
                                    contact=me)
        orders.place_order(session, Actor("contact", customer.id, EMAIL), session.get(Account, private.id), None,
                           LINES, may_price=True, contact=session.get(Contact, customer.id))
        accounts.record_invoice(session, Actor.system(), session.get(Account, private.id),
                                {"number": "INV-7001", "issued_on": date.today(), "total": Decimal("20.00")})
        if open_order:
            session.get(Account, company.id).order_approval_required = True
            session.flush()
            orders.place_order(session, actor, session.get(Account, company.id), None, LINES, may_price=True,
                               contact=me)
        cart = Cart(contact_id=me.id, lines=[CartLine(sku="LAMP-2", name="Floor lamp", quantity=1,
                                                      unit_price=Decimal("5"))])
        session.add_all([cart, Favourite(contact_id=me.id, sku="LAMP-3", name="Lamp shade")])
        for owner, last4 in (({"account_id": company.id, "contact_id": me.id}, "1111"),
                             ({"account_id": private.id}, "2222"),
                             ({"account_id": company.id, "contact_id": bystander.id}, "3333")):  # Ivo's stays
            accounts.add_payment_method(session, Actor.system(), session.get(Account, owner["account_id"]), {
                "provider": "stripe", "provider_token_id": f"pm_{last4}", "brand": "visa", "last4": last4,
                "expiry_month": 1, "expiry_year": 2030, "contact_id": owner.get("contact_id"),
                "holder_name": "Ivo Stays" if last4 == "3333" else f"{FIRST} {LAST}"})
    return {"shop": shop, "home": home, "company": company, "private": private, "buyer": buyer,
            "customer": customer, "bystander": bystander, "order_number": placed.number}


def whole_database_text(db) -> str:
    """Every text (and JSON) value of every row of every table, lower-cased, one per line."""
    found: list[str] = []
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for value in row.values():
                    if isinstance(value, str):
                        found.append(value)
                    elif isinstance(value, dict | list):
                        found.append(json.dumps(value, ensure_ascii=False))
    return "\n".join(found).lower()


def test_the_export_holds_every_login_order_cart_history_and_mail_of_the_e_mail(db, client, settings):
    w = person(db, settings)
    headers = f.token(client, f.staff(db, "csr"))
    response = client.get(f"/api/v1/accounts/{w['company'].id}/contacts/{w['buyer'].id}/personal-data",
                          headers=headers)
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    assert data["email"] == EMAIL
    assert {(login["account"]["name"], login["storefront"]["name"]) for login in data["logins"]} == {
        ("Brightwater Trading", "Trade Shop"), (f"{FIRST} {LAST}", "Home Shop")}
    assert [a["addresses"][0]["line1"] for a in data["private_accounts"]] == [ADDRESS_LINE]
    assert [i["number"] for i in data["private_accounts"][0]["invoices"]] == ["INV-7001"]
    assert len(data["orders"]) == 2 and data["orders"][0]["lines"][0]["sku"] == "LAMP-1"
    assert [line["sku"] for line in data["carts"][0]["lines"]] == ["LAMP-2"]
    assert [fav["sku"] for fav in data["favourites"]] == ["LAMP-3"]
    assert [m["last4"] for m in data["saved_payment_methods"]] == ["1111", "2222"]
    assert {"contact.updated", "contact.password_reset_sent", "order.placed"} <= {e["action"] for e in data["history"]}
    assert {m["template"] for m in data["emails"]} == {"password_reset", "email_verification"}
    assert "ivo@brightwater.example" not in response.text  # a colleague is not part of the person


def test_erasure_removes_every_personal_field_from_the_whole_database_and_keeps_the_books(db, client, settings):
    w = person(db, settings)
    before = whole_database_text(db)
    assert all(secret.lower() in before for secret in SECRETS)  # the search finds what is there
    with db.transaction() as session:
        orders_before = session.scalars(select(Order.number).order_by(Order.number)).all()
    admin = f.staff(db, "admin")
    buyer_session = client.post(f"/api/v1/storefronts/{w['shop'].slug}/sessions",
                                json={"email": EMAIL, "password": f.PASSWORD})
    assert buyer_session.status_code == 201, buyer_session.text
    url = f"/api/v1/accounts/{w['company'].id}/contacts/{w['buyer'].id}/erasure"
    response = client.post(url, json={"reason": "Request of 2026-11-20"}, headers=f.token(client, admin))
    assert response.status_code == 200, response.text
    assert sorted(response.json()["contact_ids"]) == sorted([w["buyer"].id, w["customer"].id])

    after = whole_database_text(db)
    assert [secret for secret in SECRETS if secret.lower() in after] == []
    assert "ivo@brightwater.example" in after and "brightwater trading" in after  # the company and colleague stay
    with db.transaction() as session:
        assert session.scalars(select(Order.number).order_by(Order.number)).all() == orders_before
        assert session.scalar(select(func.count()).select_from(Invoice)) == 1
        assert session.get(Account, w["private"].id).number == w["private"].number
        erased = session.get(Contact, w["buyer"].id)
        assert erased.email.startswith("erased-") and erased.email.endswith("@invalid")
        assert (erased.password_hash, erased.status, erased.erased_at is not None) == (None, "deactivated", True)
        assert session.scalar(select(func.count()).select_from(AuthSession).where(
            AuthSession.contact_id == erased.id, AuthSession.revoked_at.is_(None))) == 0
        assert session.scalar(select(func.count()).select_from(SingleUseToken).where(
            SingleUseToken.contact_id == erased.id)) == 0
        assert session.scalar(select(func.count()).select_from(Cart)) == 0
        assert session.scalars(select(SavedPaymentMethod.last4)).all() == ["3333"]
        mail = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "email")).all()
        assert all(m.status != "pending" for m in mail if m.payload.get("erased"))
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.erased",
                                                           AuditEvent.subject_id == erased.id)).all()
        assert (event.actor_label, event.changes, event.note) == (admin.email, {}, "Request of 2026-11-20")
        announced = session.scalars(select(WebhookDelivery).where(WebhookDelivery.event_type == "contact.erased")
                                    .order_by(WebhookDelivery.id)).all()
        assert [json.loads(d.body)["data"] for d in announced] == [  # ids only
            {"contact_id": c.id, "account_id": c.account_id, "storefront_id": c.storefront_id}
            for c in sorted([w["buyer"], w["customer"]], key=lambda c: c.id)]
    assert client.get(f"/api/v1/storefronts/{w['shop'].slug}/sessions/current", headers={
        "Authorization": f"Bearer {buyer_session.json()['access_token']}"}).status_code == 401
    again = client.post(url, json={}, headers=f.token(client, admin))
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_erased")


def test_erasure_is_refused_while_an_order_is_open_or_a_legal_hold_is_on(db, client, settings):
    w = person(db, settings, open_order=True)
    headers = f.token(client, f.staff(db, "admin"))
    url = f"/api/v1/accounts/{w['company'].id}/contacts/{w['buyer'].id}/erasure"
    refused = client.post(url, json={}, headers=headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "open_orders")
    assert "SO-" in refused.json()["error"]["message"]
    with db.transaction() as session:
        session.execute(Order.__table__.update().values(status="executed"))
    hold = client.put(f"/api/v1/accounts/{w['private'].id}/legal-hold",
                      json={"legal_hold": True, "reason": "Tax audit 2026"}, headers=headers)
    assert hold.json() == {"legal_hold": True}
    refused = client.post(url, json={}, headers=headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "legal_hold")
    with db.transaction() as session:
        assert session.get(Contact, w["buyer"].id).email == EMAIL  # nothing changed
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "legal_hold.set")).all()
        assert (event.subject_id, event.changes, event.note) == (w["private"].id, {"legal_hold": [False, True]},
                                                                 "Tax audit 2026")
    csr = f.token(client, f.staff(db, "csr"))
    assert client.post(url, json={}, headers=csr).status_code == 403  # erasure is for admins
    assert client.put(f"/api/v1/accounts/{w['private'].id}/legal-hold", json={"legal_hold": False},
                      headers=headers).json() == {"legal_hold": False}
    assert client.post(url, json={}, headers=headers).status_code == 200


def test_the_person_downloads_and_erases_their_own_data_from_the_storefront(db, client, settings):
    w = person(db, settings)
    with db.transaction() as session:
        session.get(Contact, w["buyer"].id).email_verified_at = func.now()
    slug = w["shop"].slug
    storefront_sign_in(client, w["shop"], EMAIL)
    page = client.get(f"/s/{slug}/account/privacy")
    assert page.status_code == 200 and "Meine Daten löschen" in page.text  # the person's language (de, above)
    download = client.get(f"/s/{slug}/account/personal-data")
    assert len(download.json()["logins"]) == 2  # a confirmed address sees all its logins
    url = f"/s/{slug}/account/privacy/erase"
    wrong = client.post(url, data={"csrf_token": csrf_of(page.text), "current_password": "not-my-password",
                                   "confirm": "yes"})
    assert wrong.status_code == 422 and "nicht richtig" in wrong.text
    done = client.post(url, data={"csrf_token": csrf_of(page.text), "current_password": f.PASSWORD,
                                  "confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert client.get(f"/s/{slug}/account/privacy", follow_redirects=False).status_code == 303  # signed out
    after = whole_database_text(db)
    assert [secret for secret in SECRETS if secret.lower() in after] == []
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.erased",
                                                           AuditEvent.subject_id == w["buyer"].id)).all()
        assert (event.actor_type, event.actor_label) == ("contact", "erased contact")


def test_an_unconfirmed_address_exports_only_the_login_it_signed_in_with(db, client, settings):
    w = person(db, settings)
    storefront_sign_in(client, w["shop"], EMAIL)
    data = client.get(f"/s/{w['shop'].slug}/account/personal-data").json()
    assert [login["account"]["name"] for login in data["logins"]] == ["Brightwater Trading"]
