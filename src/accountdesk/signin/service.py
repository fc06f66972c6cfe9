"""Storefront sign-in and the password lifecycle rules: who may sign in, the account chooser, reset and
activation links, rate limits against guessing and mail bombing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session, joinedload, load_only

from accountdesk.accounts.models import Account, AccountStatus
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactStatus
from accountdesk.core import audit, tokens, validation
from accountdesk.core.audit import Actor
from accountdesk.core.db import kept
from accountdesk.core.errors import AppError, Forbidden, NotAuthenticated, ValidationFailed
from accountdesk.core.i18n import _l
from accountdesk.core.ratelimit import EMAIL_DELAYS, RateLimits
from accountdesk.core.security import hash_password, needs_rehash, verify_password
from accountdesk.core.settings import Settings
from accountdesk.erp.errors import ERP_DOWN
from accountdesk.erp.gateway import ErpGateway
from accountdesk.mail import service as mail
from accountdesk.signin import erp_check, reverification
from accountdesk.signin.session import StorefrontSignIn
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.policy import by_slug

RESET_EMAIL_LIMIT = "5/hour"  # reset requests per e-mail on a storefront
RESET_ADDRESS_LIMIT = "20/hour"  # reset requests per client address
CHOICE = "sign_in_choice"
CHOICE_LIFETIME = timedelta(minutes=5)

WRONG_CREDENTIALS = "E-mail or password is not right."
NOT_ACTIVE = _l("This login is not active. Contact your account administrator.")
WAITING_FOR_APPROVAL = _l("Your account is waiting for approval.")
CHOICE_EXPIRED = _l("This choice has expired. Sign in again.")
LINK_INVALID = _l("This link has expired or was already used. Ask for a new one.")


def lookup_email(value: str) -> str:
    """The form in which e-mails are stored; anything that is not an address simply matches nothing."""
    try:
        return validation.normalise_email(value)
    except ValueError:
        return value.strip().lower()


# The storefront and its contacts with an e-mail, in one statement (one row per contact, or one without a contact);
# built once (see storefronts.policy.BY_SLUG). Of the storefront and the accounts, only what a sign-in checks and
# answers is read (a third of their columns: the rest of the read cost more than the statement); any other column is
# read when it is first used.
WITH_CONTACTS = (select(Storefront, Contact)
                 .outerjoin(Contact, and_(Contact.storefront_id == Storefront.id, Contact.email == bindparam("email")))
                 .options(load_only(Storefront.slug, Storefront.name, Storefront.registration_mode,
                                    Storefront.inactivity_days, Storefront.erp_unreachable_policy,
                                    Storefront.erp_stale_hours),
                          joinedload(Contact.account).load_only(Account.number, Account.name, Account.kind,
                                                                Account.status, Account.erp_code))
                 .where(Storefront.slug == bindparam("slug")).order_by(Contact.id))


def storefront_and_contacts(session: Session, slug: str, address: str) -> tuple[Storefront, list[Contact]]:
    """The storefront (404 when there is none) and its contacts with this (stored form of an) e-mail, with their
    accounts."""
    rows = session.execute(WITH_CONTACTS, {"slug": slug, "email": address}).all()
    if not rows:
        return by_slug(session, slug), []  # which says there is no such storefront
    return rows[0][0], [contact for _, contact in rows if contact is not None]


def password_realm(slug: str) -> str:
    """Whose passwords a storefront's sign-in checks (see core.ratelimit.RateLimits.password_attempt)."""
    return f"storefront:{slug}"


def _warn_of_attack(session: Session, storefront: Storefront, owners: list[Contact], base_url: str) -> None:
    """Tell the owner of an e-mail (one message, whatever the number of its logins) that someone keeps trying to
    sign in with it, with a link to choose a new password: a step of its own (`kept`), as the attempt it comes
    with may well be refused."""
    with kept(session) as step:
        _warn(step, storefront, owners, base_url)


def _warn(session: Session, storefront: Storefront, owners: list[Contact], base_url: str) -> None:
    first = owners[0]
    mail.send(session, "sign_in_attack", first.email, language=first.language, context={
        "name": first.name, "site_name": storefront.name, "attempts": EMAIL_DELAYS.free,
        "reset_link": f"{base_url.rstrip('/')}/s/{storefront.slug}/password/forgot"})
    for contact in owners:
        audit.record(session, Actor.system(), "contact.sign_in_attack_warned", subject_type="contact",
                     subject_id=contact.id, account_id=contact.account_id, note=contact.email)


# Sign-in -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignInCandidates:
    """The storefront and the contacts whose password matched and who may sign in (at least one)."""

    storefront: Storefront
    contacts: list[Contact]


