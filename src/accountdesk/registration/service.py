"""The rules of self-registration, e-mail verification, new contacts for existing accounts, and approvals.

Enumeration: an e-mail that already has a contact gets exactly the answer a new one gets, after as long (the same
password hash, then `evenly_timed`); its owner is e-mailed instead. Only a storefront whose policy signs
registrants in at once answers differently, by setting a session cookie (README: registration modes).
Races: the slow password hash runs before the request's transaction writes or locks anything; then registrations of
one e-mail on one storefront are serialised (`core.db.serialise`) and checked again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, selectinload

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, AccountKind, AccountStatus, Invoice
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactRole, ContactStatus
from accountdesk.core import audit, timing, tokens, validation
from accountdesk.core.audit import Actor
from accountdesk.core.db import after_commit, utcnow
from accountdesk.core.db import serialise as take_turns
from accountdesk.core.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from accountdesk.core.i18n import _l
from accountdesk.core.models import AuditEvent
from accountdesk.core.ratelimit import RateLimits
from accountdesk.core.security import hash_password, verify_password
from accountdesk.core.settings import Settings
from accountdesk.mail import service as mail
from accountdesk.registration import erp as erp_service
from accountdesk.registration.schemas import (
    CHOOSE_A_PASSWORD,
    REQUIRED,
    BillingAddressIn,
    ClaimIn,
    PersonIn,
    RegistrationIn,
)
from accountdesk.signin import service as signin
from accountdesk.staff import service as staff_service
from accountdesk.staff.models import StaffUser
from accountdesk.staff.service import APPROVE
from accountdesk.staff_admin import service as staff_admin
from accountdesk.storefronts.models import ErpSync, RegistrationMode, Storefront
from accountdesk.storefronts.policy import by_slug
from accountdesk.webhooks import events as webhooks

log = logging.getLogger("accountdesk.registration")

VERIFY_EMAIL = "email_verification"
ACCOUNT_CLAIM = "account_claim"
VERIFY_LIFETIME = timedelta(hours=24)
CLAIM_LIFETIME = timedelta(minutes=30)
REGISTRATION_ADDRESS_LIMIT = "10/hour"  # registration attempts per client address
REGISTRATION_EMAIL_LIMIT = "5/hour"  # registration attempts per e-mail
CLAIM_LIMIT = "5/hour"  # account claims per client address and per account number (a match clears the number)

NOT_MATCHED = _l("We could not match these details to an account.")
CLAIM_EXPIRED = _l("This step has expired or was already completed. Please start again.")
LINK_INVALID = _l("This link has expired or was already used.")
ALREADY_DECIDED = _l("This request has already been decided.")


def visitor(email: str) -> Actor:
    return Actor("visitor", None, email)


# --- the registration policy --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workflow:
    """What a registration mode does with a new account: its status and the one answer every registration in this
    mode gets."""

    mode: str
    account_status: str
    contact_status: str
    message: str


OPEN = Workflow(RegistrationMode.open, AccountStatus.active, ContactStatus.active,
                "Thank you for registering. We sent you an e-mail; please open it to confirm your address.")
APPROVAL = Workflow(RegistrationMode.approval, AccountStatus.pending_approval, ContactStatus.pending_approval,
                    "Thank you. We received your request and sent you an e-mail. "
                    "We will write to you again as soon as it has been reviewed.")
# erp_verified: accounts come from the ERP's records, never from the registration form (registration.instant).
INSTANT = Workflow(RegistrationMode.erp_verified, AccountStatus.active, ContactStatus.active,
                   "If this address belongs to one of our trade customers, we have sent you a link. "
                   "Open it within 24 hours to create your login.")
USE_INSTANT = _l("This storefront opens accounts for our trade customers from the e-mail address we hold for them: "
               "register with your e-mail address only (instant registration).")


def workflow(storefront: Storefront) -> Workflow:
    """The workflow of the storefront's registration mode (the one place a new mode is added)."""
    if storefront.registration_mode == RegistrationMode.open:
        return OPEN
    if storefront.registration_mode == RegistrationMode.approval:
        return APPROVAL
    if storefront.registration_mode == RegistrationMode.erp_verified:
        return INSTANT
    raise Forbidden("Registration in this storefront's mode is not available yet. Please contact us instead.",
                    code="registration_mode_unavailable")


def form_workflow(storefront: Storefront) -> Workflow:
    """The workflow of the registration form (company, address, password): every mode but erp_verified."""
    flow = workflow(storefront)
    if flow is INSTANT:
        raise Forbidden(USE_INSTANT, code="registration_mode_unavailable")
    return flow


