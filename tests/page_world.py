"""Every page the app serves, with one of everything it can show: the app's GET routes (found in its router, so a new
page is visited without editing a list), the ids that fill their path parameters, and the people who sign in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Route

from accountdesk.accounts.models import Account
from accountdesk.carts.models import Cart, CartLine, Favourite
from accountdesk.contacts.models import Contact
from accountdesk.core.db import Database
from accountdesk.core.pages import PageRoute
from accountdesk.imports.models import Import
from accountdesk.staff.models import StaffUser
from accountdesk.storefronts.models import Storefront
from tests import factories as f
from tests.reseller_world import World, console_sign_in, csrf_of, customer, world

PARAM = re.compile(r"{(\w+)}")


def app_routes(app) -> Iterator[BaseRoute]:
    """Every route of the app, looking inside included routers."""
    stack = list(app.routes)
    while stack:
        route = stack.pop(0)
        if hasattr(route, "original_router"):
            stack.extend(route.original_router.routes)
        else:
            yield route


def get_paths(app, *, pages_only: bool = False) -> list[str]:
    """The path templates of the app's GET routes: its pages (PageRoute), or every route (API, docs) too."""
    found = []
    for route in app_routes(app):
        if not isinstance(route, (APIRoute, Route)) or "GET" not in (route.methods or ()):
            continue
        if pages_only and not isinstance(route, PageRoute):
            continue
        found.append(route.path)
    return sorted(set(found))


def fill(path: str, ids: dict[str, object]) -> str:
    """The path with its parameters replaced; a parameter the world has no id for is a test to extend."""
    return PARAM.sub(lambda m: str(ids[m.group(1)]), path)


@dataclass
class PageWorld:
    """A storefront (registration with approval, open to visitors) with a registered account and its login, a
    reseller with a customer, and an administrator."""

    store: Storefront
    account: Account
    contact: Contact
    reseller: World
    customer: Account
    admin: StaffUser
    webhook: tuple[int, int]  # an endpoint of the storefront and a failed delivery in its log
    import_id: int = 0
    order_id: int = 0  # an order of the account (its login has a cart and a favourite too)
    customer_user_id: int = 0  # a storefront user of the reseller's customer

    def ids(self) -> dict[str, object]:
        return {"slug": self.store.slug, "account_id": self.account.id, "contact_id": self.contact.id,
                "reseller_id": self.reseller.reseller.id, "customer_id": self.customer.id, "code": "US",
                "order_id": self.order_id, "token": "no-such-token", "user_id": self.admin.id, "domain_id": 0,
                "decision": "approve", "import_id": self.import_id,
                "client_id": "no-such-client", "subject": "no-such-buyer",
                "endpoint_id": self.webhook[0], "delivery_id": self.webhook[1], "language": "en"}


def page_world(db: Database) -> PageWorld:
    store = f.storefront(db, name="Harbour Supplies", registration_mode="approval", anonymous_access=True,
                         allow_reseller_registration=True)
    account = f.account(db, name="Lighthouse Traders", storefront_id=store.id)
    contact = f.contact(db, account, store, first_name="Robin", last_name="Keel", email="robin@lighthouse.example")
    reseller = world(db, name="Channel Partner")
    admin = f.staff(db, "admin")
    cafe = customer(db, reseller, name="Quayside Cafe")
    return PageWorld(store, account, contact, reseller, cafe, admin, f.webhook_endpoint(db, store),
                     previewed_import(db, store, admin), shopping(db, account, contact),
                     f.contact(db, cafe, reseller.storefront, email="barista@quayside.example").id)


def shopping(db: Database, account: Account, contact: Contact) -> int:
    """An order of the account, and its login's cart and favourite (the account record shows them): the order's id."""
    with db.transaction() as session:
        session.add_all([Cart(contact_id=contact.id, lines=[CartLine(sku="ROPE-10", name="Mooring rope", quantity=2,
                                                                     unit_price=Decimal("12.50"))]),
                         Favourite(contact_id=contact.id, sku="BUOY-1", name="Fender buoy")])
    return f.order(db, account).id


def previewed_import(db: Database, store: Storefront, admin: StaffUser) -> int:
    """An uploaded customer file waiting for "Import", with a row that needs attention (the preview page)."""
    with db.transaction() as session:
        record = Import(storefront_id=store.id, staff_user_id=admin.id, actor_label=admin.email,
                        file_name="customers.csv", stored_name="kept.csv", status="uploaded", options={},
                        counts={"counts": {"rows": 2, "created": 1, "updated": 0, "unchanged": 0, "skipped": 0,
                                           "failed": 1, "accounts_created": 1, "accounts_updated": 0,
                                           "addresses_created": 1, "addresses_updated": 0, "contacts_created": 1,
                                           "contacts_updated": 0, "welcome_emails": 0},
                                "rows": [{"line": 3, "outcome": "failed", "account": "C1", "contact": "a@b.example",
                                          "messages": ["billing_region: Choose a state or province."]}]})
        session.add(record)
        session.flush()
        return record.id


def storefront_sign_in(client: TestClient, store: Storefront, email: str, password: str = f.PASSWORD) -> None:
    """Sign a login in to the storefront through its sign-in form (session cookie in the client)."""
    form = client.get(f"/s/{store.slug}/sign-in")
    response = client.post(f"/s/{store.slug}/sign-in", data={"csrf_token": csrf_of(form.text), "email": email,
                                                             "password": password}, follow_redirects=False)
    assert response.status_code == 303, response.text


def sign_in_everywhere(client: TestClient, w: PageWorld) -> None:
    console_sign_in(client, w.admin)
    storefront_sign_in(client, w.store, w.contact.email)
