"""Re-verification after inactivity (seed 002): a login unused for longer than the storefront's `inactivity_days`
becomes `expired` when it next signs in (at sign-in only, never on a timer); the sign-in is refused and a link is
e-mailed; following it makes the login active again with the same password.

Every storefront applies its own `inactivity_days` (default 90; 0 turns it off). A login that never signed in
is not expired: its activation or registration proved the mailbox. "Used" means signed in or seen on the
storefront (`last_seen_at`, refreshed while a session is used).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactStatus
from accountdesk.core import audit, sessions, tokens
from accountdesk.core.audit import Actor
from accountdesk.core.db import kept, utcnow
from accountdesk.core.errors import Forbidden, ValidationFailed
from accountdesk.core.i18n import _l
from accountdesk.core.models import SingleUseToken
from accountdesk.mail import service as mail
from accountdesk.storefronts.models import Storefront
from accountdesk.webhooks import events as webhooks

REVERIFICATION = "reverification"
LINK_HOURS = 24
RESEND_EVERY = timedelta(minutes=5)  # an expired login signing in again gets a new link at most this often
CONFIRM_FIRST = _l("For your security, please confirm it is still you: we have sent you an e-mail with a link.")
LINK_INVALID = _l("This link has expired or was already used. Sign in again to get a new one.")
INACTIVITY_CHECK = Actor("system", None, "inactivity check at sign-in")


def last_used(contact: Contact) -> datetime | None:
    """When the login was last signed in or seen on the storefront; None when never."""
    moments = [m for m in (contact.last_sign_in_at, contact.last_seen_at) if m is not None]
    return max(moments) if moments else None


def is_inactive(storefront: Storefront, contact: Contact) -> bool:
    last = last_used(contact)
    return storefront.inactivity_days > 0 and last is not None and (
        utcnow() - last > timedelta(days=storefront.inactivity_days))


def _log(session: Session, actor: Actor, action: str, contact: Contact, note: str = "",
         changes: dict | None = None) -> None:
    audit.record(session, actor, action, subject_type="contact", subject_id=contact.id,
                 account_id=contact.account_id, changes=changes, note=note or contact.email)


def _send_link(session: Session, storefront: Storefront, contact: Contact, base_url: str) -> None:
    token = tokens.issue(session, REVERIFICATION, timedelta(hours=LINK_HOURS), contact_id=contact.id)
    last = last_used(contact)
    days = (utcnow() - last).days if last else storefront.inactivity_days
    mail.send(session, "reverification", contact.email, language=contact.language, context=contacts.mail_context(
        session, contact, link=contacts.storefront_link(session, contact, f"/reverify?token={token}", base_url),
        expires_hours=LINK_HOURS, inactive_days=days))
    _log(session, INACTIVITY_CHECK, "contact.reverification_sent", contact)


def _sent_recently(session: Session, contact: Contact) -> bool:
    last = session.scalar(select(SingleUseToken.created_at).where(
        SingleUseToken.purpose == REVERIFICATION, SingleUseToken.contact_id == contact.id)
        .order_by(SingleUseToken.id.desc()).limit(1))
    return last is not None and utcnow() - last < RESEND_EVERY


def refuse_if_expired(session: Session, storefront: Storefront, contact: Contact, base_url: str) -> None:
    """An expired login is refused; it gets a new link unless one went out in the last few minutes (sent in a step
    of its own, `core.db.kept`: the refusal rolls the request back)."""
    if contact.status != ContactStatus.expired:
        return
    if not _sent_recently(session, contact):
        with kept(session) as step:
            _send_link(step, storefront, step.get(Contact, contact.id), base_url)
    raise Forbidden(CONFIRM_FIRST, code="reverification_required")


def expire_if_inactive(session: Session, storefront: Storefront, contact: Contact, base_url: str) -> None:
    """A login unused for longer than the storefront's inactivity period becomes expired; sign-in is refused and
    the re-verification link is e-mailed (in a step of its own, `core.db.kept`)."""
    if contact.status != ContactStatus.active or not is_inactive(storefront, contact):
        return
    with kept(session) as step:
        _expire(step, storefront, step.get(Contact, contact.id), base_url)
    raise Forbidden(CONFIRM_FIRST, code="reverification_required")


def _expire(session: Session, storefront: Storefront, contact: Contact, base_url: str) -> None:
    contact.status = ContactStatus.expired
    sessions.end_sessions(session, contact_id=contact.id)
    _log(session, INACTIVITY_CHECK, "contact.expired", contact,
         f"not used since {last_used(contact):%Y-%m-%d} (inactivity period {storefront.inactivity_days} days)",
         {"status": [ContactStatus.active.value, ContactStatus.expired.value]})
    webhooks.contact_event(session, "contact.expired", contact)
    _send_link(session, storefront, contact, base_url)


def contact_for_link(session: Session, storefront: Storefront, token: str) -> Contact | None:
    """The expired login a still-valid re-verification link of this storefront belongs to (the link stays unused)."""
    row = tokens.peek(session, REVERIFICATION, token)
    contact = session.get(Contact, row.contact_id) if row is not None and row.contact_id else None
    if contact is None or contact.storefront_id != storefront.id or contact.status != ContactStatus.expired:
        return None
    return contact


def reverify(session: Session, storefront: Storefront, token: str) -> Contact:
    """Follow the link: the login is active again with its password unchanged (the link works once)."""
    contact = contact_for_link(session, storefront, token)
    if contact is None or tokens.consume(session, REVERIFICATION, token) is None:
        raise ValidationFailed(LINK_INVALID, code="invalid_token")
    now = utcnow()
    contact.status = ContactStatus.active
    contact.last_seen_at = now  # used now: the next sign-in must not find it inactive again
    contact.email_verified_at = contact.email_verified_at or now
    _log(session, Actor("contact", contact.id, contact.email), "contact.reverified", contact,
         changes={"status": [ContactStatus.expired.value, ContactStatus.active.value]})
    webhooks.contact_event(session, "contact.reverified", contact)
    return contact
