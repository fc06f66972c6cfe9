"""Factory functions that write real rows through the services or the models."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database
from accountdesk.core.security import hash_password
from accountdesk.staff.models import StaffUser
from accountdesk.staff.service import create_staff
from accountdesk.storefronts.models import Storefront

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
            "line1": f"{n} Main Street", "city": "Springfield", "region": "US-IL", "postcode": "62701", "country": "US"})
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
