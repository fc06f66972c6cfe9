"""One world for the access tests (route × credential matrix, foreign ids): the operator with its staff, storefronts
and a customer, and two resellers (tenants A and B) with a storefront, customers, logins, a subscription and a
pending order each, built through the real services; the headers of every kind of caller; and the objects that a
request uses up (tokens, pending orders, cart lines …), made fresh for each call by `Fresh`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, Address, SavedPaymentMethod
from accountdesk.carts import service as carts
from accountdesk.carts.models import Cart, CartLine, Favourite
from accountdesk.carts.schemas import CartLineIn, FavouriteIn
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactStatus
from accountdesk.core import outbox, tokens
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database
from accountdesk.core.models import SingleUseToken
from accountdesk.core.settings import get_settings
from accountdesk.domains import service as domains
from accountdesk.oidc import clients as oidc_clients
from accountdesk.oidc.claims import subject_of
from accountdesk.oidc.schemas import ClientIn
from accountdesk.orders import service as orders
from accountdesk.orders.models import Order
from accountdesk.registration import instant
from accountdesk.registration import service as registration
from accountdesk.registration.erp import PUSH
from accountdesk.resellers.models import Subscription
from accountdesk.signin import reverification
from accountdesk.signin import service as signin
from accountdesk.staff.models import StaffUser
from accountdesk.storefronts.models import Storefront
from tests import factories as f
from tests.erp_world import erp_store
from tests.reseller_world import BUYER_LINES, World, customer, subscription, world

CREDENTIALS = ("anonymous", "admin", "csr", "approver", "reseller_a", "reseller_b", "buyer_a", "buyer_b")
OTHER_PASSWORD = "another-horse-battery-staple"
INSTANT_EMAIL, INSTANT_CODE = "ravi@pineoak.example", "C20004"  # demo ERP contact for instant registration
STAFF_INSTANT_EMAIL, STAFF_INSTANT_CODE = "sam@kestrel-catering.example", "C20002"  # … for staff instant accounts
TOKEN_LIFETIME = timedelta(hours=1)


@dataclass
class Tenant:
    """A reseller with one of everything. `buyer` (an account admin of `customer`) signs in as buyer_x; its e-mail
    has a second login, `twin` (another password), on `sibling` in the same customer group (account switch);
    `chooser` has logins with one password on both (account chooser); staff actions hit `spare`. `colleague` is a
    staff user of the reseller (invited by its admin, not yet accepted) that the reseller's admin administers."""

    world: World
    customer: Account
    sibling: Account
    buyer: Contact
    twin: Contact
    chooser: tuple[Contact, Contact]
    spare: Contact
    colleague: StaffUser
    address_id: int
    subscription_id: int
    order_id: int
    order_number: str

    @property
    def storefront(self) -> Storefront:
        return self.world.storefront

    def ids(self) -> dict[str, Any]:
        """Every id a request can name, as this tenant's (path parameters, body and query fields by name)."""
        reseller, store = self.world.reseller.id, self.storefront.id
        return {"reseller_id": reseller, "parent_reseller_id": reseller, "reseller_account_id": reseller,
                "customer_id": self.customer.id, "account_id": self.customer.id, "contact_id": self.spare.id,
                "user_id": self.spare.id, "address_id": self.address_id, "subscription_id": self.subscription_id,
                "order_id": self.order_id, "slug": self.storefront.slug, "storefront_id": store,
                "storefront": store, "code": "GB", "action": "activate", "staff_user_id": self.colleague.id}

    def secrets(self) -> list[str]:
        """What no other tenant may ever read: names, e-mails and numbers."""
        people = [self.buyer, self.spare, *self.chooser]
        return [self.world.reseller.name, self.world.reseller.number, self.customer.name, self.customer.number,
                self.customer.email, self.sibling.name, self.sibling.number, self.order_number,
                *(c.email for c in people)]


