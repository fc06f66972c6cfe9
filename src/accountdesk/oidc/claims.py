"""What an ID token and the userinfo endpoint say about a contact: the standard claims and the account, under a
namespaced claim, each by the scope that asks for it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.contacts.service import contact_may_order
from accountdesk.core.security import new_token
from accountdesk.oidc.models import Subject
from accountdesk.storefronts.models import Storefront

ACCOUNT_CLAIM = "https://accountdesk.dev/claims/account"
IDENTITY_SCOPES = ("openid", "profile", "email", "account")
BACKEND_SCOPES = ("orders:write", "accounts:read")
SCOPES = IDENTITY_SCOPES + BACKEND_SCOPES


_SUBJECT = select(Subject.subject).where(Subject.contact_id == bindparam("contact"))  # built once: every ID token


def subject_of(session: Session, contact_id: int) -> str:
    """The contact's subject, made on first use."""
    subject = session.scalar(_SUBJECT, {"contact": contact_id})
    if subject is None:
        subject = new_token()
        with session.begin_nested():
            session.add(Subject(contact_id=contact_id, subject=subject))
    return subject


def contact_by_subject(session: Session, storefront_id: int, subject: str) -> Contact | None:
    return session.scalar(select(Contact).join(Subject, Subject.contact_id == Contact.id)
                          .where(Subject.subject == subject, Contact.storefront_id == storefront_id))


def account_claim(session: Session, contact: Contact, storefront: Storefront) -> dict[str, Any]:
    account = contact.account
    reseller = session.get(Account, account.parent_reseller_id) if account.parent_reseller_id else None
    return {"number": account.number, "name": account.name, "kind": account.kind, "role": contact.role,
            "customer_group": account.customer_group, "price_group": account.price_group,
            "payment_method": account.payment_method, "currency": account.currency,
            "may_order": contact_may_order(contact, storefront), "reseller": reseller.number if reseller else None}


def user_claims(session: Session, contact: Contact, scope: str) -> dict[str, Any]:
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": subject_of(session, contact.id)}
    if "profile" in scopes:
        claims |= {"name": contact.name, "given_name": contact.first_name, "family_name": contact.last_name,
                   "locale": contact.language}
    if "email" in scopes:
        claims |= {"email": contact.email, "email_verified": contact.email_verified_at is not None}
    if "account" in scopes:
        claims[ACCOUNT_CLAIM] = account_claim(session, contact, session.get(Storefront, contact.storefront_id))
    return claims
