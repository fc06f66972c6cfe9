"""Web accounts and the ERP: a web account pushed to the ERP through the outbox (on approval or on its first order,
per the storefront's `erp_sync`), remapped to an ERP code staff created by hand, and local accounts made from ERP
data (instant accounts).

Other packages call: `request_erp_push` / `push_per_policy` (registration on approval, orders on the first order),
`erp_matches`, `account_from_erp` and `login_fields` (instant registration); app.py hands the outbox's "erp_push"
rows to `PushHandler`.

The ERP is asked while no database transaction is open: on SQLite a transaction holds the only write lock from its
first query, and an ERP answer may take the whole timeout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, AccountKind, AccountStatus, PaymentMethod
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactRole, ContactStatus
from accountdesk.core import audit, history, outbox, validation
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database
from accountdesk.core.errors import Conflict, NotFound, field_error
from accountdesk.core.i18n import _l
from accountdesk.core.models import OutboxMessage
from accountdesk.core.settings import Settings
from accountdesk.erp.errors import ErpUnreachableError
from accountdesk.erp.gateway import (
    ErpAccount,
    ErpContact,
    ErpError,
    ErpFailure,
    ErpGateway,
    NewContact,
    NewCustomer,
    gateway_from_settings,
)
from accountdesk.storefronts.models import ErpSync, Storefront
from accountdesk.webhooks import events as webhooks

PUSH = "erp_push"  # outbox kind
PHONE_LENGTH = min(Contact.phone.type.length, Account.phone.type.length)  # what a contact's or account's phone holds
CASH_REFUSED = "The cash sales account cannot have an instant account."
EXCLUDED = "This customer account is excluded from instant accounts."


def _log_account(session: Session, actor: Actor, action: str, account: Account, note: str = "",
                 changes: dict[str, Any] | None = None) -> None:
    audit.record(session, actor, action, subject_type="account", subject_id=account.id, account_id=account.id,
                 changes=changes, note=note)


# --- pushing web accounts to the ERP -------------------------------------------------------------------------------

def idempotency_key(account_id: int) -> str:
    return f"account-{account_id}"


def request_erp_push(session: Session, account: Account, reason: str, *,
                     actor: Actor | None = None) -> OutboxMessage | None:
    """Queue the push of a web account to the ERP, in the caller's transaction (delivered after the commit).
    Nothing happens when the account already has an ERP code or a push of it is already waiting, so calling it
    again (on every order, say) is harmless. Returns the queued row, if any."""
    if account.erp_code or outbox.waiting(session, PUSH, idempotency_key(account.id)):
        return None
    row = outbox.enqueue(session, PUSH, {"account_id": account.id, "reason": reason}, idempotency_key(account.id))
    _log_account(session, actor or Actor.system(), "account.erp_push_requested", account, reason)
    return row


def push_per_policy(session: Session, account: Account, storefront: Storefront, event: ErpSync,
                    reason: str) -> OutboxMessage | None:
    """`request_erp_push` when the storefront's `erp_sync` is `event`: orders call it with `on_first_order` when an
    order is placed, registration with `on_approval` when staff approve. `manual` storefronts never push."""
    if storefront.erp_sync != event:
        return None
    return request_erp_push(session, account, reason)


def new_customer(session: Session, account: Account) -> NewCustomer:
    """The web account as the ERP's new customer: name, billing address, defaults and its contacts."""
    people = contacts.list_contacts(session, account)
    billing = account.billing_address
    address = {"address_line1": billing.line1, "address_line2": billing.line2, "city": billing.city,
               "region": billing.region, "postcode": billing.postcode, "country": billing.country} if billing else {}
    return NewCustomer(name=account.name, email=account.email, phone=account.phone, currency=account.currency,
                       group=account.customer_group, payment_terms=account.payment_terms, **address,
                       contacts=tuple(NewContact(c.first_name, c.last_name, c.email, c.phone) for c in people
                                      if c.status != ContactStatus.deactivated))