def signs_in_at_once(storefront: Storefront, active: bool) -> bool:
    """Whether a new login is signed in by the registration answer itself: only when it is active at once and the
    policy chose to (which tells anyone trying e-mails which ones are new); else the registrant signs in."""
    return active and storefront.sign_in_after_registration


def open_storefront(session: Session, slug: str) -> Storefront:
    """The storefront, if it takes registrations in any mode (404 unknown, 403 off, also without anonymous
    access, which self-registration needs)."""
    storefront = by_slug(session, slug)
    if not storefront.takes_registrations:
        raise Forbidden("This storefront does not take new account registrations.", code="self_registration_disabled")
    workflow(storefront)
    return storefront


def registration_storefront(session: Session, slug: str) -> Storefront:
    """The storefront, if it takes registrations through the form now (404 unknown, 403 off or erp_verified)."""
    storefront = open_storefront(session, slug)
    form_workflow(storefront)
    return storefront


def claim_storefront(session: Session, slug: str) -> Storefront:
    """The storefront, if visitors may add themselves to an existing account (404 unknown, 403 off)."""
    storefront = by_slug(session, slug)
    if not storefront.new_contact_for_existing_account:
        raise Forbidden("This storefront does not let visitors add a contact to an existing account.",
                        code="new_contact_disabled")
    return storefront


def count_registration(limits: RateLimits, email: str, client: str) -> None:
    """Every registration attempt counts, per client address and per e-mail (429 when either is used up)."""
    limits.hit({f"registration:address:{client}": REGISTRATION_ADDRESS_LIMIT,
                f"registration:email:{email}": REGISTRATION_EMAIL_LIMIT})


# --- checking what the visitor typed ------------------------------------------------------------------------------

ADDRESS_REQUIRED = {"billing_address.line1": REQUIRED, "billing_address.city": REQUIRED,
                    "billing_address.country": _l("Choose a country.")}
PERSON_REQUIRED = {"first_name": REQUIRED, "last_name": REQUIRED, "email": REQUIRED, "phone": REQUIRED,
                   "password": CHOOSE_A_PASSWORD}


def _address(address: BillingAddressIn, errors: dict[str, Any]) -> dict[str, Any]:
    given = address.model_dump()
    validation.require(errors, {f"billing_address.{name}": value for name, value in given.items()}, ADDRESS_REQUIRED)
    return {"line1": address.line1.strip(), "line2": address.line2.strip(), "city": address.city.strip(),
            **validation.check_address(given, errors, "billing_address.")}


def _person(storefront: Storefront, person: PersonIn, country: str | None, errors: dict[str, Any]) -> dict[str, Any]:
    """The person's fields checked, every problem under its field (a missing one first)."""
    checked = person.model_dump(include={"first_name", "last_name", "email", "phone", "password"})
    validation.require(errors, checked, PERSON_REQUIRED)
    values: dict[str, Any] = {"first_name": person.first_name.strip(), "last_name": person.last_name.strip(),
                              "language": person.language or storefront.default_language}
    return values | validation.check_person(checked, errors, country=country, policy=storefront.password_policy)


@dataclass(frozen=True)
class Applicant:
    """A checked registration: the account to open, its billing address and its first contact."""

    account: dict[str, Any]
    billing_address: dict[str, Any]
    contact: dict[str, Any]

    @property
    def email(self) -> str:
        return self.contact["email"]


def _kind(storefront: Storefront, body: RegistrationIn, errors: dict[str, Any]) -> str:
    if body.reseller and not storefront.allow_reseller_registration:
        errors["reseller"] = _l("This storefront does not take reseller registrations.")
    elif body.reseller and body.private_person:
        errors["reseller"] = _l("Resellers register as a company.")
    if not body.private_person and not body.company_name.strip():
        errors["company_name"] = _l("Enter the company name, or choose to buy as a private person.")
    if body.reseller:
        return AccountKind.reseller
    return AccountKind.b2c if body.private_person else AccountKind.b2b


def check_registration(storefront: Storefront, body: RegistrationIn,
                       problems: dict[str, Any] | None = None) -> Applicant:
    """Every problem of the form at once (422 with one message per field, with the page's own `problems`, e.g.
    the password repeated differently), or the normalised registration."""
    errors: dict[str, Any] = dict(problems or {})
    kind = _kind(storefront, body, errors)
    billing = _address(body.billing_address, errors)
    person = _person(storefront, body, billing.get("country"), errors)
    if errors:
        raise ValidationFailed(fields=errors)
    name = body.company_name.strip() if kind != AccountKind.b2c else f"{body.first_name} {body.last_name}"
    account = {"storefront_id": storefront.id, "name": name, "kind": kind, "email": person["email"],
               "phone": person["phone"], "preferred_language": person["language"]}
    return Applicant(account, billing, {**person, "role": ContactRole.account_admin})


