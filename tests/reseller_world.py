"""A reseller with its storefront, its staff and its customers, built through the real services (reseller tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database
from accountdesk.resellers import service as resellers
from accountdesk.staff.models import StaffUser
from accountdesk.storefronts.models import Storefront
from tests import factories as f

NEW_CUSTOMER = {"name": "Brightwater Trading Ltd", "email": "Orders@Brightwater.example", "line1": "12 High Street",
                "city": "Leeds", "country": "GB", "region": "", "postcode": "ls1 4ap", "phone": "0113 496 0123"}
NEW_USER = {"first_name": "Dana", "last_name": "Scully", "email": "dana@brightwater.example", "language": "fr",
            "date_format": "YYYY-MM-DD"}
LINES = [{"sku": "MS-365-BP", "name": "Microsoft 365 Business Premium", "quantity": 3, "unit_cost": "18.50",
          "auto_provisioned": True}]
BUYER_LINES = [{k: v for k, v in line.items() if k != "unit_cost"} for line in LINES]  # a buyer's token prices nothing


@dataclass
class World:
    reseller: Account
    storefront: Storefront
    staff: StaffUser
    headers: dict[str, str]

    @property
    def base(self) -> str:
        return f"/api/v1/resellers/{self.reseller.id}"


def world(db: Database, client: TestClient | None = None, *, payment_method: str = "cash",
          markup: str = "0", name: str | None = None) -> World:
    reseller = f.account(db, kind="reseller", payment_method=payment_method, markup_percent=Decimal(markup),
                         **({"name": name} if name else {}))
    storefront = f.storefront(db, reseller_account_id=reseller.id, name=f"{reseller.name} Store")
    staff = f.staff(db, "reseller_admin", reseller_account_id=reseller.id)
    return World(reseller, storefront, staff, f.token(client, staff) if client else {})


def customer(db: Database, w: World, **fields: Any) -> Account:
    return f.account(db, parent_reseller_id=w.reseller.id, storefront_id=w.storefront.id, **fields)


def subscription(db: Database, w: World, account: Account, amount: str, status: str = "active",
                 kind: str = "subscription") -> None:
    with db.transaction() as session:
        live = resellers.get_customer(session, w.reseller, account.id, lock=True)
        resellers.record_subscription(session, Actor.system(), w.reseller, live,
                                      {"sku": "SKU-1", "name": "Seat", "monthly_amount": Decimal(amount),
                                       "status": status, "kind": kind, "starts_on": date(2026, 1, 1)})


def signed_in_contact(db: Database, client: TestClient, w: World, account: Account,
                      **fields: Any) -> tuple[Contact, dict[str, str]]:
    """An active contact of the customer on the reseller's storefront, signed in through the storefront API."""
    contact = f.contact(db, account, w.storefront, **fields)
    response = client.post(f"/api/v1/storefronts/{w.storefront.slug}/sessions",
                           json={"email": contact.email, "password": f.PASSWORD})
    assert response.status_code == 201, response.text
    return contact, {"Authorization": f"Bearer {response.json()['access_token']}"}


def console_sign_in(client: TestClient, user: StaffUser) -> None:
    """Sign a staff user in to the console through the real form (CSRF token from the page)."""
    form = client.get("/console/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    response = client.post("/console/sign-in", data={"csrf_token": token, "email": user.email,
                                                     "password": f.PASSWORD}, follow_redirects=False)
    assert response.status_code == 303, response.text


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
