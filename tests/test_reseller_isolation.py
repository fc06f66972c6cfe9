"""Tenant isolation: every reseller route, API and console, called by one reseller's staff with another reseller's
ids answers 404 exactly as for an id that does not exist, shows none of the other reseller's data, and changes
nothing; the same route with the caller's own ids does not answer 404 (so the ids in the test are right)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, SavedPaymentMethod
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.domains import service as domains
from accountdesk.orders.models import Order
from accountdesk.resellers.models import Subscription
from tests import factories as f
from tests.page_world import app_routes
from tests.reseller_world import (
    BUYER_LINES,
    LINES,
    NEW_CUSTOMER,
    NEW_USER,
    console_sign_in,
    csrf_of,
    customer,
    subscription,
    world,
)

PARAM = re.compile(r"{(\w+)}")
BODIES = {  # a valid body per route, so that the answer is about the ids and not about the input
    ("PUT", "/markup"): {"markup_percent": "5"},
    ("POST", "/customers"): NEW_CUSTOMER,
    ("PATCH", "/customers/{customer_id}"): {"name": "Taken Over"},
    ("PUT", "/customers/{customer_id}/order-approval"): {"required": True},
    ("POST", "/customers/{customer_id}/subscriptions"): {"sku": "S", "name": "S", "monthly_amount": "1",
                                                         "starts_on": "2026-01-01"},
    ("PATCH", "/customers/{customer_id}/subscriptions/{subscription_id}"): {"status": "canceled"},
    ("POST", "/customers/{customer_id}/users"): NEW_USER,
    ("POST", "/customers/{customer_id}/orders"): {"lines": LINES},
}


@dataclass
class Tenant:
    """A reseller with one of everything: customer, storefront user, subscription, pending order."""

    world: Any
    customer: Account
    contact: Contact
    subscription_id: int
    order_id: int
    order_number: str

    def ids(self) -> dict[str, Any]:
        return {"reseller_id": self.world.reseller.id, "customer_id": self.customer.id, "user_id": self.contact.id,
                "subscription_id": self.subscription_id, "order_id": self.order_id}

    def secrets(self) -> list[str]:
        return [self.world.reseller.name, self.world.reseller.number, self.customer.name, self.customer.number,
                self.customer.email, self.contact.email, self.order_number]


def tenant(db, client, name: str) -> Tenant:
    w = world(db, client, payment_method="credit_card", name=name)
    buyer = customer(db, w, name=f"{name} Customer", email=f"{name.lower()}@customer.example")
    contact = f.contact(db, buyer, w.storefront, email=f"user@{name.lower()}.example")
    subscription(db, w, buyer, "10")
    login = client.post(f"/api/v1/storefronts/{w.storefront.slug}/sessions",
                        json={"email": contact.email, "password": f.PASSWORD}).json()["access_token"]
    order = client.post(f"/api/v1/storefronts/{w.storefront.slug}/orders", json={"lines": BUYER_LINES},
                        headers={"Authorization": f"Bearer {login}"}).json()
    with db.transaction() as session:
        subscription_id = session.query(Subscription.id).filter_by(account_id=buyer.id).scalar()
    return Tenant(w, buyer, contact, subscription_id, order["id"], order["number"])


def routes(app, prefix: str) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route under `prefix`."""
    for route in app_routes(app):
        if isinstance(route, APIRoute) and route.path.startswith(prefix):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, route.path


def fill(path: str, ids: dict[str, Any], action: str) -> str:
    return PARAM.sub(lambda m: str(ids.get(m.group(1), action)), path)


def state(db, t: Tenant) -> tuple:
    with db.transaction() as session:
        buyer = session.get(Account, t.customer.id)
        return (buyer.name, buyer.order_approval_required, session.get(Account, t.world.reseller.id).markup_percent,
                session.get(Contact, t.contact.id).status, session.get(Subscription, t.subscription_id).status,
                session.get(Order, t.order_id).status,
                session.query(Account).filter_by(parent_reseller_id=t.world.reseller.id).count(),
                session.query(Contact).filter_by(account_id=t.customer.id).count(),
                session.query(Order).filter_by(account_id=t.customer.id).count(),
                session.query(SavedPaymentMethod).filter_by(account_id=t.customer.id).count())