def check_new_contact(storefront: Storefront, account: Account, body: PersonIn,
                      problems: dict[str, Any] | None = None) -> dict[str, Any]:
    errors: dict[str, Any] = dict(problems or {})
    person = _person(storefront, body, account.billing_country, errors)
    if errors:
        raise ValidationFailed(fields=errors)
    return {**person, "role": ContactRole.buyer}


# --- passwords and serialisation -----------------------------------------------------------------------------------

@dataclass
class Password:
    """The visitor's password with its slow argon2 work done before the transaction wherever possible."""

    plain: str = field(repr=False)
    hashed: str | None = field(default=None, repr=False)
    owner_id: int | None = None  # the known contact whose password this is (checked only to sign them in)

    def hash(self) -> str:
        if self.hashed is None:
            self.hashed = hash_password(self.plain)
        return self.hashed


def prepare_password(session: Session, storefront: Storefront, email: str, plain: str, *, signs_in: bool,
                     account_id: int | None = None) -> Password:
    """One argon2 computation, before the request's transaction writes or locks anything, whether or not the
    e-mail is known: the hash for a new contact; for a known e-mail the same hash, or, where a right password signs
    its owner in, a check against the one login it would sign in. (A race noticed later is settled under
    `serialise`.)"""
    password = Password(plain)
    owner = next((c for c in _known(session, storefront, email, account_id) if c.can_sign_in), None) \
        if signs_in else None
    if owner is None:
        password.hash()
    elif verify_password(owner.password_hash, plain):
        password.owner_id = owner.id
    return password


_KNOWN = select(Contact).where(Contact.storefront_id == bindparam("storefront_id"), Contact.email == bindparam("email"))
# built once (see storefronts.policy.BY_SLUG): on the storefront, or on one account of it
KNOWN = {False: _KNOWN.order_by(Contact.id),
         True: _KNOWN.where(Contact.account_id == bindparam("account_id")).order_by(Contact.id)}


def _known(session: Session, storefront: Storefront, email: str, account_id: int | None) -> list[Contact]:
    return list(session.scalars(KNOWN[account_id is not None], {"storefront_id": storefront.id, "email": email,
                                                               "account_id": account_id}))


def serialise(session: Session, storefront_id: int, email: str) -> None:
    """Make concurrent sign-ups of one e-mail on one storefront take turns until the transaction ends."""
    take_turns(session, f"signup:{storefront_id}:{email}")


