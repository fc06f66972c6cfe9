"""One e-mail, several accounts: an account admin switches to another login of the same e-mail without signing in
again, when both logins are account admins of accounts in the same (non-empty) customer group on one storefront.
Each login keeps its own session, cart and favourites; a switch closes the old session and opens a new one."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.accounts.models import Account, AccountStatus
from accountdesk.contacts.models import Contact, ContactRole, ContactStatus
from accountdesk.core import audit, sessions
from accountdesk.core.errors import Forbidden, NotAuthenticated
from accountdesk.core.i18n import _l
from accountdesk.core.settings import Settings
from accountdesk.signin.session import StorefrontSignIn, current_sign_in, start_contact_session
from accountdesk.storefronts.policy import by_slug

NOT_SWITCHABLE = _l("You cannot switch to this account.")


def switchable(session: Session, contact: Contact) -> list[Contact]:
    """The logins this contact may switch between, itself included, by account name; empty when it may not switch
    (not an account admin, or an account without a customer group)."""
    group = contact.account.customer_group
    if contact.role != ContactRole.account_admin or not group:
        return []
    return list(session.scalars(
        select(Contact).join(Account, Contact.account_id == Account.id)
        .where(Contact.email == contact.email, Contact.storefront_id == contact.storefront_id,
               Contact.role == ContactRole.account_admin, Contact.status == ContactStatus.active,
               Contact.password_hash.is_not(None), Account.customer_group == group,
               Account.status == AccountStatus.active)
        .order_by(Account.name, Account.id)))


def prepare_switch(session: Session, request: Request, slug: str,
                   contact_id: int) -> tuple[StorefrontSignIn, Contact]:
    """(the current sign-in, the login to switch to), read before the request writes, so that the ERP can be asked
    while nothing is locked."""
    storefront = by_slug(session, slug)
    signed_in = current_sign_in(request, session, storefront)
    if signed_in is None:
        raise NotAuthenticated("Sign in to this storefront first.", code="not_signed_in")
    target = next((c for c in switchable(session, signed_in.contact) if c.id == contact_id), None)
    if target is None:
        raise Forbidden(NOT_SWITCHABLE, code="switch_not_allowed")
    return signed_in, target


def record_switch(session: Session, signed_in: StorefrontSignIn, target: Contact) -> None:
    """The history of the login switched to says who came from which account."""
    came_from = signed_in.contact
    audit.record(session, signed_in.actor, "contact.switched_account", subject_type="contact", subject_id=target.id,
                 account_id=target.account_id,
                 note=f"from {came_from.account.number} ({came_from.account.name}), login {came_from.id}")


def switch_api_session(session: Session, signed_in: StorefrontSignIn, target: Contact,
                       settings: Settings) -> str:
    """Close the current bearer session and open one for the target login; returns its token."""
    sessions.close_session(session, signed_in.auth)
    token = start_contact_session(session, target, settings)
    record_switch(session, signed_in, target)
    return token
