"""A person's personal data: everything held about them as one JSON document, and its erasure.

A person is one e-mail address: every login (contact) with it, on every storefront and account the asker may see
(staff: within their scope; the person themselves: all their logins once they have confirmed the address, else
the one they signed in with). Erasure anonymises each login and what is recorded about it, and keeps the orders,
invoices and numbers the books need; it is refused while an order is open or a legal hold is on.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import (
    Account,
    AccountKind,
    Address,
    CustomAttributeValue,
    Invoice,
    SavedPaymentMethod,
)
from accountdesk.carts.models import Cart, Favourite
from accountdesk.contacts.models import Contact, ContactStatus
from accountdesk.core import audit, sessions
from accountdesk.core.audit import Actor
from accountdesk.core.db import utcnow
from accountdesk.core.errors import Conflict
from accountdesk.core.i18n import _l
from accountdesk.core.models import AuditEvent, OutboxMessage, RateLimitHit, SingleUseToken
from accountdesk.orders.models import Order, OrderStatus
from accountdesk.resellers.models import Subscription
from accountdesk.storefronts.models import Storefront
from accountdesk.webhooks import events as webhooks
from accountdesk.webhooks.models import WebhookDelivery

FORMAT = "accountdesk-personal-data/1"
OPEN_ORDERS = (OrderStatus.pending_approval, OrderStatus.in_progress)
REDACTED = "•••"
ERASED_NAME = "Erased"
ERASED_ACTOR = "erased contact"
MIN_TERM = 2  # shorter names are not searched for in the records about the person (they would match everything)


@dataclass(frozen=True)
class Person:
    """The logins of one e-mail address that a request may see."""

    email: str
    logins: list[Contact]

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.logins]

    @property
    def private_accounts(self) -> list[Account]:
        """The B2C accounts of the logins: the account is the person (its name, e-mail, phone and addresses)."""
        seen = {c.account.id: c.account for c in self.logins if c.account.kind == AccountKind.b2c}
        return list(seen.values())

    @property
    def accounts(self) -> list[Account]:
        return list({c.account.id: c.account for c in self.logins}.values())


def person_for_staff(session: Session, reseller_scope: int | None, contact: Contact) -> Person:
    """Every login of the contact's e-mail on the accounts the staff user may see."""
    scoped = accounts.readable(reseller_scope).with_only_columns(Account.id)
    logins = session.scalars(select(Contact).where(Contact.email == contact.email, Contact.account_id.in_(scoped))
                             .order_by(Contact.id)).all()
    return Person(contact.email, list(logins) or [contact])


def person_for_self(session: Session, contact: Contact) -> Person:
    """The person asking for their own data: all logins of their e-mail once they confirmed it (so that nobody
    who merely typed someone's address at registration reads that person's other logins), else this one."""
    if contact.email_verified_at is None:
        return Person(contact.email, [contact])
    logins = session.scalars(select(Contact).where(Contact.email == contact.email).order_by(Contact.id)).all()
    return Person(contact.email, list(logins))


# --- export --------------------------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row(obj: object, *names: str) -> dict[str, Any]:
    return {name: _plain(getattr(obj, name)) for name in names}


def _login(session: Session, contact: Contact) -> dict[str, Any]:
    storefront = session.get(Storefront, contact.storefront_id)
    return {**_row(contact, "id", "first_name", "last_name", "email", "phone", "language", "date_format", "role",
                   "status", "email_verified_at", "last_sign_in_at", "last_seen_at", "erp_contact_code",
                   "legal_hold", "created_at", "updated_at"),
            "has_password": contact.password_hash is not None,
            "storefront": {"slug": storefront.slug, "name": storefront.name},
            "account": _row(contact.account, "id", "number", "name", "kind")}


def _private_account(session: Session, account: Account) -> dict[str, Any]:
    invoices = session.scalars(select(Invoice).where(Invoice.account_id == account.id).order_by(Invoice.id))
    subscriptions = session.scalars(select(Subscription).where(Subscription.account_id == account.id)
                                    .order_by(Subscription.id))
    return {**_row(account, "id", "number", "name", "email", "phone", "preferred_language", "created_at"),
            "addresses": [_row(a, "label", "line1", "line2", "city", "region", "postcode", "country", "is_billing",
                               "is_shipping") for a in account.addresses],
            "custom_attributes": {k: _plain(v) for k, v in accounts.attribute_values(session, account).items()},
            "invoices": [_row(i, "number", "issued_on", "total", "currency") for i in invoices],
            "subscriptions": [_row(s, "kind", "sku", "name", "quantity", "monthly_amount", "currency", "status",
                                   "starts_on", "ends_on") for s in subscriptions]}