# --- registering ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """The answer (identical for new and known e-mails), who, if anyone, to sign in, and for `evenly_timed` the
    kind of request and whether it created a login (the costly branch)."""

    answer: dict[str, Any]
    kind: str
    created: bool
    sign_in: Contact | None = None


DURATIONS = timing.EvenDurations()


def evenly_timed(session: Session) -> Callable[[Outcome], Outcome]:
    """Pass it a registration's outcome. Once `session` has committed, a request that created a login records how
    long it took from this call; then every request, also one for a known e-mail (which does less), waits for the
    floor of its kind (core.timing), so that the duration of the answer does not tell the two apart. Nothing is
    held while it waits: the transaction has ended."""
    started = time.perf_counter()

    def note(outcome: Outcome) -> Outcome:
        after_commit(session, lambda: DURATIONS.finished(outcome.kind, time.perf_counter() - started,
                                                            costly=outcome.created))
        return outcome

    return note


def prepare_registration(session: Session, limits: RateLimits, storefront: Storefront, body: RegistrationIn,
                         client: str, problems: dict[str, Any] | None = None) -> tuple[Applicant, Password]:
    """Everything before the writes: rate limits (every attempt counts, also a refused one), the checks, the
    password hash."""
    count_registration(limits, body.email.strip().lower(), client)
    applicant = check_registration(storefront, body, problems)
    signs_in = signs_in_at_once(storefront, form_workflow(storefront).contact_status == ContactStatus.active)
    return applicant, prepare_password(session, storefront, applicant.email, body.password, signs_in=signs_in)


def register(session: Session, storefront_id: int, applicant: Applicant, password: Password,
             base_url: str) -> Outcome:
    """Open the account and its first contact, or, for a known e-mail, e-mail its owner instead."""
    serialise(session, storefront_id, applicant.email)
    storefront = session.get(Storefront, storefront_id)
    flow = form_workflow(storefront)  # the mode may have changed since the checks
    signs_in = signs_in_at_once(storefront, flow.contact_status == ContactStatus.active)
    answer = {"status": "received", "registration_mode": flow.mode, "message": flow.message}
    kind = f"registration:{flow.mode}:{signs_in}"
    known = _known(session, storefront, applicant.email, None)
    if known:
        return _known_email(session, storefront, known, password, signs_in, Outcome(answer, kind, False), base_url)
    actor = visitor(applicant.email)
    account = accounts.create_account(session, actor, None, {**applicant.account, "status": flow.account_status},
                                      billing_address=applicant.billing_address,
                                      number_prefix=storefront.account_number_prefix, storefront=storefront,
                                      contact_emails=[applicant.email])
    contact = contacts.create_contact(session, actor, account, {**applicant.contact, "storefront_id": storefront.id,
                                                                "password_hash": password.hash()},
                                      status=flow.contact_status, account_emails=[])
    send_verification(session, actor, contact, base_url)
    if contact.status == ContactStatus.pending_approval:
        mail.send(session, "registration_received", contact.email, language=contact.language,
                  context=contacts.mail_context(session, contact))
        notify_staff(session, storefront, account, contact, f"{base_url.rstrip('/')}/console/approvals/{account.id}")
    return Outcome(answer, kind, True, contact if signs_in else None)


def _known_email(session: Session, storefront: Storefront, known: list[Contact], password: Password,
                 signs_in: bool, outcome: Outcome, base_url: str) -> Outcome:
    """Create nothing; tell the owner. Sign in only where a new registrant would be, and only with the right
    password (an ordinary sign-in)."""
    tell_owner(session, known[0], base_url)
    chosen = next((c for c in known if c.id == password.owner_id and c.can_sign_in), None) if signs_in else None
    if chosen is None or not _may_sign_in(session, storefront, chosen, base_url):
        return outcome
    return replace(outcome, sign_in=chosen)


def tell_owner(session: Session, owner: Contact, base_url: str) -> None:
    """E-mail the owner of a login that someone tried to register again, and log it. The e-mail lists every account
    of the address on the storefront with where it stands (one may sign in to, one waits for approval, one was
    rejected...), so that a rejected registrant is not told to simply sign in; sign-in and reset links."""
    storefront = session.get(Storefront, owner.storefront_id)
    logins = _known(session, storefront, owner.email, None)
    mail.send(session, "registration_attempt_existing", owner.email, language=owner.language,
              context=contacts.mail_context(
                  session, owner, accounts=_account_states(session, logins),
                  sign_in_link=contacts.storefront_link(session, owner, "/sign-in", base_url),
                  reset_link=contacts.storefront_link(session, owner, "/password/forgot", base_url)))
    audit.record(session, visitor(owner.email), "registration.attempt_existing", subject_type="contact",
                 subject_id=owner.id, account_id=owner.account_id, note=owner.email)


def _account_states(session: Session, logins: list[Contact]) -> list[dict[str, str]]:
    """Each login's account as the "registration attempt" e-mail lists it, with where it stands for its owner."""
    refused = set(session.scalars(select(AuditEvent.subject_id).where(
        AuditEvent.subject_type == "contact", AuditEvent.action == "contact.rejected",
        AuditEvent.subject_id.in_([c.id for c in logins if c.status == ContactStatus.deactivated])))) \
        if any(c.status == ContactStatus.deactivated for c in logins) else set()
    return [{"name": c.account.name, "number": c.account.number, "state": _state(c, c.id in refused)}
            for c in logins]


def _state(login: Contact, refused: bool) -> str:
    """Where a login stands for its owner: active, not_activated, waiting, rejected, deactivated or closed."""
    account = login.account
    if account.status == AccountStatus.rejected or refused:
        return "rejected"
    if ContactStatus.pending_approval in (account.status, login.status):
        return "waiting"
    if not account.is_active:
        return "closed"
    if login.status == ContactStatus.deactivated:
        return "deactivated"
    return "active" if login.password_hash else "not_activated"


def _may_sign_in(session: Session, storefront: Storefront, contact: Contact, base_url: str) -> bool:
    """Whether a known registrant who typed their right password is signed in at once.

    No ERP gateway is passed on purpose: this runs inside the serialised transaction (`serialise`), and asking the
    ERP there would hold SQLite's only write lock, or the e-mail's advisory lock, for up to the ERP's timeout.
    Without a gateway `before_sign_in` refuses ERP-linked logins, which here only means that such a registrant gets
    the same answer without being signed in, and signs in through the sign-in form (which asks the ERP)."""
    try:
        signin.before_sign_in(session, storefront, contact, base_url=base_url)
    except AppError:
        return False
    return True


