"""The ERP's word at sign-in: an ERP-linked login is checked with the ERP each time it signs in (or switches to
another account); a contact the ERP no longer has (or marks inactive) is deactivated, and reactivated at a later
sign-in once the ERP shows it active again; an unreachable ERP is handled per the storefront's policy.

The ERP is asked before the request's transaction writes: a write holds a lock (on SQLite the only write lock) until
the commit, and an ERP answer may take the whole timeout.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact
from accountdesk.core import audit
from accountdesk.core.audit import Actor
from accountdesk.core.db import kept, utcnow
from accountdesk.core.errors import Forbidden
from accountdesk.core.i18n import _l
from accountdesk.erp.errors import ErpUnreachableError
from accountdesk.erp.gateway import ErpFailure, ErpGateway
from accountdesk.storefronts.models import ErpUnreachable, RegistrationMode, Storefront

log = logging.getLogger("accountdesk.erp")

ERP_MISSING = _l("Your login is no longer linked to an account in our records. Please contact us.")
SIGN_IN_CHECK = Actor("system", None, "ERP check at sign-in")


def _log_contact(session: Session, actor: Actor, action: str, contact: Contact, note: str,
                 changes: dict[str, Any] | None = None) -> None:
    audit.record(session, actor, action, subject_type="contact", subject_id=contact.id,
                 account_id=contact.account_id, changes=changes, note=note)


def erp_linked(storefront: Storefront, contact: Contact) -> bool:
    """Whether the ERP vouches for this login at sign-in: its account has an ERP code and the login came from the
    ERP (an instant account: `erp_contact_code` is set) or the storefront is ERP-verified. Logins made on the web for
    an account pushed or remapped to the ERP later are not asked about: the ERP never knew them."""
    if not contact.account.erp_code:
        return False
    return contact.erp_contact_code is not None or storefront.registration_mode == RegistrationMode.erp_verified


def _ask(gateway: ErpGateway, contact: Contact) -> bool | None:
    """Does the ERP still have this contact on the account? None when it cannot say."""
    try:
        return gateway.contact_exists(contact.account.erp_code or "", contact.email)
    except ErpFailure as exc:  # an ERP error answer says nothing about the contact either
        log.warning("ERP check of contact %s failed: %s", contact.id, exc)
        return None


def _recently_confirmed(storefront: Storefront, contact: Contact) -> bool:
    checked = contact.erp_checked_at
    return checked is not None and utcnow() - checked <= timedelta(hours=storefront.erp_stale_hours)


def verify_sign_in(session: Session, gateway: ErpGateway, storefront: Storefront, contact: Contact) -> None:
    """The ERP's word on a sign-in of an ERP-linked login; raises an AppError to refuse.

    Call it before `session` writes: the ERP is asked while nothing is locked, and what a refusal records (a
    contact the ERP no longer has is deactivated; an unreachable ERP is handled per the storefront's policy,
    `deny`, or `allow` when the ERP confirmed the login within `erp_stale_hours`, and recorded either way) is
    committed in a step of its own (`core.db.kept`)."""
    if not erp_linked(storefront, contact):
        return
    known = _ask(gateway, contact)
    live = session.get(Contact, contact.id)
    if live.deactivated_by_erp:
        _check_again(session, live, known)
        return
    if known:
        live.erp_checked_at = utcnow()
        return
    if known is False:
        with kept(session) as step:
            gone = step.get(Contact, contact.id)
            contacts.set_active(step, SIGN_IN_CHECK, gone, False)
            gone.deactivated_by_erp = True
            _log_contact(step, SIGN_IN_CHECK, "contact.erp_missing", gone,
                         f"{gone.email} is no longer an active contact of ERP customer {gone.account.erp_code}")
        raise Forbidden(ERP_MISSING, code="erp_contact_missing")
    allowed = (storefront.erp_unreachable_policy == ErpUnreachable.allow and _recently_confirmed(storefront, live))
    last = live.erp_checked_at.strftime("%Y-%m-%d %H:%M UTC") if live.erp_checked_at else "never"
    note = (f"{'allowed' if allowed else 'denied'}: ERP unreachable (policy {storefront.erp_unreachable_policy}, "
            f"last confirmed {last})")
    if allowed:
        _log_contact(session, SIGN_IN_CHECK, "contact.erp_unreachable", live, note)
        return
    with kept(session) as step:
        _log_contact(step, SIGN_IN_CHECK, "contact.erp_unreachable", step.get(Contact, contact.id), note)
    raise ErpUnreachableError()


def _check_again(session: Session, contact: Contact, known: bool | None) -> None:
    """A login this check deactivated signs in again: reactivated when the ERP shows the contact active again (a
    step of its own: the ERP's word stands whatever the later checks of the sign-in decide), refused while the ERP
    does not or cannot say so (an unreachable ERP never lets it in)."""
    if known is None:
        raise ErpUnreachableError()
    if not known:
        raise Forbidden(ERP_MISSING, code="erp_contact_missing")
    with kept(session) as step:
        back = step.get(Contact, contact.id)
        contacts.set_active(step, SIGN_IN_CHECK, back, True)
        back.erp_checked_at = utcnow()
        _log_contact(step, SIGN_IN_CHECK, "contact.erp_reactivated", back,
                     f"{back.email} is an active contact of ERP customer {back.account.erp_code} again")
    session.refresh(contact)
