"""Factory functions that write real rows through the services or the models."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database, utcnow
from accountdesk.core.security import hash_password
from accountdesk.core.settings import get_settings
from accountdesk.orders import service as orders
from accountdesk.orders.models import Order
from accountdesk.staff import second_factor
from accountdesk.staff.models import StaffUser
from accountdesk.staff_admin.service import create_staff
from accountdesk.storefronts.models import Storefront
from accountdesk.webhooks import service as webhooks
from accountdesk.webhooks.events import event_body
from accountdesk.webhooks.models import WebhookDelivery

PASSWORD = "correct-horse-battery-staple"
_seq = itertools.count(1)


def storefront(db: Database, **fields: Any) -> Storefront:
    n = next(_seq)
    with db.transaction() as session:
        row = Storefront(**{"slug": f"store{n}", "name": f"Store {n}", **fields})
        session.add(row)
        session.flush()
        return row


def account(db: Database, *, billing: dict[str, Any] | None = None, **fields: Any) -> Account:
    n = next(_seq)
    data = {"name": f"Account {n}", "email": f"account{n}@example.com", **fields}
    with db.transaction() as session:
        row = accounts.create_account(session, Actor.system(), None, data, billing_address=billing or {
            "line1": f"{n} Main Street", "city": "Springfield", "region": "US-IL", "postcode": "62701",
            "country": "US"})
        session.flush()
        return row


def contact(db: Database, account: Account, storefront: Storefront, *, password: str | None = PASSWORD,
            **fields: Any) -> Contact:
    n = next(_seq)
    data = {"first_name": "Pat", "last_name": f"Buyer{n}", "email": f"buyer{n}@example.com", "status": "active",
            **fields}
    with db.transaction() as session:
        row = Contact(account_id=account.id, storefront_id=storefront.id,
                      password_hash=hash_password(password) if password else None, **data)
        session.add(row)
        session.flush()
        accounts.reindex(session, session.get(Account, account.id))
        return row


def order(db: Database, account: Account, lines: list[dict[str, Any]] | None = None, **fields: Any) -> Order:
    """An order of the account placed by staff through orders.service (priced lines, no reseller)."""
    with db.transaction() as session:
        placed = orders.place_order(session, Actor.system(), session.get(Account, account.id), None, lines or [
            {"sku": f"SKU-{next(_seq)}", "name": "Widget", "quantity": 2, "unit_cost": Decimal("10.00")}],
            may_price=True)
        for name, value in fields.items():
            setattr(placed, name, value)
        session.flush()
        return placed


def webhook_endpoint(db: Database, store: Storefront | None, url: str = "https://hooks.example.com/accountdesk",
                     ) -> tuple[int, int]:
    """An endpoint (through the service) with one failed delivery in its log, not queued: (endpoint id, delivery
    id). Nothing is sent to its URL."""
    with db.transaction() as session:
        endpoint, _ = webhooks.create_endpoint(session, Actor.system(), get_settings(), url=url,
                                               event_types=["account.created"],
                                               storefront_id=store.id if store else None)
        delivery = WebhookDelivery(endpoint_id=endpoint.id, message_id="msg_page_world", event_type="account.created",
                                   subject="account-0", status="failed", attempts=1, response_status=500,
                                   last_error="HTTP 500", body=event_body("account.created", {}, utcnow()))
        session.add(delivery)
        session.flush()
        return endpoint.id, delivery.id


def staff(db: Database, role: str = "admin", *, reseller_account_id: int | None = None,
          email: str | None = None) -> StaffUser:
    with db.transaction() as session:
        return create_staff(session, email or f"{role}{next(_seq)}@staff.example", PASSWORD, role,
                            reseller_account_id=reseller_account_id)


def token(client: TestClient, user: StaffUser) -> dict[str, str]:
    """Authorization header for a staff user, obtained through the real token endpoint."""
    response = client.post("/api/v1/staff/tokens", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def enrol_totp(db: Database, user: StaffUser) -> str:
    """Turn two-step sign-in on through the service (as the setup page does); returns the secret. The step used to
    confirm is forgotten, so that a test can use the current code next."""
    enrolment = second_factor.start_enrolment(user)
    with db.transaction() as session:
        second_factor.enable(session, session.get(StaffUser, user.id), enrolment,
                             _usable_code(enrolment.secret, session.get(StaffUser, user.id).totp_last_step))
        session.get(StaffUser, user.id).totp_last_step = None
    return enrolment.secret


def totp_code(db: Database, user: StaffUser, secret: str) -> str:
    """A code the server takes now (two sign-ins per 30 seconds at most: see _usable_code)."""
    with db.transaction() as session:
        return _usable_code(secret, session.get(StaffUser, user.id).totp_last_step)


def _usable_code(secret: str, last_step: int | None) -> str:
    """The current time step's code, or the next one's when that was already used (the server accepts one step of
    clock drift either way)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(max(totp.timecode(datetime.now(UTC)), (last_step or 0) + 1))