def push_account(db: Database, gateway: ErpGateway, account_id: int) -> str:
    """Create the account in the ERP and write its ERP code back; an account that has one is never pushed again.

    Each step has its own short transaction and the ERP is called between them. ErpUnavailable propagates (the
    outbox retries later with backoff; the idempotency key makes a retry after a lost answer return the same
    customer); a refusal by the ERP fails the row for good, visible in the console."""
    with db.transaction() as session:
        account = session.get(Account, account_id, options=[selectinload(Account.addresses)])
        if account is None:
            raise outbox.PermanentFailure(f"Account {account_id} no longer exists.")
        if account.erp_code:
            return account.erp_code
        customer = new_customer(session, account)
    try:
        code = gateway.create_customer(customer, idempotency_key(account_id))
    except ErpError as exc:
        with db.transaction() as session:
            account = session.get(Account, account_id)
            if account is not None:
                webhooks.erp_push_event(session, "erp_push.failed", account, str(exc))
        raise outbox.PermanentFailure(f"The ERP refused the customer: {exc}") from exc
    with db.transaction() as session:
        _write_back(session, account_id, code)
    return code


def _write_back(session: Session, account_id: int, code: str) -> None:
    account = session.get(Account, account_id, with_for_update=True)
    if account is None or account.erp_code == code:  # deleted meanwhile, or already written back
        return
    if account.erp_code:  # staff remapped it while the push was under way: their code stands
        _log_account(session, Actor.system(), "account.erp_push_superseded", account,
                     f"pushed as ERP customer {code}, but already mapped to {account.erp_code}")
        return
    changes = audit.apply_changes(account, {"erp_code": code})
    session.flush()
    accounts.reindex(session, account)
    _log_account(session, Actor.system(), "account.erp_pushed", account, f"ERP customer {code}", changes)
    webhooks.erp_push_event(session, "erp_push.succeeded", account)


class PushHandler:
    """The outbox handler of "erp_push" rows. Builds its gateway on first use and keeps it (the SAP adapter keeps
    its Service Layer session between calls)."""

    def __init__(self, db: Database, settings: Settings, gateway: ErpGateway | None = None) -> None:
        self.db, self.settings, self._gateway = db, settings, gateway
        self._lock = threading.Lock()

    @property
    def gateway(self) -> ErpGateway:
        with self._lock:
            if self._gateway is None:
                self._gateway = gateway_from_settings(self.settings)
            return self._gateway

    def __call__(self, payload: dict[str, Any]) -> None:
        push_account(self.db, self.gateway, int(payload["account_id"]))


@dataclass(frozen=True)
class Push:
    """An ERP push as the console shows it."""

    message: OutboxMessage
    account: Account | None


def pushes(session: Session, statuses: tuple[str, ...], limit: int = 200) -> list[Push]:
    rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == PUSH,
                                                            OutboxMessage.status.in_(statuses))
                                .order_by(OutboxMessage.id.desc()).limit(limit)))
    ids = {row.payload.get("account_id") for row in rows}
    found = {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(ids)))} if ids else {}
    return [Push(row, found.get(row.payload.get("account_id"))) for row in rows]


def describe_push(push: Push) -> dict[str, Any]:
    row, account = push.message, push.account
    return {"id": row.id, "account_id": row.payload.get("account_id"), "reason": row.payload.get("reason", ""),
            "account_number": account.number if account else None, "account_name": account.name if account else None,
            "erp_code": account.erp_code if account else None, "status": row.status, "attempts": row.attempts,
            "last_error": row.last_error, "next_attempt_at": row.next_attempt_at.isoformat(),
            "created_at": row.created_at.isoformat()}


def retry_push(session: Session, actor: Actor, message_id: int) -> Push:
    """Send a failed push again now (its attempts start over)."""
    row = session.get(OutboxMessage, message_id)
    if row is None or row.kind != PUSH:
        raise NotFound("No such ERP push.", code="push_not_found")
    if row.status != "failed":
        raise Conflict("Only a failed push can be retried; this one is still on its way.", code="push_not_failed")
    outbox.retry(session, message_id)
    account = session.get(Account, row.payload.get("account_id"))
    if account is not None:
        _log_account(session, actor, "account.erp_push_retried", account, f"push {row.id}")
    return Push(row, account)


# --- remapping (erp_sync = manual) ---------------------------------------------------------------------------------