def _may_try(contact: Contact) -> bool:
    """May go on to `before_sign_in`: an active login, an expired one (which gets its re-verification link), or one
    the ERP check deactivated (which that check reactivates when the ERP shows it active again)."""
    waits_for_the_erp = contact.status == ContactStatus.deactivated and contact.deactivated_by_erp
    return contact.can_sign_in or ((contact.status == ContactStatus.expired or waits_for_the_erp)
                                   and contact.password_hash is not None and contact.account.is_active)


def _refusal(matched: list[Contact]) -> AppError:
    """Why none of the contacts whose password matched may sign in (said only after the password matched)."""
    if any(c.status == ContactStatus.pending_approval or c.account.status == AccountStatus.pending_approval
           for c in matched):
        return Forbidden(WAITING_FOR_APPROVAL, code="approval_pending")
    return Forbidden(NOT_ACTIVE, code="login_inactive")


def find_candidates(session: Session, limits: RateLimits, slug: str, email: str, password: str, client: str,
                    base_url: str) -> SignInCandidates:
    """Check e-mail and password against every contact with that e-mail on the storefront.

    Call it before the request's transaction writes: the attempt is counted first (429 when over the limits), the
    hashes are verified while nothing is locked, and an unknown e-mail costs one dummy verification so that timing
    does not reveal it."""
    address = lookup_email(email)
    attempt = limits.password_attempt(password_realm(slug), address, client)
    storefront, found = storefront_and_contacts(session, slug, address)
    if attempt.warn_owner and found:
        _warn_of_attack(session, storefront, found, base_url)
    if not found:
        verify_password(None, password)  # the same work as for a known e-mail
    matched = [c for c in found if verify_password(c.password_hash, password)]
    if not matched:
        raise NotAuthenticated(WRONG_CREDENTIALS, code="invalid_credentials")
    limits.password_accepted(attempt)
    _rehash(session, matched, password)
    candidates = [c for c in matched if _may_try(c)]
    if not candidates:
        raise _refusal(matched)
    return SignInCandidates(storefront, candidates)


def _rehash(session: Session, matched: list[Contact], password: str) -> None:
    """A hash made with older parameters is replaced, in a step of its own: whether or not the sign-in goes on."""
    stale = {c.id: hash_password(password) for c in matched if needs_rehash(c.password_hash or "")}
    if stale:
        with kept(session) as step:
            for contact_id, hashed in stale.items():
                step.get(Contact, contact_id).password_hash = hashed


def before_sign_in(session: Session, storefront: Storefront, contact: Contact, erp: ErpGateway | None = None, *,
                   base_url: str) -> None:
    """Last checks before a contact is signed in; raises an AppError to refuse.

    An expired login is refused and e-mailed a re-verification link; an ERP-linked login is checked with the ERP
    (signin.erp_check.verify_sign_in); a login unused for the storefront's inactivity period expires. What it
    records (a login
    marked, a link e-mailed) is committed in steps of their own (`core.db.kept`), so call it before `session`
    writes. Without a gateway an ERP-linked login is refused (it can still sign in through the sign-in form)."""
    reverification.refuse_if_expired(session, storefront, contact, base_url)
    if erp is not None:
        erp_check.verify_sign_in(session, erp, storefront, contact)
    elif erp_check.erp_linked(storefront, contact):
        raise Forbidden(ERP_DOWN, code="erp_check_needed")
    if not session.get(Contact, contact.id).can_sign_in:  # one the ERP check deactivated, and did not reactivate
        raise Forbidden(NOT_ACTIVE, code="login_inactive")
    reverification.expire_if_inactive(session, storefront, contact, base_url)


def offer_choice(session: Session, storefront: Storefront, candidates: list[Contact]) -> str:
    """A short-lived server-side record of the accounts the visitor proved, so the chooser cannot be forged."""
    return tokens.issue(session, CHOICE, CHOICE_LIFETIME, supersede=False,
                        data={"storefront_id": storefront.id, "contact_ids": [c.id for c in candidates]})


def offered_contacts(session: Session, storefront: Storefront, choice_token: str) -> list[Contact]:
    row = tokens.peek(session, CHOICE, choice_token)
    if row is None or row.data.get("storefront_id") != storefront.id:
        raise ValidationFailed(CHOICE_EXPIRED, code="choice_expired")
    return [c for c in (session.get(Contact, i) for i in row.data["contact_ids"]) if c is not None]


def chosen_contact(session: Session, slug: str, choice_token: str, contact_id: int) -> tuple[Storefront, Contact]:
    """The storefront and the contact chosen among those offered, read without using the choice, so that
    `before_sign_in` can ask the ERP before the request's transaction writes."""
    storefront = by_slug(session, slug)
    offered = {c.id: c for c in offered_contacts(session, storefront, choice_token)}
    if contact_id not in offered:
        raise Forbidden("Choose one of the accounts offered.", code="choice_not_offered")
    if not _may_try(offered[contact_id]):
        raise _refusal([offered[contact_id]])
    return storefront, offered[contact_id]


