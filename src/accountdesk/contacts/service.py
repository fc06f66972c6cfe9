"""The rules for contacts: creation with mandatory fields, changes with history, activation, passwords."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact, ContactStatus
from accountdesk.core import audit, sessions, tokens, validation
from accountdesk.core.audit import Actor
from accountdesk.core.db import flush_before_insert, utcnow
from accountdesk.core.errors import Forbidden, NotFound, ValidationFailed, field_error
from accountdesk.core.i18n import _l
from accountdesk.core.security import hash_password
from accountdesk.core.settings import Settings
from accountdesk.mail import service as mail
from accountdesk.storefronts.models import Storefront
from accountdesk.webhooks import events as webhooks

RESET = "password_reset"
ACTIVATION = "activation"


def get_contact(session: Session, account: Account, contact_id: int) -> Contact:
    contact = session.scalar(select(Contact).where(Contact.id == contact_id, Contact.account_id == account.id))
    if contact is None:
        raise NotFound("No such contact on this account.", code="contact_not_found")
    return contact


NAME_ORDER = (Contact.last_name, Contact.first_name, Contact.id)


def list_contacts(session: Session, account: Account) -> list[Contact]:
    return list(session.scalars(select(Contact).where(Contact.account_id == account.id).order_by(*NAME_ORDER)))


def contacts_of(session: Session, account_ids: Collection[int]) -> dict[int, list[Contact]]:
    """The contacts of several accounts in one query (a page of them), by account id, each in name order."""
    found: dict[int, list[Contact]] = {account_id: [] for account_id in account_ids}
    if found:
        for contact in session.scalars(select(Contact).where(Contact.account_id.in_(found)).order_by(*NAME_ORDER)):
            found[contact.account_id].append(contact)
    return found


def storefront_for(session: Session, account: Account, storefront_id: int | None = None, *,
                   reseller_scope: int | None = None) -> Storefront:
    """The storefront a contact signs in to: the one asked for, else the account's, else the first one, always
    among those the caller may use (accounts.usable_storefronts): any other answers like one that does not exist."""
    return usable_storefront(session, storefront_id or account.storefront_id, reseller_scope)


def usable_storefront(session: Session, wanted: int | None, reseller_scope: int | None) -> Storefront:
    """The storefront `wanted`, else the first one, among those the caller may use (see storefront_for)."""
    if wanted and reseller_scope is None:  # every storefront is usable: often already loaded in this session
        storefront = session.get(Storefront, wanted)
        if storefront is None:
            raise field_error("storefront_id", "No such storefront.")
        return storefront
    stmt = select(Storefront).where(Storefront.id.in_(accounts.usable_storefronts(reseller_scope)))
    stmt = stmt.where(Storefront.id == wanted) if wanted else stmt.order_by(Storefront.id).limit(1)
    storefront = session.scalar(stmt)
    if storefront is None:
        raise field_error("storefront_id", _l("No such storefront.") if wanted else _l("Choose a storefront."))
    return storefront


def default_language(session: Session, account: Account, storefront: Storefront | None = None) -> str:
    """A new contact's preferred language when none is given: the account's, else its storefront's default."""
    if account.preferred_language:
        return account.preferred_language
    storefront = storefront or (session.get(Storefront, account.storefront_id) if account.storefront_id else None)
    return storefront.default_language if storefront is not None else "en"


def _log(session: Session, actor: Actor, action: str, contact: Contact, changes: dict[str, Any] | None = None,
         note: str = "") -> None:
    audit.record(session, actor, action, subject_type="contact", subject_id=contact.id,
                 account_id=contact.account_id, changes=changes, note=note or contact.email)


def create_contact(session: Session, actor: Actor, account: Account, data: dict[str, Any], *,
                   status: str | None = None, reseller_scope: int | None = None,
                   account_emails: Sequence[str] | None = None) -> Contact:
    """A new contact of the account; `reseller_scope` limits the storefronts it may be put on (see storefront_for).
    `account_emails`: the e-mails of the account's other contacts, when the caller knows them (none for an account
    made in this transaction), so that they are not read again for its search text. Without a language it takes
    the account's (default_language)."""
    data = dict(data)
    active = data.pop("active", True)
    storefront = storefront_for(session, account, data.pop("storefront_id", None), reseller_scope=reseller_scope)
    data["language"] = data.get("language") or default_language(session, account, storefront)
    if data.get("phone") and not data.get("phone_as_given"):  # an ERP phone that could not be read stays as given
        data["phone"] = accounts.normalise_phone(data["phone"], account.billing_country)
    data["status"] = status or (ContactStatus.active if active else ContactStatus.deactivated)
    accounts.note_first_contact(session, account, data)
    contact = _inserted(session, {**data, "account_id": account.id, "storefront_id": storefront.id})
    set_committed_value(contact, "account", account)  # its account, as loaded: no change for the commit to flush
    accounts.reindex(session, account, None if account_emails is None else [*account_emails, contact.email])
    _log(session, actor, "contact.created", contact, audit.created(data))
    webhooks.contact_event(session, "contact.created", contact, account.number)
    return contact


