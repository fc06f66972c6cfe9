"""Company e-mail domains: an account claims a domain, proves it with a DNS TXT record (or staff vouch for it), and
a registrant whose confirmed e-mail is on a verified domain is offered to join that account instead of the one they
just opened — after the account admin's approval, or at once where the account allows it.

The offer is made only on the page the e-mail verification link opens: nobody learns which account owns a domain
without proving that they read mail at that domain. The registration's answer is the same as ever.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import dns.exception
import dns.resolver
from sqlalchemy import column, exists, func, select, table, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accountdesk.accounts.models import Account, AccountKind, AccountStatus
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactRole, ContactStatus
from accountdesk.core import audit, tokens
from accountdesk.core.audit import Actor
from accountdesk.core.db import utcnow
from accountdesk.core.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from accountdesk.core.i18n import _l
from accountdesk.core.settings import Settings
from accountdesk.domains.models import AccountDomain
from accountdesk.mail import service as mail
from accountdesk.registration import service as registration
from accountdesk.storefronts.models import Storefront

TXT_PREFIX = "accountdesk-verification="
JOIN_OFFER = "domain_join"
OFFER_LIFETIME = timedelta(hours=24)
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Anyone can have an address at these: they never stand for one company.
PUBLIC_MAIL = frozenset({
    "aol.com", "gmail.com", "gmx.at", "gmx.de", "gmx.net", "googlemail.com", "hotmail.com", "icloud.com",
    "live.com", "mail.com", "mail.ru", "me.com", "msn.com", "outlook.com", "proton.me", "protonmail.com",
    "qq.com", "t-online.de", "web.de", "yahoo.com", "yandex.ru", "zoho.com"})
ORDERS = table("orders", column("account_id"))  # orders sit beside domains: read by table name
OFFER_GONE = _l("This offer is no longer available. Sign in with the login you registered.")


class DomainJoin(StrEnum):
    approval = "approval"  # the registrant's new contact waits for the account admin
    direct = "direct"  # the registrant's new contact is active at once


class DnsUnreachable(Conflict):
    status_code = 503
    code = "dns_unreachable"
    message = _l("The DNS did not answer. Try the check again in a few minutes.")


# --- domains -------------------------------------------------------------------------------------------------------

def normalise_domain(value: str) -> str:
    """The domain in lower-case IDNA form ("Bücher.example" → "xn--bcher-kva.example"), or 422 on `domain`."""
    text = value.strip().lower().removeprefix("@").rstrip(".")
    try:
        ascii_form = text.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise field_error("domain", "Enter a domain name such as example.com.") from exc
    labels = ascii_form.split(".")
    if len(labels) < 2 or len(ascii_form) > 253 or not all(LABEL.match(label) for label in labels):
        raise field_error("domain", "Enter a domain name such as example.com.")
    if ascii_form in PUBLIC_MAIL:
        raise field_error("domain", "Anyone can have an address at this domain, so it cannot stand for a company.",
                          code="public_mail_domain")
    return ascii_form


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()


def txt_record(row: AccountDomain) -> str:
    return f"{TXT_PREFIX}{row.verification_token}"


def domains_of(session: Session, account: Account) -> list[AccountDomain]:
    return list(session.scalars(select(AccountDomain).where(AccountDomain.account_id == account.id)
                                .order_by(AccountDomain.domain)))


def get_domain(session: Session, account: Account, domain_id: int) -> AccountDomain:
    row = session.scalar(select(AccountDomain).where(AccountDomain.id == domain_id,
                                                     AccountDomain.account_id == account.id))
    if row is None:
        raise NotFound("No such domain on this account.", code="domain_not_found")
    return row


def _log(session: Session, actor: Actor, action: str, account: Account, changes: dict[str, Any] | None = None,
         note: str = "") -> None:
    audit.record(session, actor, action, subject_type="account", subject_id=account.id, account_id=account.id,
                 changes=changes, note=note)


def claim(session: Session, actor: Actor, account: Account, domain: str) -> AccountDomain:
    """The account claims the domain (unverified until its TXT record is found or staff verify it); claiming it
    again returns the same claim."""
    if account.kind != AccountKind.b2b:
        raise ValidationFailed("Only company (B2B) accounts can claim an e-mail domain.", code="not_a_company")
    name = normalise_domain(domain)
    row = session.scalar(select(AccountDomain).where(AccountDomain.account_id == account.id,
                                                     AccountDomain.domain == name))
    if row is not None:
        return row
    row = AccountDomain(account_id=account.id, domain=name, verification_token=secrets.token_urlsafe(24),
                        verified_by="")
    session.add(row)
    session.flush()
    _log(session, actor, "domain.claimed", account, {"domain": [None, name]})
    return row


def remove(session: Session, actor: Actor, account: Account, row: AccountDomain) -> None:
    session.delete(row)
    _log(session, actor, "domain.removed", account, {"domain": [row.domain, None]})


def set_join_mode(session: Session, actor: Actor, account: Account, mode: str) -> None:
    changes = audit.apply_changes(account, {"domain_join": DomainJoin(mode).value})
    if changes:
        _log(session, actor, "domain.join_mode_changed", account, changes)


def mark_verified(session: Session, actor: Actor, account: Account, row: AccountDomain, by: str) -> None:
    """Verified (by "dns" or "staff"): 409 domain_taken when another account verified the domain first."""
    if row.verified_at is not None:
        return
    taken = exists().where(AccountDomain.domain == row.domain, AccountDomain.verified_at.is_not(None))
    if session.scalar(select(taken)):
        raise Conflict("Another account has already verified this domain.", code="domain_taken")
    try:
        with session.begin_nested():  # the unique index settles two accounts verifying at once
            result = session.execute(update(AccountDomain).where(AccountDomain.id == row.id,
                                                                 AccountDomain.verified_at.is_(None))
                                     .values(verified_at=utcnow(), verified_by=by)
                                     .execution_options(synchronize_session=False))
    except IntegrityError as exc:
        raise Conflict("Another account has already verified this domain.", code="domain_taken") from exc
    session.refresh(row)
    if result.rowcount == 1:
        _log(session, actor, "domain.verified", account, {"domain": [None, row.domain]}, note=f"verified by {by}")


def txt_values(settings: Settings, domain: str) -> list[str]:
    """The TXT strings published at the domain, from the configured DNS server (else the system's); 503 when the
    DNS does not answer. Runs outside any transaction: it may take up to ACCOUNTDESK_DNS_TIMEOUT_SECONDS."""
    resolver = dns.resolver.Resolver(configure=settings.dns_nameserver is None)
    if settings.dns_nameserver:
        host, colon, port = settings.dns_nameserver.rpartition(":")
        resolver.nameservers = [host.strip("[]") if colon else settings.dns_nameserver]
        resolver.port = int(port) if colon else 53
    resolver.lifetime = resolver.timeout = settings.dns_timeout_seconds
    try:
        answer = resolver.resolve(domain, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.DNSException, OSError) as exc:
        raise DnsUnreachable() from exc
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


@dataclass(frozen=True)
class Check:
    verified: bool
    problem: Any = ""  # a lazy string: shown in the reader's language


def record_found(settings: Settings, domain: str, expected: str) -> Check:
    try:
        values = txt_values(settings, domain)
    except DnsUnreachable as exc:
        return Check(False, exc.message)
    if expected in values:
        return Check(True)
    return Check(False, _l("No TXT record %(record)s was found at %(domain)s yet. DNS changes can take a while to "
                           "show; try again later.", record=expected, domain=domain))


def describe(row: AccountDomain) -> dict[str, Any]:
    return {"id": row.id, "domain": row.domain, "verified": row.verified_at is not None,
            "verified_at": row.verified_at, "verified_by": row.verified_by or None, "txt_record": txt_record(row)}


# --- joining by e-mail domain ---------------------------------------------------------------------------------------

def _fresh_registrant(session: Session, contact: Contact) -> bool:
    """A registrant who just opened a company account of their own: its only login, and nothing ordered yet."""
    account = contact.account
    if account.kind != AccountKind.b2b or account.status not in (AccountStatus.active, AccountStatus.pending_approval):
        return False
    others = session.scalar(select(func.count()).select_from(Contact).where(Contact.account_id == account.id,
                                                                            Contact.id != contact.id))
    ordered = session.scalar(select(exists().where(ORDERS.c.account_id == account.id)))
    return not others and not ordered


def joinable_account(session: Session, contact: Contact) -> Account | None:
    """The account a confirmed registrant may join by their e-mail's domain on their storefront, if any."""
    if contact.email_verified_at is None or contact.status not in (ContactStatus.active,
                                                                    ContactStatus.pending_approval):
        return None
    storefront = session.get(Storefront, contact.storefront_id)
    candidates = session.scalars(
        select(Account).join(AccountDomain, AccountDomain.account_id == Account.id)
        .where(AccountDomain.domain == email_domain(contact.email), AccountDomain.verified_at.is_not(None),
               Account.status == AccountStatus.active, Account.kind == AccountKind.b2b,
               Account.id != contact.account_id))
    # the rule of account claims: the account's own storefront, or its reseller's
    account = next((a for a in candidates if registration._belongs_to(a, storefront)), None)
    if account is None or not _fresh_registrant(session, contact):
        return None
    already = exists().where(Contact.account_id == account.id, Contact.storefront_id == storefront.id,
                             Contact.email == contact.email)
    return None if session.scalar(select(already)) else account


def offer(session: Session, contact: Contact) -> dict[str, Any] | None:
    """On the verified-e-mail page: the joinable account and a single-use token to accept (24 hours)."""
    account = joinable_account(session, contact)
    if account is None:
        return None
    token = tokens.issue(session, JOIN_OFFER, OFFER_LIFETIME, contact_id=contact.id, data={"account_id": account.id})
    return {"token": token, "account_name": account.name, "direct": account.domain_join == DomainJoin.direct}


def join(session: Session, storefront: Storefront, token: str, base_url: str) -> tuple[Contact, bool]:
    """Accept the offer: a login on the company's account (active, or waiting for its admin), and the account the
    registrant opened is withdrawn. Returns the new login and whether it waits for approval."""
    row = tokens.consume(session, JOIN_OFFER, token)
    contact = session.get(Contact, row.contact_id) if row is not None and row.contact_id else None
    if contact is None or contact.storefront_id != storefront.id:
        raise ValidationFailed(OFFER_GONE, code="join_offer_gone")
    account = joinable_account(session, contact)
    if account is None or account.id != row.data.get("account_id"):
        raise ValidationFailed(OFFER_GONE, code="join_offer_gone")
    actor = Actor("contact", contact.id, contact.email)
    pending = account.domain_join != DomainJoin.direct
    joined = contacts.create_contact(session, actor, account, {
        "storefront_id": storefront.id, "first_name": contact.first_name, "last_name": contact.last_name,
        "email": contact.email, "phone": contact.phone, "phone_as_given": contact.phone_as_given,
        "language": contact.language, "date_format": contact.date_format, "role": ContactRole.buyer,
        "password_hash": contact.password_hash, "email_verified_at": contact.email_verified_at},
        status=ContactStatus.pending_approval if pending else ContactStatus.active)
    audit.record(session, actor, "contact.joined_by_domain", subject_type="contact", subject_id=joined.id,
                 account_id=account.id, note=email_domain(contact.email))
    _withdraw(session, actor, contact, account)
    context = contacts.mail_context(session, joined)
    if pending:
        mail.send(session, "contact_request_received", joined.email, language=joined.language, context=context)
        _tell_admins(session, account, joined, storefront, base_url)
    else:
        mail.send(session, "contact_request_approved", joined.email, language=joined.language, context={
            **context, "sign_in_link": contacts.storefront_link(session, joined, "/sign-in", base_url)})
    return joined, pending


def _withdraw(session: Session, actor: Actor, contact: Contact, joined: Account) -> None:
    """The registrant's own account is no longer wanted: inactive (out of the approval queue), its login off."""
    own = contact.account
    result = session.execute(update(Account).where(Account.id == own.id, Account.status.in_(
        (AccountStatus.active, AccountStatus.pending_approval))).values(status=AccountStatus.inactive)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise ValidationFailed(OFFER_GONE, code="join_offer_gone")
    old = own.status
    session.refresh(own)
    _log(session, actor, "registration.withdrawn", own, {"status": [old, own.status]},
         note=f"joined {joined.number} by e-mail domain")
    contacts.set_active(session, actor, contact, False)


def _tell_admins(session: Session, account: Account, joined: Contact, storefront: Storefront, base_url: str) -> None:
    admins = session.scalars(select(Contact).where(Contact.account_id == account.id,
                                                   Contact.role == ContactRole.account_admin,
                                                   Contact.status == ContactStatus.active)).all()
    link = f"{base_url.rstrip('/')}/s/{storefront.slug}/account/domains"
    for admin in admins:
        mail.send(session, "domain_join_request", admin.email, language=admin.language, context={
            **contacts.mail_context(session, admin), "registrant_name": joined.name,
            "registrant_email": joined.email, "review_link": link})


# --- the account admin's side ---------------------------------------------------------------------------------------

def require_account_admin(contact: Contact) -> Account:
    """The signed-in login's company account, if it is its admin (403 otherwise)."""
    if contact.role != ContactRole.account_admin or contact.account.kind != AccountKind.b2b:
        raise Forbidden("Only an administrator of a company account can manage its e-mail domains.",
                        code="not_account_admin")
    return contact.account


def join_requests(session: Session, account: Account) -> list[Contact]:
    """Logins waiting for approval on the account, oldest first."""
    return list(session.scalars(select(Contact).where(Contact.account_id == account.id,
                                                      Contact.status == ContactStatus.pending_approval)
                                .order_by(Contact.id)))


def decide(session: Session, admin: Contact, contact_id: int, accept: bool, base_url: str) -> Contact:
    """The account admin approves or rejects a waiting login of their account (one decision wins: 409)."""
    account = require_account_admin(admin)
    waiting = session.scalar(select(Contact).where(Contact.id == contact_id, Contact.account_id == account.id))
    if waiting is None:
        raise NotFound("No such request on your account.", code="contact_request_not_found")
    actor = Actor("contact", admin.id, admin.email)
    if accept:
        return registration.approve_contact(session, actor, contact_id, base_url)
    return registration.reject_contact(session, actor, contact_id,
                                       f"An administrator of {account.name} declined the request.")