def _orders_query(person: Person) -> Any:
    private = [a.id for a in person.private_accounts]
    return select(Order).where(or_(Order.placed_by_contact_id.in_(person.ids), Order.account_id.in_(private)))


def _orders(session: Session, person: Person) -> list[dict[str, Any]]:
    rows = session.scalars(_orders_query(person).options(selectinload(Order.lines)).order_by(Order.id))
    return [{**_row(o, "number", "account_id", "placed_by_contact_id", "status", "currency", "total_cost",
                    "total_amount", "created_at", "decided_at"),
             "lines": [_row(line, "sku", "name", "quantity", "unit_cost", "line_cost") for line in o.lines]}
            for o in rows]


def _carts(session: Session, person: Person) -> list[dict[str, Any]]:
    carts = session.scalars(select(Cart).where(Cart.contact_id.in_(person.ids)).options(selectinload(Cart.lines)))
    return [{"contact_id": c.contact_id, "updated_at": _plain(c.updated_at),
             "lines": [_row(line, "sku", "name", "quantity", "unit_price") for line in c.lines]} for c in carts]


def _saved_methods_of(person: Person) -> Any:
    """The payment methods saved for the person's logins, and every one of a private account (the person's)."""
    private = [a.id for a in person.private_accounts]
    return or_(SavedPaymentMethod.contact_id.in_(person.ids), SavedPaymentMethod.account_id.in_(private))


def _saved_methods(session: Session, person: Person) -> list[dict[str, Any]]:
    rows = session.scalars(select(SavedPaymentMethod).where(_saved_methods_of(person)).order_by(SavedPaymentMethod.id))
    return [_row(m, "account_id", "contact_id", "provider", "brand", "last4", "expiry_month", "expiry_year",
                 "holder_name", "created_at") for m in rows]


def _favourites(session: Session, person: Person) -> list[dict[str, Any]]:
    rows = session.scalars(select(Favourite).where(Favourite.contact_id.in_(person.ids)).order_by(Favourite.id))
    return [_row(f, "contact_id", "sku", "name", "created_at") for f in rows]


def _events_about(person: Person) -> Any:
    """History entries whose subject is one of the logins or a private account, or that a login made."""
    private = [a.id for a in person.private_accounts]
    return select(AuditEvent).where(or_(
        (AuditEvent.subject_type == "contact") & AuditEvent.subject_id.in_(person.ids),
        (AuditEvent.subject_type == "account") & AuditEvent.subject_id.in_(private),
        (AuditEvent.actor_type == "contact") & AuditEvent.actor_id.in_(person.ids)))


def _history(session: Session, person: Person) -> list[dict[str, Any]]:
    rows = session.scalars(_events_about(person).order_by(AuditEvent.id))
    return [_row(e, "occurred_at", "action", "actor_type", "actor_label", "subject_type", "subject_id", "changes",
                 "note") for e in rows]


def _mentioning(column: Any, email: str) -> Any:
    return func.lower(cast(column, Text)).contains(email.lower(), autoescape=True)


def _mail_to(session: Session, email: str) -> list[OutboxMessage]:
    """E-mails addressed to the address (to, cc or bcc)."""
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "email",
                                                       _mentioning(OutboxMessage.payload, email))
                           .order_by(OutboxMessage.id))
    return [m for m in rows if email in _recipients(m.payload)]


def _recipients(payload: dict[str, Any]) -> set[str]:
    return {str(a).lower() for key in ("to", "cc", "bcc") for a in payload.get(key) or []}


def _emails(session: Session, person: Person) -> list[dict[str, Any]]:
    return [{**_row(m, "created_at", "status", "sent_at"),
             **{k: m.payload.get(k) for k in ("template", "language", "to", "cc", "context")}}
            for m in _mail_to(session, person.email)]


def export(session: Session, person: Person) -> dict[str, Any]:
    """Everything held about the person, machine-readable (README: Personal data)."""
    return {"format": FORMAT, "exported_at": _plain(utcnow()), "email": person.email,
            "logins": [_login(session, c) for c in person.logins],
            "private_accounts": [_private_account(session, a) for a in person.private_accounts],
            "orders": _orders(session, person), "carts": _carts(session, person),
            "favourites": _favourites(session, person), "saved_payment_methods": _saved_methods(session, person),
            "history": _history(session, person),
            "emails": _emails(session, person),
            "consents": [], "consents_note": "accountdesk records no marketing consents; the storefront keeps its own."}


def export_filename(person: Person) -> str:
    return f"personal-data-{person.logins[0].id}.json"