def remap_erp_code(session: Session, actor: Actor, gateway: ErpGateway, account: Account,
                   erp_code: str) -> dict[str, list[Any]]:
    """Map the web account to a customer staff created in the ERP themselves. The code must exist in the ERP and
    belong to no other account. The account's contacts keep signing in (see `signin.erp_check.erp_linked`)."""
    code = erp_code.strip()
    if not code:
        raise field_error("erp_code", "Enter the customer code from the ERP.")
    if code == account.erp_code:
        return {}
    if session.scalar(select(Account.id).where(Account.erp_code == code, Account.id != account.id)) is not None:
        message = "Another account already has this ERP code."
        raise Conflict(message, code="duplicate", fields={"erp_code": message})
    try:
        found = gateway.get_account(code)
    except ErpFailure as exc:
        raise ErpUnreachableError("The ERP cannot be reached to check this code. Try again in a few minutes.") from exc
    if found is None:
        raise field_error("erp_code", f"The ERP has no customer with the code {code}.", code="erp_code_unknown")
    changes = audit.apply_changes(account, {"erp_code": code})
    session.flush()
    accounts.reindex(session, account)
    _log_account(session, actor, "account.erp_remapped", account, f"ERP customer {found.name}", changes)
    return changes


# --- instant accounts: local accounts from ERP data ----------------------------------------------------------------

@dataclass(frozen=True)
class ErpMatch:
    """An ERP contact with this e-mail, its account, and why it may not get an instant account ("" when it may)."""

    contact: ErpContact
    account: ErpAccount | None
    refusal: str


def instant_refusal(storefront: Storefront, contact: ErpContact, account: ErpAccount | None) -> str:
    """Why this ERP contact may not have an instant account on the storefront; "" when it may."""
    code = contact.account_code.strip().upper()
    if storefront.erp_cash_account_code and code == storefront.erp_cash_account_code.strip().upper():
        return CASH_REFUSED
    if code in storefront.excluded_account_codes:
        return EXCLUDED
    if account is None or not account.active:
        return "This customer account is not active in our records."
    if not contact.active:
        return "This contact is not active in our records."
    return ""


def erp_matches(gateway: ErpGateway, storefront: Storefront, email: str) -> list[ErpMatch]:
    """Every ERP contact with this e-mail (case-insensitive), with its account; ErpUnreachableError when the ERP
    cannot be asked."""
    try:
        found = gateway.find_contacts_by_email(email)
        erp_accounts = {code: gateway.get_account(code) for code in sorted({c.account_code for c in found})}
    except ErpFailure as exc:
        raise ErpUnreachableError("The ERP cannot be reached right now. Try again in a few minutes.") from exc
    return [ErpMatch(c, erp_accounts[c.account_code], instant_refusal(storefront, c, erp_accounts[c.account_code]))
            for c in found]


def erp_phone(value: str, country: str | None) -> tuple[str, bool]:
    """An account's or a contact's phone as the ERP gave it, in any format a person would write it (national, with
    spaces, dashes or brackets), read in the account's country: (its E.164 form, False), an extension kept
    (validation.normalise_phone). One that cannot be read as a number is kept as given, cut to what a phone field
    holds, and flagged: (value, True), until staff correct it."""
    given = " ".join(value.split())
    if not given:
        return "", False
    try:
        read = validation.normalise_phone(given, country or None)
    except ValueError:
        return given[:PHONE_LENGTH], True
    return (read, False) if len(read) <= PHONE_LENGTH else (given[:PHONE_LENGTH], True)


def _currency(value: str, default: str) -> str:
    try:
        return validation.currency_code(value)
    except ValueError:
        return default


def _account_fields(erp: ErpAccount, storefront: Storefront) -> dict[str, Any]:
    """What the ERP holds for its customer, over the storefront's defaults for a new account (create_account)."""
    phone, as_given = erp_phone(erp.phone, erp.country)
    return {"storefront_id": storefront.id, "number": erp.code, "erp_code": erp.code, "name": erp.name,
            "kind": AccountKind.b2b, "status": AccountStatus.active, "email": erp.email,
            "phone": phone, "phone_as_given": as_given, "customer_group": erp.group, "price_group": erp.price_list,
            "payment_terms": erp.payment_terms, "payment_method": PaymentMethod.invoice,
            "currency": _currency(erp.currency, storefront.default_currency), "credit_limit": erp.credit_limit}


