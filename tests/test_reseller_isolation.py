"""Tenant isolation: every reseller route, API and console, called by one reseller's staff with another reseller's
ids answers 404 exactly as for an id that does not exist, shows none of the other reseller's data, and changes
nothing; the same route with the caller's own ids does not answer 404 (so the ids in the test are right)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.orders.models import Order
from accountdesk.resellers.models import Subscription
from tests import factories as f
from tests.page_world import app_routes
from tests.reseller_world import LINES, NEW_CUSTOMER, NEW_USER, console_sign_in, csrf_of, customer, subscription, \
    world

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
    order = client.post(f"/api/v1/storefronts/{w.storefront.slug}/orders", json={"lines": LINES},
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
                session.query(Order).filter_by(account_id=t.customer.id).count())


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
