"""Instant registration (registration mode `erp_verified`, seed 002): a trade customer's contact creates their
login from the e-mail address the ERP holds for them.

1. The registrant gives their e-mail. Every address gets the same answer (`service.INSTANT.message`). When it
   matches an active ERP contact on an active customer account that is neither the storefront's cash account nor
   on its exclusion list (registration.erp.erp_matches / instant_refusal), and that account has no login for this
   e-mail on the storefront yet, the address is sent a link (token purpose "instant_registration", 24 hours, data
   {email, storefront_id}). An address whose every account already has a login is sent the usual "you already
   have a login" e-mail. Any other address is sent nothing: we only ever write to addresses the ERP holds, so the
   form cannot be used to send our mail to strangers.
2. The link lists the ERP accounts of that e-mail still eligible; the registrant picks one (one e-mail, several
   accounts: one login per account) and sets a password.
3. The local account is made from the ERP's data (registration.erp.account_from_erp) and the login created active, its
   e-mail verified (the link proved the mailbox), then signed in. The first login on an account is its
   account_admin (the ERP has no roles); later ones are buyers.

The link stays usable until it expires or every eligible account has a login from it, so one link can make the
logins of several accounts; a new request sends a new link (earlier ones keep working until they expire).

The ERP is asked before the request's transaction writes or locks anything; when it cannot be asked the step
answers 503 with Retry-After and nothing is made: the account and its login are created after the ERP answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.accounts.models import Account
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactRole, ContactStatus
from accountdesk.core import audit, tokens, validation
from accountdesk.core.db import utcnow
from accountdesk.core.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from accountdesk.core.i18n import _l
from accountdesk.core.ratelimit import RateLimits
from accountdesk.core.security import hash_password
from accountdesk.erp.errors import ErpUnreachableError
from accountdesk.erp.gateway import ErpGateway
from accountdesk.mail import service as mail
from accountdesk.registration import erp as erp_service
from accountdesk.registration import service
from accountdesk.registration.erp import ErpMatch
from accountdesk.storefronts.models import Storefront

log = logging.getLogger("accountdesk.registration")

PURPOSE = "instant_registration"
LIFETIME = timedelta(hours=24)
LINK_INVALID = _l("This link has expired or was already used for every account. Ask for a new one.")
RECORDS_DOWN = _l("We cannot check your e-mail address with our customer records right now. "
                "Please try again in a few minutes.")
NOT_OFFERED = _l("Choose one of the accounts offered.")


def instant_storefront(session: Session, slug: str) -> Storefront:
    """The storefront, if it takes instant registrations (404 unknown, 403 off or another mode)."""
    storefront = service.open_storefront(session, slug)
    if service.workflow(storefront) is not service.INSTANT:
        raise Forbidden("This storefront does not take instant registrations.",
                        code="instant_registration_unavailable")
    return storefront


def answer() -> dict[str, Any]:
    """The one answer every accepted request gets, whether or not the address is a trade customer's."""
    return {"status": "received", "registration_mode": service.INSTANT.mode, "message": service.INSTANT.message}


def _ask_erp(gateway: ErpGateway, storefront: Storefront, email: str) -> list[ErpMatch]:
    try:
        return erp_service.erp_matches(gateway, storefront, email)
    except ErpUnreachableError as exc:
        raise ErpUnreachableError(RECORDS_DOWN) from exc


# --- which ERP accounts an e-mail may still register for ----------------------------------------------------------

@dataclass(frozen=True)
class Eligibility:
    """The ERP accounts of an e-mail that may get a login now, and the logins it already has on the storefront."""

    offered: list[ErpMatch]
    existing: list[Contact] = field(default_factory=list)