def _erp_billing(erp: ErpAccount) -> dict[str, Any] | None:
    """The ERP's billing address: street line, postcode, city and country."""
    if not (erp.city and len(erp.country) == 2):
        return None
    return {"label": "Billing (from the ERP)", "line1": erp.street, "city": erp.city,
            "postcode": erp.billing_postcode, "country": erp.country.upper()}


def account_from_erp(session: Session, actor: Actor, erp_account: ErpAccount, storefront: Storefront) -> Account:
    """The local account of an ERP customer: the one with its ERP code, else a new one made from the ERP's data
    (its code as account number and ERP code, name, group, payment terms, currency, credit limit). Safe when two
    requests make the same account at once: the loser gets the winner's account."""
    existing = session.scalar(select(Account).where(Account.erp_code == erp_account.code))
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            account = accounts.create_account(session, actor, None, _account_fields(erp_account, storefront),
                                              billing_address=_erp_billing(erp_account))
    except IntegrityError:
        existing = session.scalar(select(Account).where(Account.erp_code == erp_account.code))
        if existing is None:
            message = f"Another account already has the number {erp_account.code}."
            raise Conflict(message, code="duplicate", fields={"account_code": message}) from None
        return existing
    _log_account(session, actor, "account.created_from_erp", account, f"ERP customer {erp_account.code}")
    return account


def _login_from_erp(session: Session, actor: Actor, account: Account, storefront: Storefront, erp: ErpContact,
                    role: str) -> tuple[Contact, bool]:
    """(the invited login of this ERP contact on the storefront, True when it was just made)."""
    email = validation.normalise_email(erp.email)
    existing = session.scalar(select(Contact).where(Contact.account_id == account.id,
                                                    Contact.storefront_id == storefront.id, Contact.email == email))
    if existing is not None:
        if existing.status != ContactStatus.invited:
            message = _l("%(email)s already has a login for %(account)s (%(status)s).", email=email,
                         account=account.name, status=history.STATUSES.get(existing.status, existing.status))
            raise Conflict(message, code="login_exists", fields={"email": message})
        return existing, False
    contact = contacts.create_contact(session, actor, account, {**login_fields(account, storefront, erp),
                                                                "role": role}, status=ContactStatus.invited)
    return contact, True


def login_fields(account: Account, storefront: Storefront, erp: ErpContact) -> dict[str, Any]:
    """A login's fields taken from its ERP contact: names, e-mail, phone (read in the account's country, or kept as
    given and flagged, see erp_phone), the storefront's language and the ERP contact code (which makes the login
    ERP-linked, see signin.erp_check)."""
    email = validation.normalise_email(erp.email)
    phone, as_given = erp_phone(erp.phone, account.billing_country)
    return {"storefront_id": storefront.id, "first_name": erp.first_name or email.split("@")[0],
            "last_name": erp.last_name, "email": email, "phone": phone, "phone_as_given": as_given,
            "language": storefront.default_language, "erp_contact_code": erp.code or None}


def create_instant_account(session: Session, actor: Actor, gateway: ErpGateway, storefront: Storefront,
                           email: str, account_code: str, settings: Settings,
                           role: str = ContactRole.buyer) -> Contact:
    """Staff make an instant account: the local account of the ERP customer (made or reused) and an invited login
    for the ERP contact with this e-mail, who gets the activation e-mail. The storefront's cash account and
    excluded codes are refused."""
    try:
        email = validation.normalise_email(email)
    except ValueError as exc:
        raise field_error("email", str(exc)) from exc
    match = next((m for m in erp_matches(gateway, storefront, email) if m.contact.account_code == account_code), None)
    if match is None:
        raise field_error("account_code", f"{email} is not a contact of the ERP customer {account_code}.",
                          code="erp_contact_unknown")
    if match.refusal:
        raise field_error("account_code", match.refusal, code="instant_account_refused")
    account = account_from_erp(session, actor, match.account, storefront)
    contact, _ = _login_from_erp(session, actor, account, storefront, match.contact, role)
    contacts.send_activation(session, actor, contact, settings, invited_by=storefront.name)
    return contact