@dataclass
class AccessWorld:
    db: Database
    client: TestClient
    staff: dict[str, StaffUser]
    a: Tenant
    b: Tenant
    operator_store: Storefront
    operator_customer: Account
    operator_contact: Contact
    erp_store: Storefront
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def tenant_of(self, credential: str) -> Tenant:
        return self.b if credential.endswith("_b") else self.a

    def operator_ids(self) -> dict[str, Any]:
        """The operator's own records, as ids a reseller's or a buyer's request could name."""
        customer, store = self.operator_customer, self.operator_store
        return {"customer_id": customer.id, "account_id": customer.id, "contact_id": self.operator_contact.id,
                "user_id": self.operator_contact.id, "address_id": customer.addresses[0].id,
                "storefront_id": store.id, "storefront": store.id, "slug": store.slug,
                "staff_user_id": self.staff["csr"].id}

    def operator_secrets(self) -> list[str]:
        return [self.operator_customer.name, self.operator_customer.number, self.operator_customer.email,
                self.operator_contact.email]

    def staff_emails(self, reseller_id: int | None) -> list[str]:
        """The e-mails of a reseller's staff users (None: the operator's), those invited by earlier requests too."""
        with self.db.transaction() as session:
            return list(session.scalars(select(StaffUser.email)
                                        .where(StaffUser.reseller_account_id.is_not_distinct_from(reseller_id))))

    def foreign_secrets(self, credential: str, *, operator_staff: bool = True) -> list[str]:
        """What a tenant's caller must never read: the other tenant's data and staff, the operator's customers' data
        and the operator's staff (`operator_staff=False`: where a history names who acted on the caller's records)."""
        other = self.a if credential.endswith("_b") else self.b
        staff = [*self.staff_emails(other.world.reseller.id), *(self.staff_emails(None) if operator_staff else [])]
        return [*other.secrets(), *self.operator_secrets(), *staff]

    def sign_in_all(self) -> None:
        """Fresh headers for every caller (after a route that ended sessions)."""
        self.headers = {"anonymous": {}}
        for role in ("admin", "csr", "approver"):
            self.headers[role] = f.token(self.client, self.staff[role])
        for name, tenant in (("a", self.a), ("b", self.b)):
            self.headers[f"reseller_{name}"] = f.token(self.client, tenant.world.staff)
            self.headers[f"buyer_{name}"] = bearer(self.client, tenant.storefront, tenant.buyer.email)