# --- legal hold ------------------------------------------------------------------------------------------------------

def set_legal_hold(session: Session, actor: Actor, subject: Account | Contact, held: bool, reason: str = "") -> bool:
    """Put a legal hold on an account (all its contacts) or a contact, or lift it; in the history with the reason."""
    changes = audit.apply_changes(subject, {"legal_hold": held})
    if changes:
        is_account = isinstance(subject, Account)
        audit.record(session, actor, "legal_hold.set" if held else "legal_hold.lifted",
                     subject_type="account" if is_account else "contact", subject_id=subject.id,
                     account_id=subject.id if is_account else subject.account_id, changes=changes, note=reason)
    return bool(changes)


# --- erasure -------------------------------------------------------------------------------------------------------

def check_erasable(session: Session, person: Person) -> None:
    """409 with the reason when the data is still needed: a legal hold, or an order that is not final yet."""
    held = [c for c in person.logins if c.legal_hold or c.account.legal_hold]
    if held:
        where = ", ".join(sorted({c.account.name for c in held}))
        raise Conflict(_l("This person's data is under a legal hold (%(accounts)s); it cannot be erased until the hold "
                          "is lifted.", accounts=where), code="legal_hold")
    numbers = session.scalars(_orders_query(person).where(Order.status.in_(OPEN_ORDERS))
                              .with_only_columns(Order.number).order_by(Order.number)).all()
    if numbers:
        raise Conflict(_l("Open orders need this person's data: %(numbers)s. Erase it once they are executed or "
                          "canceled.", numbers=", ".join(numbers)), code="open_orders")


def _terms(person: Person) -> list[str]:
    """What identifies the person in free text: e-mail, names, phone numbers (lower-cased, longest first)."""
    found = {person.email}
    for c in person.logins:
        found |= {c.first_name, c.last_name, c.name, c.phone}
    for a in person.private_accounts:
        found |= {a.name, a.email, a.phone}
    return sorted({t.strip().lower() for t in found if len(t.strip()) >= MIN_TERM}, key=len, reverse=True)


def scrub(value: Any, terms: Iterable[str]) -> Any:
    """The value with every text that mentions one of the terms replaced by REDACTED (nested lists and dicts)."""
    terms = list(terms)
    if isinstance(value, str):
        return REDACTED if any(t in value.lower() for t in terms) else value
    if isinstance(value, list):
        return [scrub(v, terms) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v, terms) for k, v in value.items()}
    return value


def _redact_all(changes: dict[str, Any]) -> dict[str, Any]:
    return {field: [None if v is None else REDACTED for v in values] if isinstance(values, list) else REDACTED
            for field, values in changes.items()}


def _claim(session: Session, person: Person) -> None:
    """The conditional UPDATE that lets one of two simultaneous erasures of a login win (409 for the other)."""
    result = session.execute(update(Contact).where(Contact.id.in_(person.ids), Contact.erased_at.is_(None))
                             .values(erased_at=utcnow()).execution_options(synchronize_session=False))
    if result.rowcount != len(person.ids):
        raise Conflict("This person's data has already been erased.", code="already_erased")


def _anonymise_login(session: Session, contact: Contact) -> None:
    session.refresh(contact, ["erased_at"])
    for field, value in {"first_name": ERASED_NAME, "last_name": "contact", "phone": "",
                         "email": f"erased-{secrets.token_hex(8)}@invalid", "password_hash": None,
                         "status": ContactStatus.deactivated, "email_verified_at": None, "last_sign_in_at": None,
                         "last_seen_at": None, "erp_contact_code": None, "erp_checked_at": None}.items():
        setattr(contact, field, value)
    sessions.end_sessions(session, contact_id=contact.id)


def _anonymise_account(session: Session, account: Account, terms: list[str]) -> None:
    """A private account is the person: its name, e-mail, phone, addresses and custom attributes go. A company
    account keeps its own data, without the person's e-mail or phone where they were copied to it."""
    if account.kind == AccountKind.b2c:
        account.name, account.email, account.phone = f"Erased customer {account.number}", "", ""
        session.execute(delete(Address).where(Address.account_id == account.id))
        session.execute(delete(CustomAttributeValue).where(CustomAttributeValue.account_id == account.id))
        session.expire(account, ["addresses"])
    else:
        if account.email.lower() in terms:
            account.email = ""
        if account.phone.lower() in terms:
            account.phone = ""


# the parts of a private account its history records (its address book, its custom attributes): the person's
ADDRESS_FIELDS = frozenset({"label", "line1", "line2", "city", "region", "postcode", "country"})