# Built once: a new contact is written and loaded by one INSERT … RETURNING, without a unit of work to sort.
INSERT = insert(Contact).returning(Contact)


def _inserted(session: Session, values: dict[str, Any]) -> Contact:
    flush_before_insert(session)
    return session.scalars(INSERT, [values], execution_options={"autoflush": False}).one()


def update_contact(session: Session, actor: Actor, contact: Contact, data: dict[str, Any]) -> dict[str, list[Any]]:
    """Change some fields. A phone sent back unchanged is not checked again (an ERP phone kept as given, or none,
    does not stop an edit of the other fields); a new one is read in the account's country."""
    data = {k: v for k, v in data.items() if v is not None}
    if data.get("phone") == contact.phone:
        del data["phone"]
    elif "phone" in data:
        data["phone"] = accounts.normalise_phone(data["phone"], contact.account.billing_country)
        data["phone_as_given"] = False
    changes = audit.apply_changes(contact, data)
    if changes:
        session.flush()
        accounts.reindex(session, contact.account)
        _log(session, actor, "contact.updated", contact, changes)
    return changes


def set_active(session: Session, actor: Actor, contact: Contact, active: bool) -> None:
    """Activate or deactivate a login (an expired or pending login is activated too); deactivation signs the
    person out everywhere at once. Whoever decides, the login is no longer one the ERP check deactivated (which
    that check would reactivate: see signin.erp_check)."""
    if contact.deactivated_by_erp:
        contact.deactivated_by_erp = False
    old = contact.status
    if active:
        if old in (ContactStatus.active, ContactStatus.invited):
            return
        contact.status = ContactStatus.active if contact.password_hash else ContactStatus.invited
    else:
        if old == ContactStatus.deactivated:
            return
        contact.status = ContactStatus.deactivated
        sessions.end_sessions(session, contact_id=contact.id)
    _log(session, actor, "contact.activated" if active else "contact.deactivated", contact,
         {"status": [old, contact.status]})
    webhooks.contact_event(session, "contact.activated" if active else "contact.deactivated", contact)


def mail_context(session: Session, contact: Contact, **extra: Any) -> dict[str, Any]:
    storefront = session.get(Storefront, contact.storefront_id)
    return {"name": contact.name, "storefront_name": storefront.name if storefront else "",
            "account_name": contact.account.name, **extra}


def storefront_link(session: Session, contact: Contact, path: str, base_url: str) -> str:
    storefront = session.get(Storefront, contact.storefront_id)
    return f"{base_url.rstrip('/')}/s/{storefront.slug}{path}"


def send_password_reset(session: Session, actor: Actor, contact: Contact, settings: Settings) -> str:
    """E-mail a single-use link that lets the contact choose a new password (30 minutes by default). A contact who
    has never had a password gets the welcome e-mail with an activation link instead: there is nothing to reset, and
    nobody asked to. Returns which was sent: RESET or ACTIVATION."""
    if contact.password_hash is None:
        send_activation(session, actor, contact, settings)
        return ACTIVATION
    minutes = settings.reset_token_minutes
    token = tokens.issue(session, RESET, timedelta(minutes=minutes), contact_id=contact.id)
    link = storefront_link(session, contact, f"/password/reset?token={token}", settings.base_url)
    mail.send(session, "password_reset", contact.email, language=contact.language,
              context=mail_context(session, contact, link=link, expires_minutes=minutes))
    _log(session, actor, "contact.password_reset_sent", contact)
    return RESET