def bearer(client: TestClient, store: Storefront, email: str, password: str = f.PASSWORD) -> dict[str, str]:
    response = client.post(f"/api/v1/storefronts/{store.slug}/sessions", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _tenant(db: Database, client: TestClient, name: str, erp_code: str | None) -> Tenant:
    w = world(db, client, payment_method="credit_card", name=f"{name} Resale Ltd")
    with db.transaction() as session:
        session.get(Storefront, w.storefront.id).allow_manual_password = True
    domain = f"{name.lower()}-customer.example"
    group = f"group-{name.lower()}"
    buyer_account = customer(db, w, name=f"{name} Customer Ltd", email=f"orders@{domain}", customer_group=group,
                             **({"erp_code": erp_code} if erp_code else {}))
    sibling = customer(db, w, name=f"{name} Sibling Ltd", email=f"office@{domain}", customer_group=group)
    buyer = f.contact(db, buyer_account, w.storefront, email=f"buyer@{domain}", role="account_admin")
    twin = f.contact(db, sibling, w.storefront, email=buyer.email, role="account_admin", password=OTHER_PASSWORD)
    chooser = (f.contact(db, buyer_account, w.storefront, email=f"chooser@{domain}"),
               f.contact(db, sibling, w.storefront, email=f"chooser@{domain}"))
    spare = f.contact(db, buyer_account, w.storefront, email=f"spare@{domain}")
    invited = client.post("/api/v1/staff/users", headers=w.headers,
                          json={"email": f"colleague@{name.lower()}-resale.example", "name": f"{name} Colleague"})
    assert invited.status_code == 201, invited.text
    with db.transaction() as session:
        colleague = session.get(StaffUser, invited.json()["id"])
    subscription(db, w, buyer_account, "10")
    with db.transaction() as session:
        live = session.get(Account, buyer_account.id)
        accounts.record_invoice(session, Actor.system(), live, {"number": f"INV-{name.upper()}",
                                                                "issued_on": live.created_at.date()})
        order = orders.place_order(session, Actor.system(), live, session.get(Account, w.reseller.id), BUYER_LINES,
                                   may_price=False, contact=session.get(Contact, buyer.id))
        subscription_id = session.scalar(select(Subscription.id).where(Subscription.account_id == live.id))
        address_id, order_id, order_number = live.addresses[0].id, order.id, order.number
    return Tenant(w, buyer_account, sibling, buyer, twin, chooser, spare, colleague, address_id, subscription_id,
                  order_id, order_number)


def build(db: Database, client: TestClient) -> AccessWorld:
    staff = {role: f.staff(db, role) for role in ("admin", "csr", "approver")}
    a = _tenant(db, client, "Alpha", erp_code="C20000")  # its buyer reads its finances from the demo ERP
    b = _tenant(db, client, "Bravo", erp_code=None)
    operator_store = f.storefront(db, name="Operator Store")
    operator_customer = f.account(db, name="Operator Customer Ltd", email="orders@operator-customer.example",
                                  storefront_id=operator_store.id)
    operator_contact = f.contact(db, operator_customer, operator_store, email="buyer@operator-customer.example")
    access = AccessWorld(db, client, staff, a, b, operator_store, operator_customer, operator_contact, erp_store(db))
    access.sign_in_all()
    return access


# --- what a request uses up, made fresh for each call ----------------------------------------------------------------

class Fresh:
    """Makers of per-call ids, by what the route needs: each returns {name: value} for the path, body or query."""

    @staticmethod
    def address(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            added = accounts.add_address(session, Actor.system(), session.get(Account, t.customer.id),
                                         {"line1": "1 Spare Road", "city": "Springfield", "country": "US"})
            return {"address_id": added.id}

    @staticmethod
    def payment_method(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            added = accounts.add_payment_method(session, Actor.system(), session.get(Account, t.customer.id), {
                "provider": "stripe", "provider_token_id": f"pm_spare_{next(w.counter)}", "brand": "visa",
                "last4": "4242", "expiry_month": 12, "expiry_year": 2099})
            return {"method_id": added.id}

    @staticmethod
    def choice(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            offered = [session.get(Contact, c.id) for c in t.chooser]
            token = signin.offer_choice(session, session.get(Storefront, t.storefront.id), offered)
        return {"choice_token": token, "contact_id": t.chooser[0].id}

    @staticmethod
    def _token(w: AccessWorld, purpose: str, contact_id: int, **fields: Any) -> dict[str, Any]:
        with w.db.transaction() as session:
            contact = session.get(Contact, contact_id)
            for name, value in fields.items():
                setattr(contact, name, value)
            return {"token": tokens.issue(session, purpose, TOKEN_LIFETIME, contact_id=contact_id)}

    @classmethod
    def reset(cls, w: AccessWorld, t: Tenant) -> dict[str, Any]:
        return cls._token(w, contacts.RESET, t.spare.id)

    @classmethod
    def activation(cls, w: AccessWorld, t: Tenant) -> dict[str, Any]:
        return cls._token(w, contacts.ACTIVATION, t.spare.id)

    @classmethod
    def verification(cls, w: AccessWorld, t: Tenant) -> dict[str, Any]:
        return cls._token(w, registration.VERIFY_EMAIL, t.spare.id)

    @classmethod
    def reverification(cls, w: AccessWorld, t: Tenant) -> dict[str, Any]:
        return cls._token(w, reverification.REVERIFICATION, t.chooser[1].id, status=ContactStatus.expired)

    @staticmethod
    def claim(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            answer = registration.issue_claim(session, session.get(Storefront, t.storefront.id), t.customer.id)
        return {"token": answer["claim_token"]}

    @staticmethod
    def instant_link(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        """A link for the demo ERP contact, whose earlier login (made by a previous call) is removed first."""
        with w.db.transaction() as session:
            session.execute(delete(Contact).where(Contact.email == INSTANT_EMAIL,
                                                  Contact.storefront_id == w.erp_store.id))
            token = tokens.issue(session, instant.PURPOSE, instant.LIFETIME,
                                 data={"email": INSTANT_EMAIL, "storefront_id": w.erp_store.id})
        return {"token": token, "slug": w.erp_store.slug}

    @staticmethod
    def pending_registration(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        account = f.account(w.db, status="pending_approval", storefront_id=t.storefront.id)
        return {"account_id": account.id}

    @staticmethod
    def pending_contact(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        return {"contact_id": f.contact(w.db, t.customer, t.storefront, status="pending_approval").id}

    @staticmethod
    def pending_order(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            order = orders.place_order(session, Actor.system(), session.get(Account, t.customer.id),
                                       session.get(Account, t.world.reseller.id), BUYER_LINES, may_price=False,
                                       contact=session.get(Contact, t.buyer.id))
            return {"order_id": order.id}

    @staticmethod
    def failed_push(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            row = outbox.enqueue(session, PUSH, {"account_id": w.operator_customer.id, "reason": "test"})
            row.status = "failed"
            session.flush()
            return {"message_id": row.id}

    @staticmethod
    def webhook_endpoint(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        """An operator-wide endpoint with a failed delivery in its log."""
        endpoint_id, delivery_id = f.webhook_endpoint(w.db, None)
        return {"endpoint_id": endpoint_id, "delivery_id": delivery_id}

    @staticmethod
    def staff_with_second_factor(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        """A staff user of the tenant with two-step sign-in on (its removal is what the call uses up)."""
        user = f.staff(w.db, "reseller_admin", reseller_account_id=t.world.reseller.id)
        f.enrol_totp(w.db, user)
        return {"staff_user_id": user.id}

    @staticmethod
    def erasable(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        """A login of its own e-mail: its erasure is what the call uses up."""
        email = f"erasable{next(w.counter)}@example.org"
        return {"contact_id": f.contact(w.db, t.customer, t.storefront, email=email).id}

    @staticmethod
    def domain(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            claimed = domains.claim(session, Actor.system(), session.get(Account, t.customer.id),
                                    f"claimed{next(w.counter)}.example")
            return {"domain_id": claimed.id}

    @staticmethod
    def cart_line(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            sku = f"LINE-{next(w.counter)}"
            cart = carts.add_line(session, session.get(Contact, t.buyer.id),
                                  CartLineIn(sku=sku, quantity=1, unit_price=Decimal("1")))
            return {"line_id": next(line.id for line in cart.lines if line.sku == sku)}

    @staticmethod
    def favourite(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            favourite, _ = carts.add_favourite(session, session.get(Contact, t.buyer.id),
                                               FavouriteIn(sku=f"FAV-{next(w.counter)}"))
            session.flush()
            return {"favourite_id": favourite.id}


    @staticmethod
    def oidc_client(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            client, _ = oidc_clients.register(session, Actor.system(), session.get(Storefront, t.storefront.id),
                                              ClientIn(name="Shop", redirect_uris=["https://shop.example/cb"]),
                                              get_settings())
            return {"client_id": client.client_id}

    @staticmethod
    def subject(w: AccessWorld, t: Tenant) -> dict[str, Any]:
        with w.db.transaction() as session:
            return {"subject": subject_of(session, t.buyer.id)}


def snapshot(db: Database, reseller_id: int | None) -> tuple:
    """Everything of a tenant (a reseller, or the operator: None) a request could change: its accounts, logins,
    addresses, saved payment methods, subscriptions, orders, carts and favourites, its staff users and their
    invitation links (rows made later by `Fresh` included)."""
    with db.transaction() as session:
        mine = select(Account.id).where(Account.parent_reseller_id == reseller_id if reseller_id else
                                        Account.parent_reseller_id.is_(None))
        logins = select(Contact.id).where(Contact.account_id.in_(mine))
        staff = select(StaffUser.id).where(StaffUser.reseller_account_id.is_not_distinct_from(reseller_id))
        rows = [
            session.execute(select(Account.id, Account.name, Account.status, Account.storefront_id, Account.email,
                                   Account.phone, Account.rep_code, Account.markup_percent, Account.erp_code,
                                   Account.order_approval_required, Account.monthly_run_rate)
                            .where((Account.id.in_(mine)) | (Account.id == reseller_id))
                            .order_by(Account.id)).all(),
            session.execute(select(Contact.id, Contact.account_id, Contact.storefront_id, Contact.status,
                                   Contact.password_hash, Contact.email, Contact.language, Contact.role)
                            .where(Contact.id.in_(logins)).order_by(Contact.id)).all(),
            session.execute(select(Address.id, Address.line1, Address.is_billing)
                            .where(Address.account_id.in_(mine)).order_by(Address.id)).all(),
            session.execute(select(SavedPaymentMethod.id, SavedPaymentMethod.contact_id)
                            .where(SavedPaymentMethod.account_id.in_(mine)).order_by(SavedPaymentMethod.id)).all(),
            session.execute(select(Subscription.id, Subscription.status, Subscription.quantity)
                            .where(Subscription.account_id.in_(mine)).order_by(Subscription.id)).all(),
            session.execute(select(Order.id, Order.status).where(Order.account_id.in_(mine)).order_by(Order.id)).all(),
            session.execute(select(CartLine.id, CartLine.quantity).join(Cart).where(Cart.contact_id.in_(logins))
                            .order_by(CartLine.id)).all(),
            session.execute(select(Favourite.id).where(Favourite.contact_id.in_(logins)).order_by(Favourite.id)).all(),
            session.execute(select(StaffUser.id, StaffUser.email, StaffUser.name, StaffUser.role, StaffUser.active,
                                   StaffUser.password_hash, StaffUser.totp_secret)
                            .where(StaffUser.id.in_(staff)).order_by(StaffUser.id)).all(),
            session.execute(select(SingleUseToken.id, SingleUseToken.used_at)
                            .where(SingleUseToken.staff_user_id.in_(staff)).order_by(SingleUseToken.id)).all(),
        ]
        return tuple(tuple(r) for r in rows)