def eligibility(session: Session, storefront: Storefront, email: str, matches: list[ErpMatch]) -> Eligibility:
    """Matches the ERP allows (not cash, not excluded, active) whose account has no login for this e-mail on the
    storefront and is not disabled here (a local account that is not active stays closed). One per account."""
    allowed = [m for m in matches if not m.refusal]
    codes = {m.contact.account_code for m in allowed}
    local = ({a.erp_code: a for a in session.scalars(select(Account).where(Account.erp_code.in_(codes)))}
             if codes else {})
    existing = list(session.scalars(select(Contact).where(
        Contact.storefront_id == storefront.id, Contact.email == email,
        Contact.account_id.in_([a.id for a in local.values()])).order_by(Contact.id))) if local else []
    taken = {c.account_id for c in existing}
    offered, seen = [], set()
    for match in allowed:
        account = local.get(match.contact.account_code)
        if match.contact.account_code in seen or (account is not None and (account.id in taken
                                                                          or not account.is_active)):
            continue
        seen.add(match.contact.account_code)
        offered.append(match)
    return Eligibility(offered, existing)


# --- 1. the e-mail -------------------------------------------------------------------------------------------------

def look_up(session: Session, limits: RateLimits, gateway: ErpGateway, slug: str, email: str,
            client: str) -> tuple[Storefront, list[ErpMatch]]:
    """Everything before the writes: the storefront, the rate limits (as for registration), the ERP's contacts
    with this e-mail (503 when the ERP cannot be asked)."""
    storefront = instant_storefront(session, slug)
    service.count_registration(limits, email, client)
    return storefront, _ask_erp(gateway, storefront, email)