def send_activation(session: Session, actor: Actor, contact: Contact, settings: Settings,
                    invited_by: str = "", *, not_before: datetime | None = None) -> None:
    """E-mail the welcome message with a link to set the first password (24 hours by default). With `not_before`
    the e-mail waits in the outbox until then (an import spaces its welcomes out) and the link lives from then."""
    hours = settings.activation_token_hours
    wait = max(timedelta(0), not_before - utcnow()) if not_before else timedelta(0)
    token = tokens.issue(session, ACTIVATION, wait + timedelta(hours=hours), contact_id=contact.id)
    link = storefront_link(session, contact, f"/activate?token={token}", settings.base_url)
    message = mail.send(session, "activation", contact.email, language=contact.language,
                        context=mail_context(session, contact, link=link, expires_hours=hours, invited_by=invited_by,
                                             sign_in_link=storefront_link(session, contact, "/sign-in",
                                                                          settings.base_url)))
    if not_before is not None:
        message.next_attempt_at = not_before
    _log(session, actor, "contact.activation_sent", contact)


def check_password(session: Session, contact: Contact, password: str) -> None:
    storefront = session.get(Storefront, contact.storefront_id)
    problems: dict[str, str] = {}
    validation.check_person({"first_name": contact.first_name, "last_name": contact.last_name,
                             "email": contact.email, "password": password}, problems,
                            policy=storefront.password_policy)
    if "password" in problems:
        message = problems["password"]
        raise ValidationFailed(message, code="weak_password", fields={"password": message})


def set_password(session: Session, actor: Actor, contact: Contact, password: str, base_url: str, *,
                 keep_session_id: int | None = None, by_staff: bool = False) -> None:
    """A new password under the storefront's policy; other sessions end. The owner is told by e-mail that their
    password was changed, or (`by_staff`) that staff set it; a first password the owner chose (an activation) is
    no change to warn anybody of."""
    check_password(session, contact, password)
    first = contact.password_hash is None
    contact.password_hash = hash_password(password)
    if contact.status == ContactStatus.invited:
        contact.status = ContactStatus.active
    sessions.end_sessions(session, contact_id=contact.id, keep_id=keep_session_id)
    if by_staff or not first:
        mail.send(session, "password_set_by_staff" if by_staff else "password_changed", contact.email,
                  language=contact.language, date_format=contact.date_format,
                  context=mail_context(session, contact, changed_at=utcnow().isoformat(),
                                       reset_link=storefront_link(session, contact, "/password/forgot", base_url)))
    _log(session, actor, "contact.password_set" if first else "contact.password_changed", contact,
         {"password": [None if first else "•••", "•••"]})


def check_manual_password(session: Session, contact: Contact, password: str) -> None:
    """Whether staff may enter this password for the contact: the storefront allows manual entry (403 otherwise)
    and the password meets its policy (422 otherwise)."""
    storefront = session.get(Storefront, contact.storefront_id)
    if not storefront.allow_manual_password:
        raise Forbidden("This storefront does not allow staff to enter passwords; send a reset link instead.",
                        code="manual_password_disabled")
    check_password(session, contact, password)


def set_manual_password(session: Session, actor: Actor, contact: Contact, password: str, base_url: str) -> None:
    """Staff enter a password for the contact, where the storefront allows it; the contact is told staff set it."""
    check_manual_password(session, contact, password)
    set_password(session, actor, contact, password, base_url, by_staff=True)


def complete_with_token(session: Session, purpose: str, token: str, password: str, base_url: str) -> Contact:
    """Finish a reset or an activation: the token is checked against the policy first, then used once."""
    row = tokens.peek(session, purpose, token)
    if row is None or row.contact_id is None:
        raise ValidationFailed("This link has expired or was already used. Ask for a new one.", code="invalid_token")
    contact = session.get(Contact, row.contact_id)
    check_password(session, contact, password)
    if tokens.consume(session, purpose, token) is None:
        raise ValidationFailed("This link has expired or was already used. Ask for a new one.", code="invalid_token")
    actor = Actor("contact", contact.id, contact.email)
    if purpose == ACTIVATION:
        contact.email_verified_at = contact.email_verified_at or utcnow()
    set_password(session, actor, contact, password, base_url)
    return contact


def describe(contact: Contact) -> dict[str, Any]:
    from accountdesk.contacts.schemas import ContactOut

    data = {c: getattr(contact, c) for c in ContactOut.model_fields if c != "has_password"}
    return ContactOut(**data, has_password=contact.password_hash is not None).model_dump(mode="json")


def contact_may_order(contact: Contact, storefront: Storefront) -> bool:
    """A contact may order when signed-in-able and, where the policy asks for it, their e-mail is confirmed."""
    verified = contact.email_verified_at is not None or not storefront.verification_required_before_ordering
    return contact.can_sign_in and verified
