"""Demo data for `accountdesk demo`: storefronts, accounts with addresses, contacts, invoices and staff, and the
file ERP's demo folder with an ERP-verified storefront."""

from __future__ import annotations

import base64
import hashlib
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import AccountKind, CustomAttributeDefinition
from accountdesk.contacts.models import Contact, ContactRole, ContactStatus
from accountdesk.core import security
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database, utcnow
from accountdesk.core.security import hash_password
from accountdesk.core.settings import Settings
from accountdesk.erp.demo_data import CASH_ACCOUNT, SHARED_EMAIL, demo_dataset, write_demo_folder
from accountdesk.oidc import keys
from accountdesk.oidc.models import ClientKind, OidcClient
from accountdesk.registration.erp import account_from_erp
from accountdesk.staff.models import StaffUser
from accountdesk.staff_admin.service import create_staff
from accountdesk.storefronts.models import Storefront

DEMO_PASSWORD = "demo-password-2026"
# The demo storefront's OpenID Connect client: public (PKCE), returning to a page that shows the code. The PKCE
# verifier is fixed so that the printed authorize URL and token command fit together; a real client makes a new one
# for every sign-in.
DEMO_CLIENT_ID = "demo-shop"
DEMO_REDIRECT = "https://oidcdebugger.com/debug"
DEMO_VERIFIER = "demo-pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"

CUSTOMERS = [
    ("Acme Office Supplies", "orders@acme.example", "+49 30 1234567",
     ("Friedrichstr. 12", "Berlin", "DE-BE", "10117", "DE")),
    ("Blue Harbor Trading", "hello@blueharbor.example", "+44 20 7946 0958",
     ("1 Dock Road", "London", "", "E16 1AA", "GB")),
    ("Cafe Lumière", "contact@lumiere.example", "+33 1 42 68 53 00",
     ("8 rue de Rivoli", "Paris", "FR-75C", "75004", "FR")),
    ("Northwind Traders", "buyers@northwind.example", "+1 415 555 0100",
     ("500 Market St", "San Francisco", "US-CA", "94105", "US")),
]


def write_erp_folder(folder: Path) -> bool:
    """The file ERP's demo data in `folder` (ACCOUNTDESK_ERP_FILE_DIR), unless it already has customers."""
    if (folder / "customers.csv").exists():
        return False
    write_demo_folder(folder)
    return True


def load_erp_store(session: Session) -> None:
    """The ERP-verified storefront, and one ERP e-mail with a login on two accounts of one customer group (the
    account switcher)."""
    store = Storefront(slug="erp", name="Demo Trade Counter (ERP)", registration_mode="erp_verified",
                       erp_cash_account_code=CASH_ACCOUNT, erp_excluded_account_codes="C20004", default_currency="GBP",
                       sign_in_text="Trade customers: sign in with the e-mail address we hold for you.")
    session.add(store)
    session.flush()
    data = demo_dataset()
    password_hash = hash_password(DEMO_PASSWORD)
    for erp_contact in (c for c in data.contacts if c.email == SHARED_EMAIL):
        erp_account = next(a for a in data.accounts if a.code == erp_contact.account_code)
        account = account_from_erp(session, Actor.system(), erp_account, store)
        session.add(Contact(account_id=account.id, storefront_id=store.id, first_name=erp_contact.first_name,
                            last_name=erp_contact.last_name, email=SHARED_EMAIL, role=ContactRole.account_admin,
                            status=ContactStatus.active, password_hash=password_hash, email_verified_at=utcnow(),
                            erp_contact_code=erp_contact.code))
        session.flush()
        accounts.reindex(session, account)


def load_oidc_client(session: Session, storefront: Storefront) -> None:
    keys.ensure_key(session)
    session.add(OidcClient(client_id=DEMO_CLIENT_ID, storefront_id=storefront.id, name="Demo shop (OIDC)",
                           kind=ClientKind.public, redirect_uris=[DEMO_REDIRECT],
                           post_logout_redirect_uris=[DEMO_REDIRECT], scopes=["openid", "profile", "email", "account"]))


def oidc_instructions(base_url: str, slug: str = "main") -> list[str]:
    """How to try the demo storefront's OpenID Connect provider: discovery, a ready authorize URL, the token call."""
    issuer = f"{base_url.rstrip('/')}/s/{slug}"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(DEMO_VERIFIER.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": DEMO_REDIRECT,
                       "scope": "openid profile email account", "state": "demo", "nonce": "demo",
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    return [f"OpenID Connect discovery: {issuer}/.well-known/openid-configuration",
            f"sign in through it (client {DEMO_CLIENT_ID}): {issuer}/oidc/authorize?{query}",
            f"then: curl -d grant_type=authorization_code -d client_id={DEMO_CLIENT_ID} "
            f"-d redirect_uri={DEMO_REDIRECT} -d code_verifier={DEMO_VERIFIER} -d code=<the code> {issuer}/oidc/token"]


def load(settings: Settings, db: Database | None = None) -> bool:
    """Load once; returns False when demo data is already there."""
    security.bind(settings)
    db = db or Database(settings.database_url)
    write_erp_folder(settings.erp_file_dir)
    with db.transaction() as session:
        if session.scalar(select(StaffUser.id).limit(1)) is not None:
            return False
        system = Actor.system()
        main = Storefront(slug="main", name="Demo Store", sign_in_text="Welcome back. Sign in to order.",
                          allow_manual_password=True, staff_notification_to="approvals@example.com")
        trade = Storefront(slug="trade", name="Demo Trade Portal", registration_mode="approval",
                           staff_notification_to="approvals@example.com", account_number_prefix="T")
        session.add_all([main, trade])
        session.add(CustomAttributeDefinition(key="industry", label="Industry", type="choice",
                                              choices=["Retail", "Hospitality", "Manufacturing"], position=1))
        session.add(CustomAttributeDefinition(key="employees", label="Employees", type="number", position=2))
        session.flush()
        password_hash = hash_password(DEMO_PASSWORD)
        for i, (name, email, phone, (line1, city, region, postcode, country)) in enumerate(CUSTOMERS):
            account = accounts.create_account(
                session, system, None,
                {"name": name, "email": email, "phone": phone, "kind": AccountKind.b2b, "storefront_id": main.id,
                 "customer_group": "trade" if i % 2 == 0 else "retail"},
                billing_address={"line1": line1, "city": city, "region": region, "postcode": postcode,
                                 "country": country})
            accounts.record_invoice(session, system, account, {"number": f"INV-{1001 + i}",
                                                               "issued_on": date.today() - timedelta(days=30),
                                                               "total": Decimal("420.00"), "currency": "EUR"})
            first = ["Anna", "Ben", "Chloé", "Dan"][i]
            contact = Contact(account_id=account.id, storefront_id=main.id, first_name=first, last_name="Example",
                              email=f"{first.lower().replace('é', 'e')}@example.com", role=ContactRole.account_admin,
                              status=ContactStatus.active, password_hash=password_hash, email_verified_at=utcnow())
            session.add(contact)
            session.flush()
            accounts.reindex(session, account)
        load_erp_store(session)
        load_oidc_client(session, main)
        create_staff(session, "admin@example.com", DEMO_PASSWORD, "admin", "Alex Morgan")
        create_staff(session, "csr@example.com", DEMO_PASSWORD, "csr", "Sam Rivera")
        create_staff(session, "approver@example.com", DEMO_PASSWORD, "approver", "Jo Baker")
    return True