def _without_private_parts(changes: dict[str, Any]) -> dict[str, Any]:
    """A private account's history entry without its addresses' and custom attributes' values (an address entry,
    or the creation's `billing_address.*` and `attributes.*`)."""
    private = {k: v for k, v in changes.items()
               if k.startswith("attributes.") or k.rpartition(".")[2] in ADDRESS_FIELDS}
    return {**changes, **_redact_all(private)}


def _scrub_history(session: Session, person: Person, terms: list[str]) -> None:
    about = {e.id for e in session.scalars(_events_about(person))}
    account_ids = [a.id for a in person.accounts]
    private_ids = {a.id for a in person.private_accounts}
    mentions = select(AuditEvent).where(or_(AuditEvent.id.in_(about), AuditEvent.account_id.in_(account_ids),
                                            _mentioning(AuditEvent.changes, person.email),
                                            _mentioning(AuditEvent.note, person.email),
                                            func.lower(AuditEvent.actor_label) == person.email))
    for event in session.scalars(mentions):
        whole = event.id in about and event.subject_type == "contact"
        event.changes = _redact_all(event.changes) if whole else scrub(event.changes, terms)
        if event.account_id in private_ids:
            event.changes = _without_private_parts(event.changes)
        event.note = "" if whole else scrub(event.note, terms)
        by_person = event.actor_type == "contact" and event.actor_id in person.ids
        if by_person or person.email in event.actor_label.lower():
            event.actor_label = ERASED_ACTOR


def _scrub_outbox(session: Session, person: Person, terms: list[str]) -> None:
    """Mail to the address loses its content and is not sent any more; other rows (staff notifications about the
    person) lose the texts that name them."""
    for message in session.scalars(select(OutboxMessage).where(or_(_mentioning(OutboxMessage.payload, person.email),
                                                                   _mentioning(OutboxMessage.last_error,
                                                                               person.email)))):
        payload = dict(message.payload)
        if person.email in _recipients(payload):
            message.payload = {**{k: payload.get(k) for k in ("template", "language")}, "to": [], "cc": [],
                               "bcc": [], "context": {}, "erased": True}
            if message.status in ("pending", "sending"):
                message.status, message.locked_until = "failed", None
        else:
            message.payload = scrub(payload, terms)
        message.last_error = scrub(message.last_error, terms) if message.last_error else ""


def _scrub_webhooks(session: Session, person: Person, terms: list[str]) -> None:
    """Events already delivered (or waiting) keep their ids, not the texts that name the person."""
    for delivery in session.scalars(select(WebhookDelivery).where(_mentioning(WebhookDelivery.body, person.email))):
        delivery.body = json.dumps(scrub(json.loads(delivery.body), terms), separators=(",", ":"), ensure_ascii=False)


def _forget_links(session: Session, person: Person) -> None:
    session.execute(delete(SingleUseToken).where(or_(SingleUseToken.contact_id.in_(person.ids),
                                                     _mentioning(SingleUseToken.data, person.email))))
    session.execute(delete(RateLimitHit).where(_mentioning(RateLimitHit.key, person.email)))
    session.execute(delete(Favourite).where(Favourite.contact_id.in_(person.ids)))
    session.execute(delete(SavedPaymentMethod).where(_saved_methods_of(person)))
    session.execute(delete(Cart).where(Cart.contact_id.in_(person.ids)))


def erase(session: Session, actor: Actor, person: Person, reason: str = "") -> None:
    """Erase the person's personal data and logins for good (refused: check_erasable). Orders, invoices and
    account numbers stay; the history keeps that the data was erased, by whom, not what it was."""
    check_erasable(session, person)
    _claim(session, person)
    terms = _terms(person)
    _scrub_history(session, person, terms)
    _scrub_outbox(session, person, terms)
    _scrub_webhooks(session, person, terms)
    _forget_links(session, person)
    for contact in person.logins:
        _anonymise_login(session, contact)
    for account in person.accounts:
        _anonymise_account(session, account, terms)
    session.flush()
    for account in person.accounts:
        accounts.reindex(session, account)
    for contact in person.logins:
        audit.record(session, actor, "contact.erased", subject_type="contact", subject_id=contact.id,
                     account_id=contact.account_id, note=scrub(reason, terms))
    for contact in person.logins:
        webhooks.erased_event(session, contact)  # ids only, in the erasure's transaction

def erasing_actor(actor: Actor) -> Actor:
    """The person erasing their own data is recorded without their e-mail."""
    return Actor(actor.type, actor.id, ERASED_ACTOR) if actor.type == "contact" else actor