def send_link(session: Session, storefront: Storefront, email: str, matches: list[ErpMatch],
              base_url: str, language: str | None = None) -> dict[str, Any]:
    """E-mail the registration link when the address may register for an account, in `language` (the page's) or
    the storefront's; the same answer always."""
    found = eligibility(session, storefront, email, matches)
    if found.offered:
        person = found.offered[0].contact
        token = tokens.issue(session, PURPOSE, LIFETIME, data={"email": email, "storefront_id": storefront.id})
        mail.send(session, "instant_registration", email, language=language or storefront.default_language, context={
            "name": f"{person.first_name} {person.last_name}".strip(), "storefront_name": storefront.name,
            "link": f"{base_url.rstrip('/')}/s/{storefront.slug}/register/instant?token={token}",
            "expires_hours": int(LIFETIME.total_seconds() // 3600)})
        audit.record(session, service.visitor(email), "registration.instant_link_sent", subject_type="storefront",
                     subject_id=storefront.id, account_id=None,
                     note=f"{email}: {', '.join(m.contact.account_code for m in found.offered)}")
    elif found.existing:
        service.tell_owner(session, found.existing[0], base_url)
    else:
        log.info("instant registration on %s: no eligible ERP account for the address given", storefront.slug)
    return answer()


# --- 2. the link: the accounts to choose from ---------------------------------------------------------------------

def link_email(session: Session, storefront: Storefront, token: str) -> str:
    """The e-mail a still-valid link of this storefront was sent to (the link is not used); 404 otherwise."""
    row = tokens.peek(session, PURPOSE, token)
    if row is None or row.data.get("storefront_id") != storefront.id:
        raise NotFound(LINK_INVALID, code="invalid_token")
    return str(row.data["email"])


@dataclass(frozen=True)
class Offer:
    """What a link offers: its e-mail, the ERP's answer, and the accounts still open to it."""

    email: str
    matches: list[ErpMatch]
    accounts: list[ErpMatch]

    def chosen(self, account_code: str) -> ErpMatch:
        code = account_code.strip().upper()
        match = next((m for m in self.accounts if m.contact.account_code.upper() == code), None)
        if match is None:
            raise field_error("account_code", NOT_OFFERED, code="account_not_offered")
        return match


def offer(session: Session, gateway: ErpGateway, storefront: Storefront, token: str) -> Offer:
    """The accounts a link may still create logins for, read from the ERP now (503 when it cannot be asked)."""
    email = link_email(session, storefront, token)
    matches = _ask_erp(gateway, storefront, email)
    return Offer(email, matches, eligibility(session, storefront, email, matches).offered)


def describe_offer(found: Offer) -> dict[str, Any]:
    return {"email": found.email, "accounts": [
        {"code": m.contact.account_code, "name": m.account.name if m.account else m.contact.account_code,
         "first_name": m.contact.first_name, "last_name": m.contact.last_name} for m in found.accounts]}


# --- 3. the login --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NewLogin:
    """A checked login request with its password already hashed (the slow part, done before the transaction)."""

    offer: Offer
    match: ErpMatch
    first_name: str
    last_name: str
    password_hash: str = field(repr=False)
    language: str | None = None  # the registrant's, when known (the page they registered on)


def prepare_login(session: Session, gateway: ErpGateway, storefront: Storefront, token: str, account_code: str,
                  password: str, first_name: str = "", last_name: str = "", language: str | None = None) -> NewLogin:
    """Everything before the writes: the link, the ERP's word now, the chosen account, names and password under
    the storefront's policy (422 with a message per field), the hash."""
    found = offer(session, gateway, storefront, token)
    match = found.chosen(account_code)
    first, last = (first_name.strip() or match.contact.first_name), (last_name.strip() or match.contact.last_name)
    errors = {name: "This field is required." for name, value in (("first_name", first), ("last_name", last))
              if not value}
    validation.check_person({"first_name": first, "last_name": last, "email": found.email, "password": password},
                            errors, policy=storefront.password_policy)
    if errors:
        raise ValidationFailed(fields=errors)
    return NewLogin(found, match, first, last, hash_password(password), language)


def _role(session: Session, account: Account) -> str:
    """The first login on an account administers it; later ones buy (the ERP says nothing about roles)."""
    admin = session.scalar(select(Contact.id).where(Contact.account_id == account.id,
                                                    Contact.role == ContactRole.account_admin,
                                                    Contact.status != ContactStatus.deactivated).limit(1))
    return ContactRole.buyer if admin is not None else ContactRole.account_admin


def _still_offered(session: Session, storefront: Storefront, token: str, new: NewLogin) -> None:
    """Settled under the e-mail's lock: the link is still valid and no other request made this login meanwhile."""
    if tokens.peek(session, PURPOSE, token) is None:
        raise NotFound(LINK_INVALID, code="invalid_token")
    code = new.match.contact.account_code
    if not any(m.contact.account_code == code
               for m in eligibility(session, storefront, new.offer.email, new.offer.matches).offered):
        message = "This account already has a login for your e-mail address. Sign in instead."
        raise Conflict(message, code="login_exists", fields={"account_code": message})


def create_login(session: Session, storefront_id: int, token: str, new: NewLogin) -> Contact:
    """Make the local account from the ERP's data (or reuse it) and the registrant's active, verified login on it.
    The link is used up once no account is left for it."""
    email = new.offer.email
    service.serialise(session, storefront_id, email)
    storefront = session.get(Storefront, storefront_id)
    _still_offered(session, storefront, token, new)
    actor = service.visitor(email)
    account = erp_service.account_from_erp(session, actor, new.match.account, storefront)
    now = utcnow()
    contact = contacts.create_contact(session, actor, account, {
        **erp_service.login_fields(account, storefront, new.match.contact), "email": email,
        "first_name": new.first_name, "last_name": new.last_name, "role": _role(session, account),
        "password_hash": new.password_hash, "email_verified_at": now, "erp_checked_at": now,
        **({"language": new.language} if new.language else {})},
        status=ContactStatus.active)
    audit.record(session, actor, "registration.instant", subject_type="contact", subject_id=contact.id,
                 account_id=account.id, note=f"ERP customer {account.erp_code}, contact {contact.erp_contact_code}")
    if not eligibility(session, storefront, email, new.offer.matches).offered:
        tokens.consume(session, PURPOSE, token)
    return contact