def test_every_reseller_api_route_answers_404_for_another_resellers_ids(db, app, client):
    mine, theirs = tenant(db, client, "Alpha"), tenant(db, client, "Bravo")
    before = state(db, theirs)
    found = sorted(set(routes(app, "/api/v1/resellers")))
    assert len(found) >= 20, found
    for method, template in found:
        suffix = template.split("{reseller_id}", 1)[1]
        body = BODIES.get((method, suffix))
        attempts = [fill(template, theirs.ids(), "deactivate")]  # another reseller altogether
        if PARAM.findall(suffix):  # my reseller id with their customer, user, subscription or order
            attempts.append(fill(template, {**theirs.ids(), "reseller_id": mine.world.reseller.id}, "deactivate"))
        for url in attempts:
            response = client.request(method, url, headers=mine.world.headers, json=body)
            assert response.status_code == 404, (method, url, response.text)
            assert response.json()["error"]["code"].endswith("not_found"), (method, url)
            leaked = [s for s in theirs.secrets() if s.lower() in response.text.lower()]
            assert not leaked, (method, url, leaked)
    assert state(db, theirs) == before
    for method, template in found:  # the same routes with my own ids do reach my data
        suffix = template.split("{reseller_id}", 1)[1]
        url = fill(template, mine.ids(), "deactivate")
        response = client.request(method, url, headers=mine.world.headers, json=BODIES.get((method, suffix)))
        assert response.status_code != 404, (method, url, response.text)


def test_every_reseller_console_page_answers_404_for_another_resellers_ids(db, app, client):
    mine, theirs = tenant(db, client, "Alpha"), tenant(db, client, "Bravo")
    before = state(db, theirs)
    console_sign_in(client, mine.world.staff)
    token = csrf_of(client.get(f"/console/resellers/{mine.world.reseller.id}/customers").text)
    found = sorted(set(routes(app, "/console/resellers/{reseller_id}")))
    assert len(found) >= 10, found
    for method, template in found:
        data = {"csrf_token": token, "name": "Taken Over", "required": "on"} if method == "POST" else None
        action = "accept" if "/orders/" in template else "deactivate"
        for ids in (theirs.ids(), {**theirs.ids(), "reseller_id": mine.world.reseller.id}):
            url = fill(template, ids, action)
            if url.startswith(f"/console/resellers/{mine.world.reseller.id}/") and not PARAM.findall(
                    template.split("{reseller_id}", 1)[1]):
                continue  # nothing of theirs in this address
            response = client.request(method, url, data=data, follow_redirects=False)
            assert response.status_code == 404, (method, url, response.text[:300])
            leaked = [s for s in theirs.secrets() if s.lower() in response.text.lower()]
            assert not leaked, (method, url, leaked)
    assert state(db, theirs) == before


def test_a_reseller_cannot_put_its_customers_or_their_logins_on_another_storefront(db, client):
    """Hole 6: reseller A's admin moved its own customer onto B's storefront (or the operator's), then made a login
    there. A storefront id outside the caller's scope is refused exactly like one that does not exist."""
    mine, theirs = tenant(db, client, "Alpha"), tenant(db, client, "Bravo")
    operator_store = f.storefront(db, name="Operator Store")
    own, headers = mine.customer, mine.world.headers
    before = state(db, theirs)
    attempts = [("PATCH", f"/api/v1/accounts/{own.id}", {}),
                ("POST", "/api/v1/accounts", {"name": "Moved Ltd"}),
                ("POST", f"/api/v1/accounts/{own.id}/contacts",
                 {"first_name": "Eve", "last_name": "Moved", "email": "eve@moved.example", "phone": "+12175550100"})]
    for method, url, body in attempts:
        answers = [client.request(method, url, headers=headers, json={**body, "storefront_id": storefront_id})
                   for storefront_id in (theirs.world.storefront.id, operator_store.id, 999_999_999)]
        assert {a.status_code for a in answers} == {422}, [a.text for a in answers]
        assert all(a.json() == answers[-1].json() for a in answers), [a.text for a in answers]
        assert answers[-1].json()["error"]["fields"] == {"storefront_id": "No such storefront."}
    refused = client.post("/api/v1/accounts", headers=headers,
                          json={"name": "Adopted Ltd", "parent_reseller_id": theirs.world.reseller.id})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "field_not_editable"
    with db.transaction() as session:
        assert session.get(Account, own.id).storefront_id == mine.world.storefront.id
        assert session.query(Contact).filter_by(email="eve@moved.example").count() == 0
        assert session.query(Account).filter(Account.name.in_(["Moved Ltd", "Adopted Ltd"])).count() == 0
    assert state(db, theirs) == before
    own_store = client.patch(f"/api/v1/accounts/{own.id}", headers=headers,
                             json={"storefront_id": mine.world.storefront.id})
    assert own_store.status_code == 200, own_store.text  # its own storefront stays allowed