def choose(session: Session, storefront: Storefront, choice_token: str, contact_id: int) -> Contact:
    """The contact chosen among those offered; the choice token works once."""
    offered = {c.id: c for c in offered_contacts(session, storefront, choice_token)}
    if contact_id not in offered:
        raise Forbidden("Choose one of the accounts offered.", code="choice_not_offered")
    if tokens.consume(session, CHOICE, choice_token) is None:
        raise ValidationFailed(CHOICE_EXPIRED, code="choice_expired")
    contact = offered[contact_id]
    if not contact.can_sign_in:
        raise _refusal([contact])
    return contact


def describe_choice(choice_token: str, candidates: list[Contact]) -> dict[str, Any]:
    return {"status": "choose_account", "choice_token": choice_token,
            "expires_in": int(CHOICE_LIFETIME.total_seconds()),
            "accounts": [{"contact_id": c.id, "account_number": c.account.number, "account_name": c.account.name}
                         for c in candidates]}


# Password lifecycle ------------------------------------------------------------------------------------------------

def request_password_reset(session: Session, limits: RateLimits, slug: str, email: str, client: str,
                           settings: Settings) -> None:
    """E-mail a reset link to every contact with this e-mail on the storefront; silent when there is none.

    Every request counts (known e-mail or not), so the limits neither reveal addresses nor allow mail bombing.
    The limits run before the session's first query (see signin.session)."""
    limits.hit({f"reset:address:{client}": RESET_ADDRESS_LIMIT,
                f"reset:email:{slug}:{lookup_email(email)}": RESET_EMAIL_LIMIT})
    storefront, found = storefront_and_contacts(session, slug, lookup_email(email))
    actor = Actor("visitor", None, f"forgot password from {client}")
    for contact in found:
        if contact.status != ContactStatus.deactivated:
            contacts.send_password_reset(session, actor, contact, settings)


def contact_for_link(session: Session, storefront: Storefront, purpose: str, token: str) -> Contact | None:
    """The contact a still-valid reset or activation link of this storefront belongs to (the link is not used)."""
    row = tokens.peek(session, purpose, token)
    contact = session.get(Contact, row.contact_id) if row is not None and row.contact_id else None
    return contact if contact is not None and contact.storefront_id == storefront.id else None


def complete_link(session: Session, storefront: Storefront, purpose: str, token: str, password: str,
                  base_url: str) -> Contact:
    """Set the password through a reset or activation link; on a policy failure the link stays usable."""
    if contact_for_link(session, storefront, purpose, token) is None:
        raise ValidationFailed(LINK_INVALID, code="invalid_token")
    return contacts.complete_with_token(session, purpose, token, password, base_url)


def check_current_password(session: Session, limits: RateLimits, signed_in: StorefrontSignIn, password: str,
                           base_url: str, client: str) -> None:
    """A signed-in contact confirms a change with their password, under the sign-in's limits (422 wrong_password,
    429); a warning to the owner is sent in a step of its own (`kept`), so it outlives the refusal."""
    storefront, contact = signed_in.storefront, signed_in.contact
    attempt = limits.password_attempt(password_realm(storefront.slug), contact.email, client)
    if attempt.warn_owner:
        _warn_of_attack(session, storefront, [contact], base_url)
    if not verify_password(contact.password_hash, password):
        raise ValidationFailed("Your current password is not right.", code="wrong_password",
                               fields={"current_password": "Your current password is not right."})
    limits.password_accepted(attempt)


def change_password(session: Session, limits: RateLimits, signed_in: StorefrontSignIn, current_password: str,
                    new_password: str, base_url: str, client: str) -> None:
    """A signed-in contact changes their password: this session stays, every other one ends. The current password
    is checked under the sign-in's limits; a warning to the owner is sent in a step of its own."""
    check_current_password(session, limits, signed_in, current_password, base_url, client)
    contact = signed_in.contact
    contacts.set_password(session, Actor("contact", contact.id, contact.email), contact, new_password, base_url,
                          keep_session_id=signed_in.auth.id)


def policy_summary(storefront: Storefront) -> dict[str, Any]:
    """What a headless storefront needs to draw its sign-in and registration forms."""
    return {"slug": storefront.slug, "name": storefront.name, "anonymous_access": storefront.anonymous_access,
            "self_registration": storefront.takes_registrations, "registration_mode": storefront.registration_mode,
            "sign_in_after_registration": storefront.sign_in_after_registration,
            "new_contact_for_existing_account": storefront.new_contact_for_existing_account,
            "sign_in_text": storefront.sign_in_text,
            "sign_in_text_translations": storefront.sign_in_text_translations or {},
            "default_language": storefront.default_language,
            "languages": storefront.offered_languages,
            "password_policy": {"min_length": storefront.password_min_length,
                                "max_length": storefront.password_max_length,
                                "require_character_classes": storefront.password_require_character_classes}}