def notify_staff(session: Session, storefront: Storefront, account: Account, contact: Contact,
                 review_link: str, *, joining: bool = False) -> None:
    """E-mail the storefront's staff addresses (to, cc, bcc), else every operator approver, about a request: a new
    account, or (`joining`) a new login on an existing account."""
    to, cc, bcc = storefront.staff_notification_addresses
    approvers: dict[str, str] = {}  # the approvers' addresses and languages, read once when they are the readers
    if not to:
        approvers = dict(session.execute(select(StaffUser.email, StaffUser.language).where(
            StaffUser.active.is_(True), StaffUser.role.in_(APPROVE))).all())
        to = list(approvers)
    if not (to or cc or bcc):
        log.warning("nobody to notify of the request of account %s on %s", account.number, storefront.slug)
        return
    # the greeting ("Hello <storefront> team") is the template's, in each reader's language
    context = {"name": "", "storefront_name": storefront.name,
               "account_number": account.number, "registrant_name": contact.name, "registrant_email": contact.email,
               "review_link": review_link, ("account_name" if joining else "company_name"): account.name}
    staff_service.notify_staff_addresses(session, "new_contact_request" if joining else "new_account_request", to,
                                         cc, bcc, language=storefront.default_language, context=context,
                                         known=approvers)


# --- e-mail verification -------------------------------------------------------------------------------------------