ALERT = re.compile(r'role="alert">([^<]*)<')


def _console_answer(client, method: str, url: str, data: dict[str, str]) -> tuple[int, list[str]]:
    response = client.request(method, url, data=data if method == "POST" else None, follow_redirects=False)
    return response.status_code, ALERT.findall(response.text)


def claimed_domain(db, account: Account) -> int:
    with db.transaction() as session:
        live = session.get(Account, account.id)
        return domains.claim(session, Actor.system(), live, f"account{account.id}.example").id


def saved_card(db, account: Account) -> int:
    with db.transaction() as session:
        return accounts.add_payment_method(session, Actor.system(), session.get(Account, account.id), {
            "provider": "stripe", "provider_token_id": f"pm_{account.id}", "brand": "visa", "last4": "4242",
            "expiry_month": 12, "expiry_year": 2099}).id


def test_every_account_console_page_answers_a_foreign_id_like_a_missing_one(db, app, client):
    """The console's account and contact pages (and the forms posted to them) with another reseller's or the
    operator's account, contact or address: exactly the answer of an id that does not exist, nothing shown or
    changed; a storefront named in a form outside the reseller's scope is refused like a missing one."""
    mine, theirs = tenant(db, client, "Alpha"), tenant(db, client, "Bravo")
    operator = f.account(db, name="Operator Customer Ltd", storefront_id=f.storefront(db, name="Operator Store").id)
    operator_contact = f.contact(db, operator, f.storefront(db), email="buyer@operator-customer.example")
    cards = {account.id: saved_card(db, account) for account in (mine.customer, theirs.customer, operator)}
    before = state(db, theirs)
    console_sign_in(client, mine.world.staff)
    token = csrf_of(client.get("/console/accounts").text)
    data = {"csrf_token": token, "name": "Taken Over", "active": "true", "line1": "1 Main Street",
            "city": "Springfield", "country": "US"}
    ids = {"account_id": mine.customer.id, "contact_id": mine.contact.id, "order_id": mine.order_id,
           "address_id": mine.customer.addresses[0].id, "domain_id": claimed_domain(db, mine.customer),
           "method_id": cards[mine.customer.id]}
    foreign = [{"account_id": theirs.customer.id, "contact_id": theirs.contact.id, "order_id": theirs.order_id,
                "address_id": theirs.customer.addresses[0].id, "domain_id": claimed_domain(db, theirs.customer),
                "method_id": cards[theirs.customer.id]},
               {"account_id": operator.id, "contact_id": operator_contact.id, "address_id": operator.addresses[0].id,
                "domain_id": claimed_domain(db, operator), "method_id": cards[operator.id],
                "order_id": f.order(db, operator).id}]
    found = sorted(set(routes(app, "/console/accounts/{account_id}")))
    assert len(found) >= 14, found
    secrets = [*theirs.secrets(), operator.name, operator.number, operator_contact.email]
    for method, template in found:
        for slot in PARAM.findall(template):
            missing = _console_answer(client, method, fill(template, {**ids, slot: 999_999_999}, "x"), data)
            for other in foreign:
                url = fill(template, {**ids, slot: other[slot]}, "x")
                answer = _console_answer(client, method, url, data)
                assert answer == missing and answer[0] >= 400, (method, url, answer, missing)
                text = client.get(url).text.lower() if method == "GET" else ""
                assert not [s for s in secrets if s.lower() in text], (method, url)
    record = f"/console/resellers/{mine.world.reseller.id}/customers/{mine.customer.id}"
    for confirm in ("user:{}:deactivate", "order:{}:accept"):  # the confirmation named in a menu link's query
        other = theirs.contact.id if confirm.startswith("user") else theirs.order_id
        answer, missing = (client.get(record, params={"confirm": confirm.format(i)}) for i in (other, 999_999_999))
        assert answer.status_code == missing.status_code == 404, (confirm, answer.text[:300])
        assert not [s for s in secrets if s.lower() in answer.text.lower()], confirm
    stores = (theirs.world.storefront.id, f.storefront(db).id, 999_999_999)  # the operator's, and none at all
    billing = {f"billing_address.{k}": v for k, v in
               {"line1": "1 Main Street", "city": "Springfield", "country": "US", "region": "US-IL"}.items()}
    person = {"first_name": "Eve", "last_name": "Moved", "email": "eve@moved.example", "phone": "+12175550100"}
    forms = [("/console/accounts/new", {"csrf_token": token, **person, "account": "new", "company_name": "Moved Ltd",
                                        "active": "on", **billing}),
             (f"/console/accounts/{mine.customer.id}", {"csrf_token": token, "name": mine.customer.name}),
             (f"/console/accounts/{mine.customer.id}/contacts",
              {"csrf_token": token, "first_name": "Eve", "last_name": "Moved", "email": "eve@moved.example",
               "phone": "+12175550100", "active": "on"})]
    for url, form in forms:
        for store in stores:
            refused = client.post(url, data={**form, "storefront_id": str(store)}, follow_redirects=False)
            assert refused.status_code == 422 and "No such storefront." in refused.text, (url, store)
    assert state(db, theirs) == before
    with db.transaction() as session:
        assert session.get(Account, mine.customer.id).storefront_id == mine.world.storefront.id
        assert session.query(Account).filter_by(name="Moved Ltd").count() == 0
        assert session.query(Contact).filter_by(email="eve@moved.example").count() == 0


def test_a_reseller_cannot_map_a_new_customer_to_an_erp_customer(db, client):
    """An ERP code names the distributor's ERP customer (its credit limit, invoices and statements show to its
    account admins): reseller staff may not set one, taken by another tenant or not, with the same answer."""
    mine, theirs = tenant(db, client, "Alpha"), tenant(db, client, "Bravo")
    with db.transaction() as session:
        session.get(Account, theirs.customer.id).erp_code = "C20000"
    answers = [client.post("/api/v1/accounts", headers=mine.world.headers,
                           json={"name": "Mapped Ltd", "erp_code": code}) for code in ("C20000", "C20002")]
    assert [a.status_code for a in answers] == [422, 422], [a.text for a in answers]
    assert answers[0].json() == answers[1].json() and answers[0].json()["error"]["code"] == "field_not_editable"
    with db.transaction() as session:
        assert session.query(Account).filter_by(name="Mapped Ltd").count() == 0


def test_reseller_staff_see_the_merchants_staff_in_a_history_but_not_their_e_mail(db, client):
    w = world(db, client)
    buyer = customer(db, w, name="History Buyer")
    operator = f.staff(db, "csr", email="csr.private@merchant.example")
    operator_headers = f.token(client, operator)
    assert client.patch(f"/api/v1/accounts/{buyer.id}", json={"customer_group": "gold"},
                        headers=operator_headers).status_code == 200
    assert client.patch(f"/api/v1/accounts/{buyer.id}", json={"rep_code": "R1"}, headers=w.headers).status_code == 200
    colleague = client.post("/api/v1/staff/users", json={"email": "colleague@reseller.example",
                                                         "role": "reseller_admin",
                                                         "reseller_account_id": w.reseller.id},
                            headers=f.token(client, f.staff(db, "admin", email="admin.private@merchant.example")))
    assert colleague.status_code == 201, colleague.text

    seen = client.get(f"/api/v1/accounts/{buyer.id}/events", headers=w.headers).json()
    assert [e["actor_label"] for e in seen if e["action"] == "account.updated"] == [w.staff.email, "merchant staff"]
    by_operator = client.get(f"/api/v1/accounts/{buyer.id}/events", headers=operator_headers).json()
    assert operator.email in [e["actor_label"] for e in by_operator]

    console_sign_in(client, w.staff)
    record = client.get(f"/console/accounts/{buyer.id}").text
    assert "Merchant staff" in record and "private@merchant.example" not in record and w.staff.email in record
    staff_record = client.get(f"/console/staff/{colleague.json()['id']}").text
    assert "Merchant staff" in staff_record and "private@merchant.example" not in staff_record