def send_verification(session: Session, actor: Actor, contact: Contact, base_url: str) -> None:
    """E-mail a single-use link (24 hours) that confirms the address of a contact made in this transaction (which
    has no earlier link to supersede)."""
    token = tokens.issue(session, VERIFY_EMAIL, VERIFY_LIFETIME, contact_id=contact.id, supersede=False)
    link = contacts.storefront_link(session, contact, f"/verify-email?token={token}", base_url)
    hours = int(VERIFY_LIFETIME.total_seconds() // 3600)
    mail.send(session, "email_verification", contact.email, language=contact.language,
              context=contacts.mail_context(session, contact, link=link, expires_hours=hours))
    audit.record(session, actor, "contact.verification_sent", subject_type="contact", subject_id=contact.id,
                 account_id=contact.account_id, note=contact.email)


def verify_email(session: Session, storefront: Storefront, token: str) -> Contact:
    """Use a verification link once: the contact's e-mail counts as confirmed from now on."""
    row = tokens.peek(session, VERIFY_EMAIL, token)
    contact = session.get(Contact, row.contact_id) if row is not None and row.contact_id else None
    if (contact is None or contact.storefront_id != storefront.id
            or tokens.consume(session, VERIFY_EMAIL, token) is None):
        raise ValidationFailed(LINK_INVALID, code="invalid_token")
    changes = audit.apply_changes(contact, {"email_verified_at": contact.email_verified_at or utcnow()})
    audit.record(session, Actor("contact", contact.id, contact.email), "contact.email_verified",
                 subject_type="contact", subject_id=contact.id, account_id=contact.account_id, changes=changes)
    return contact


# --- a new contact for an existing account -------------------------------------------------------------------------

def _compact(value: str) -> str:
    return "".join(value.split()).upper()


def match_account(session: Session, limits: RateLimits, storefront: Storefront, body: ClaimIn, client: str) -> int:
    """The id of the account the visitor proved (number + billing postcode + a recent invoice), else one generic
    refusal whatever was wrong. Attempts count per client address and per account number, before the check; a
    match clears the account number's count."""
    number_key = f"claim:number:{_compact(body.account_number)}"
    limits.hit({f"claim:address:{client}": CLAIM_LIMIT, number_key: CLAIM_LIMIT})
    account_id = _matching_account_id(session, storefront, body)
    if account_id is None:
        raise ValidationFailed(NOT_MATCHED, code="account_not_matched")
    limits.clear(number_key)
    return account_id


def _matching_account_id(session: Session, storefront: Storefront, body: ClaimIn) -> int | None:
    number = body.account_number.strip()
    account = session.scalar(select(Account).where(Account.number.in_({number, number.upper()}),
                                                   Account.status == AccountStatus.active)
                             .options(selectinload(Account.addresses)))
    if account is None or not _belongs_to(account, storefront):
        return None
    billing = account.billing_address
    if billing is None or _compact(billing.postcode) != _compact(body.postcode):
        return None
    since = date.today() - timedelta(days=storefront.invoice_window_days)
    invoice = session.scalar(select(Invoice.id).where(Invoice.account_id == account.id, Invoice.issued_on >= since,
                                                      func.upper(Invoice.number) == body.invoice_number.strip().upper())
                             .limit(1))
    return account.id if invoice is not None else None


def _belongs_to(account: Account, storefront: Storefront) -> bool:
    """An account may get logins on its own storefront; one without a storefront, on a storefront of its own
    reseller (or of the operator, for the operator's customers): never on another tenant's."""
    if account.storefront_id is not None:
        return account.storefront_id == storefront.id
    return account.parent_reseller_id == storefront.reseller_account_id


def issue_claim(session: Session, storefront: Storefront, account_id: int) -> dict[str, Any]:
    """A single-use claim token (30 minutes) and the account's basic details for the visitor to check."""
    token = tokens.issue(session, ACCOUNT_CLAIM, CLAIM_LIFETIME, supersede=False,
                         data={"account_id": account_id, "storefront_id": storefront.id})
    return {"claim_token": token, "expires_in": int(CLAIM_LIFETIME.total_seconds()),
            "account": claimed_details(session.get(Account, account_id))}


def claimed_details(account: Account) -> dict[str, str]:
    billing = account.billing_address
    return {"name": account.name, "number": account.number, "city": billing.city if billing else "",
            "country": billing.country if billing else ""}


def claimed_account(session: Session, storefront: Storefront, token: str) -> Account:
    """The account a still-valid claim token of this storefront proves (the token is not used)."""
    row = tokens.peek(session, ACCOUNT_CLAIM, token)
    account = session.get(Account, row.data.get("account_id")) if row is not None else None
    if account is None or row.data.get("storefront_id") != storefront.id or not account.is_active:
        raise ValidationFailed(CLAIM_EXPIRED, code="claim_expired")
    return account


def prepare_new_contact(session: Session, storefront: Storefront, token: str, body: PersonIn,
                        problems: dict[str, Any] | None = None) -> tuple[dict[str, Any], Password]:
    """Everything before the writes: the claim token, the checks (with the page's own `problems`), the password
    work."""
    account = claimed_account(session, storefront, token)
    person = check_new_contact(storefront, account, body, problems)
    signs_in = signs_in_at_once(storefront, not storefront.new_contact_requires_approval)
    return person, prepare_password(session, storefront, person["email"], body.password, signs_in=signs_in,
                                    account_id=account.id)


def claim_details(session: Session, storefront: Storefront, token: str) -> dict[str, str]:
    """The basic details of the account a still-valid claim token proves (to show them again)."""
    return claimed_details(claimed_account(session, storefront, token))


def add_claimed_contact(session: Session, storefront_id: int, token: str, person: dict[str, Any],
                        password: Password, base_url: str) -> Outcome:
    """Create the visitor's contact on the claimed account (active, or pending approval per policy); a known
    e-mail on that account gets the same answer and its owner an e-mail."""
    serialise(session, storefront_id, person["email"])
    storefront = session.get(Storefront, storefront_id)
    row = tokens.consume(session, ACCOUNT_CLAIM, token)
    account = session.get(Account, row.data.get("account_id")) if row is not None else None
    if account is None or row.data.get("storefront_id") != storefront_id or not account.is_active:
        raise ValidationFailed(CLAIM_EXPIRED, code="claim_expired")
    pending = storefront.new_contact_requires_approval
    signs_in = signs_in_at_once(storefront, not pending)
    message = (f"Thank you. Your request to join {account.name} is waiting for approval; we sent you an e-mail."
               if pending else f"Your login for {account.name} is ready. "
                               "We sent you an e-mail to confirm your address.")
    answer = {"status": "received", "account_name": account.name, "message": message}
    kind = f"new_contact:{pending}:{signs_in}"
    known = _known(session, storefront, person["email"], account.id)
    if known:
        return _known_email(session, storefront, known, password, signs_in, Outcome(answer, kind, False), base_url)
    actor = visitor(person["email"])
    contact = contacts.create_contact(session, actor, account, {**person, "storefront_id": storefront.id,
                                                                "password_hash": password.hash()},
                                      status=ContactStatus.pending_approval if pending else ContactStatus.active)
    send_verification(session, actor, contact, base_url)
    if pending:
        mail.send(session, "contact_request_received", contact.email, language=contact.language,
                  context=contacts.mail_context(session, contact))
        notify_staff(session, storefront, account, contact,
                     f"{base_url.rstrip('/')}/console/approvals/contacts/{contact.id}", joining=True)
    return Outcome(answer, kind, True, contact if signs_in else None)


# --- approvals -----------------------------------------------------------------------------------------------------

def account_requests(session: Session, *, status: str = AccountStatus.pending_approval,
                     storefront_id: int | None = None, q: str = "", page: int = 1,
                     per_page: int = 25) -> tuple[list[Account], int]:
    """Self-registered accounts with this status, oldest first (a queue), filtered by storefront and search."""
    stmt = select(Account).where(Account.status == status, Account.storefront_id.is_not(None),
                                 *accounts.matches_words(q, session.get_bind().dialect.name))
    if storefront_id is not None:
        stmt = stmt.where(Account.storefront_id == storefront_id)
    total = session.scalar(select(func.count()).select_from(stmt.with_only_columns(Account.id).subquery())) or 0
    rows = session.scalars(stmt.order_by(Account.id).limit(per_page).offset((page - 1) * per_page)
                           .options(selectinload(Account.addresses))).all()
    return list(rows), total


def contact_requests(session: Session, *, storefront_id: int | None = None, q: str = "") -> list[Contact]:
    """New contacts waiting for approval on accounts that are already active, oldest first."""
    stmt = (select(Contact).join(Account, Contact.account_id == Account.id)
            .where(Contact.status == ContactStatus.pending_approval, Account.status == AccountStatus.active,
                   *accounts.matches_words(q, session.get_bind().dialect.name)))
    if storefront_id is not None:
        stmt = stmt.where(Contact.storefront_id == storefront_id)
    return list(session.scalars(stmt.order_by(Contact.id).limit(200)))


def storefront_choices(session: Session) -> list[tuple[int, str]]:
    return [(row.id, row.name) for row in session.execute(select(Storefront.id, Storefront.name)
                                                          .order_by(Storefront.name))]


def get_request(session: Session, account_id: int) -> Account:
    """A self-registered account (any status), or 404."""
    account = session.get(Account, account_id)
    if account is None or account.storefront_id is None:
        raise NotFound("No such registration.", code="registration_not_found")
    return account


def get_contact_request(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("No such contact request.", code="contact_request_not_found")
    return contact


def describe_requests(session: Session, requests: Sequence[Account]) -> list[dict[str, Any]]:
    """Registrations as the queue shows them: one query for all their contacts and one for their storefronts'
    names, however many there are."""
    names = _storefront_names(session, {a.storefront_id for a in requests})
    people = contacts.contacts_of(session, [a.id for a in requests])
    return [_describe_request(a, names.get(a.storefront_id, ""), people[a.id]) for a in requests]


def describe_request(session: Session, account: Account) -> dict[str, Any]:
    return describe_requests(session, [account])[0]


def _describe_request(account: Account, storefront_name: str, people: list[Contact]) -> dict[str, Any]:
    billing = account.billing_address
    return {"account_id": account.id, "number": account.number, "name": account.name, "kind": account.kind,
            "status": account.status, "storefront_id": account.storefront_id, "storefront_name": storefront_name,
            "requested_at": account.created_at,
            "billing_address": {k: getattr(billing, k) for k in ("line1", "line2", "city", "region", "postcode",
                                                                 "country")} if billing else None,
            "contacts": [_describe_person(c) for c in people]}


def describe_contact_requests(session: Session, requests: Sequence[Contact]) -> list[dict[str, Any]]:
    """New contacts as the queue shows them (their accounts come joined): one query for the storefronts' names."""
    names = _storefront_names(session, {c.storefront_id for c in requests})
    return [{"contact": _describe_person(c), "account_id": c.account_id, "account_number": c.account.number,
             "account_name": c.account.name, "storefront_id": c.storefront_id,
             "storefront_name": names.get(c.storefront_id, "")} for c in requests]


def describe_contact_request(session: Session, contact: Contact) -> dict[str, Any]:
    return describe_contact_requests(session, [contact])[0]


def _storefront_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = ids - {None}
    if not wanted:
        return {}
    rows = session.execute(select(Storefront.id, Storefront.name).where(Storefront.id.in_(wanted)))
    return {storefront_id: name for storefront_id, name in rows}


def _describe_person(contact: Contact) -> dict[str, Any]:
    return {k: getattr(contact, k) for k in ("id", "first_name", "last_name", "email", "phone", "status",
                                             "created_at")}


def _won(session: Session, model: type[Account] | type[Contact], row_id: int, decided: str, *also: Any) -> None:
    """The conditional UPDATE that lets exactly one of several simultaneous decisions win (409 for the others)."""
    result = session.execute(update(model).where(model.id == row_id, model.status == "pending_approval", *also)
                             .values(status=decided, updated_at=utcnow())
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict(ALREADY_DECIDED, code="already_decided")


def _decide_account(session: Session, account_id: int, decided: str) -> Account:
    get_request(session, account_id)
    _won(session, Account, account_id, decided)
    return session.get(Account, account_id, populate_existing=True)


def _decide_contact(session: Session, contact_id: int, decided: str) -> Contact:
    get_contact_request(session, contact_id)
    active_accounts = select(Account.id).where(Account.status == AccountStatus.active)
    _won(session, Contact, contact_id, decided, Contact.account_id.in_(active_accounts))
    return session.get(Contact, contact_id, populate_existing=True)


def _log(session: Session, actor: Actor, action: str, subject: Account | Contact, old: str, note: str = "") -> None:
    is_account = isinstance(subject, Account)
    audit.record(session, actor, action, subject_type="account" if is_account else "contact", subject_id=subject.id,
                 account_id=subject.id if is_account else subject.account_id,
                 changes={"status": [old, subject.status]}, note=note)


def _tell_approved(session: Session, actor: Actor, contact: Contact, base_url: str, template: str) -> None:
    """Log and announce an approved login; e-mail its owner (`template`: a new account's, or a login's on an
    existing account) with the sign-in link."""
    _log(session, actor, "contact.approved", contact, ContactStatus.pending_approval)
    webhooks.contact_event(session, "contact.activated", contact)
    mail.send(session, template, contact.email, language=contact.language,
              context=contacts.mail_context(session, contact, sign_in_link=contacts.storefront_link(
                  session, contact, "/sign-in", base_url)))


def _tell_rejected(session: Session, contact: Contact, reason: str, template: str) -> None:
    mail.send(session, template, contact.email, language=contact.language,
              context=contacts.mail_context(session, contact, reason=reason))


def approve_account(session: Session, actor: Actor, account_id: int, settings: Settings) -> Account:
    """Approve a registration: the account and its waiting contacts become active and are told by e-mail. A reseller's
    registrant is also invited to the console as its first reseller administrator (My Customers)."""
    account = _decide_account(session, account_id, AccountStatus.active)
    _log(session, actor, "registration.approved", account, AccountStatus.pending_approval)
    webhooks.account_event(session, "account.approved", account)
    waiting = [c for c in contacts.list_contacts(session, account) if c.status == ContactStatus.pending_approval]
    for contact in waiting:
        contact.status = ContactStatus.active
        _tell_approved(session, actor, contact, settings.base_url, "registration_approved")
    if account.kind == AccountKind.reseller and waiting:
        registrant = min(waiting, key=lambda c: c.id)
        staff_admin.invite_registrant(session, actor, account, registrant.email, registrant.name, registrant.language,
                                      settings)
    on_account_approved(session, account)
    return account


def reject_account(session: Session, actor: Actor, account_id: int, reason: str) -> Account:
    """Reject a registration: the account is marked rejected, its contacts deactivated, the reason e-mailed."""
    account = _decide_account(session, account_id, AccountStatus.rejected)
    _log(session, actor, "registration.rejected", account, AccountStatus.pending_approval, note=reason)
    webhooks.account_event(session, "account.rejected", account)
    for contact in contacts.list_contacts(session, account):
        was_waiting = contact.status == ContactStatus.pending_approval
        contacts.set_active(session, actor, contact, False)
        if was_waiting:
            _tell_rejected(session, contact, reason, "registration_rejected")
    return account


def approve_contact(session: Session, actor: Actor, contact_id: int, base_url: str) -> Contact:
    """Approve a new contact of an existing account: it may sign in to that account, and is told so by e-mail."""
    contact = _decide_contact(session, contact_id, ContactStatus.active)
    _tell_approved(session, actor, contact, base_url, "contact_request_approved")
    return contact


def reject_contact(session: Session, actor: Actor, contact_id: int, reason: str) -> Contact:
    contact = _decide_contact(session, contact_id, ContactStatus.deactivated)
    _log(session, actor, "contact.rejected", contact, ContactStatus.pending_approval, note=reason)
    webhooks.contact_event(session, "contact.deactivated", contact)
    _tell_rejected(session, contact, reason, "contact_request_rejected")
    return contact


def on_account_approved(session: Session, account: Account) -> None:
    """Called when staff approve a registration: the account is queued for the ERP when the storefront's `erp_sync`
    is `on_approval` (at most one push waits per account; see registration.erp.request_erp_push)."""
    storefront = session.get(Storefront, account.storefront_id) if account.storefront_id else None
    if storefront is not None:
        erp_service.push_per_policy(session, account, storefront, ErpSync.on_approval, "approved")
