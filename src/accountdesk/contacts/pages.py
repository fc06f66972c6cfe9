"""Console pages for the contacts of an account: add, edit, activate or deactivate, send a reset link and, where
the storefront allows manual entry, enter a password (each that e-mails the contact after a confirmation step).
Rules: contacts.service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.accounts.pages import OPTIONS as ACCOUNT_OPTIONS
from accountdesk.accounts.pages import RECORD_SECTIONS, account_url, record_page
from accountdesk.contacts import service
from accountdesk.contacts.models import Contact, ContactRole
from accountdesk.contacts.schemas import ContactCreate, ContactUpdate, ManualPassword
from accountdesk.core.confirmations import Confirmation, confirmation_page, confirmed
from accountdesk.core.i18n import _l, filled
from accountdesk.core.pages import (
    Form,
    PageRoute,
    active_choice,
    attempt,
    flash_redirect,
    form_fields,
    page,
    without_blanks,
)
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal
from accountdesk.storefronts.models import Storefront

router = APIRouter(prefix="/console/accounts/{account_id}/contacts", route_class=PageRoute, include_in_schema=False)
Reader = Annotated[StaffPrincipal, Depends(console_page(READ))]
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
OPTIONS = {**ACCOUNT_OPTIONS,
           "contact_roles": [(r.value, r.value.replace("_", " ").capitalize()) for r in ContactRole]}


def _record_section(session: Session, account: Account) -> dict[str, Any]:
    """What the account record page shows of its contacts: the list, and the roles and the language its "Add
    contact" form offers."""
    return {"contacts": service.list_contacts(session, account), "contact_roles": OPTIONS["contact_roles"],
            "new_contact_language": service.default_language(session, account)}


RECORD_SECTIONS.append(_record_section)


def _find(session: Session, staff: StaffPrincipal, account_id: int, contact_id: int) -> tuple[Account, Contact]:
    """The account within the staff user's scope (404 outside it) and its contact."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return account, service.get_contact(session, account, contact_id)


def contact_url(contact: Contact) -> str:
    return f"/console/accounts/{contact.account_id}/contacts/{contact.id}"


STAFF_SET_PASSWORD = _l("Password set. The contact was told by e-mail that staff set it.")


@router.post("")
def add_contact(account_id: Id, request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Add a contact; first name, last name, e-mail and phone are mandatory."""
    account = accounts.get_account(session, staff.reseller_scope, account_id, lock=True)
    contact, errors = attempt(session, lambda: service.create_contact(
        session, staff.actor, account, ContactCreate.model_validate(_new_contact(form)).model_dump(),
        reseller_scope=staff.reseller_scope))
    if contact is None:
        refused = {"contact:new": Form.refused(form, errors, "contact-new")}
        return record_page(request, session, staff, account, refused=refused, status=422)
    return flash_redirect(request, account_url(account) + "#contacts", _l("Contact %(name)s added.", name=contact.name))


def _new_contact(form: dict[str, str]) -> dict[str, Any]:
    return {**without_blanks(form), "active": "active" in form}


@router.get("/{contact_id}")
def contact_record(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Reader) -> Response:
    """One contact: details, sign-in status and password actions."""
    account, contact = _find(session, staff, account_id, contact_id)
    return contact_page(request, session, staff, account, contact)


def contact_page(request: Request, session: Session, staff: StaffPrincipal, account: Account, contact: Contact, *,
                 details: Form | None = None, password: Form | None = None, status: int = 200) -> Response:
    return page(request, "contacts/contact.html", {
        "staff": staff, "account": account, "contact": contact, **OPTIONS,
        "storefront": session.get(Storefront, contact.storefront_id), "can_manage": staff.may(MANAGE_CUSTOMERS),
        "form": details or Form(prefix="contact"), "password_form": password or Form(prefix="password")}, status)


@router.post("/{contact_id}")
def update_contact(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Manager,
                   form: Fields) -> Response:
    """Save the contact's details."""
    account, contact = _find(session, staff, account_id, contact_id)
    changes, errors = attempt(session, lambda: service.update_contact(
        session, staff.actor, contact, ContactUpdate.model_validate(form).model_dump(exclude_unset=True)))
    if errors:
        return contact_page(request, session, staff, account, contact, details=Form.refused(form, errors, "contact"),
                            status=422)
    return flash_redirect(request, contact_url(contact), _l("Changes saved.") if changes else _l("Nothing changed."))


@router.post("/{contact_id}/status")
def set_contact_active(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Manager,
                       form: Fields) -> Response:
    """Activate or deactivate the login; deactivation (confirmed first) signs the contact out everywhere."""
    active = active_choice(form, _l("Use the Activate or Deactivate button."))
    _, contact = _find(session, staff, account_id, contact_id)
    if not active and not confirmed(form):
        return confirmation_page(request, Confirmation(
            _l("Deactivate this contact?"),
            filled(_l("%(name)s (%(email)s) is signed out everywhere at once and can no longer sign in. You can "
                      "activate the contact again at any time."), name=contact.name, email=contact.email),
            _l("Yes, deactivate"), f"{contact_url(contact)}/status", contact_url(contact), danger=True,
            fields={"active": "false"}), {"staff": staff})
    service.set_active(session, staff.actor, contact, active)
    message = _l("Contact activated.") if active else _l("Contact deactivated and signed out.")
    return flash_redirect(request, contact_url(contact), message)


def _reset_question(request: Request, account: Account, contact: Contact) -> Confirmation:
    return Confirmation(
        _l("Send a reset link?"),
        filled(_l("An e-mail goes to %(email)s (%(name)s, %(account)s) with a link to choose a new password. The "
                  "link works once and expires after %(minutes)s minutes; the current password keeps working until "
                  "then. Suggest that they check their spam folder."), email=contact.email, name=contact.name,
               account=account.name, minutes=request.app.state.settings.reset_token_minutes),
        _l("Yes, send the link"), f"{contact_url(contact)}/reset", contact_url(contact))


@router.get("/{contact_id}/reset")
def confirm_reset(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Manager) -> Response:
    """Ask for confirmation before e-mailing a reset link."""
    account, contact = _find(session, staff, account_id, contact_id)
    return confirmation_page(request, _reset_question(request, account, contact), {"staff": staff})


@router.post("/{contact_id}/reset")
def send_reset_link(account_id: Id, contact_id: Id, request: Request, session: DbSession,
                    staff: Manager, form: Fields) -> Response:
    """E-mail the contact a single-use link to choose a new password, once confirmed."""
    account, contact = _find(session, staff, account_id, contact_id)
    if not confirmed(form):
        return confirmation_page(request, _reset_question(request, account, contact), {"staff": staff})
    return flash_redirect(request, contact_url(contact), _link_sent(request, session, staff, contact))


def _link_sent(request: Request, session: Session, staff: StaffPrincipal, contact: Contact) -> Any:
    """E-mail the contact the link they need (the welcome with an activation link while they have no password, else
    a reset link) and say which went."""
    sent = service.send_password_reset(session, staff.actor, contact, request.app.state.settings)
    return (_l("Welcome e-mail with an activation link sent to %(email)s.", email=contact.email)
            if sent == service.ACTIVATION else _l("Reset link sent to %(email)s.", email=contact.email))


@router.post("/{contact_id}/password")
def enter_password(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Manager,
                   form: Fields) -> Response:
    """Enter a password for the contact, where the storefront allows manual entry (its policy applies), once
    confirmed: the contact is e-mailed that staff set it."""
    account, contact = _find(session, staff, account_id, contact_id)
    refused = _manual_password(request, session, staff, contact, form, f"{contact_url(contact)}/password",
                               contact_url(contact))
    if isinstance(refused, Form):
        return contact_page(request, session, staff, account, contact, password=refused, status=422)
    return refused or flash_redirect(request, contact_url(contact), STAFF_SET_PASSWORD)


def _manual_password(request: Request, session: Session, staff: StaffPrincipal, contact: Contact,
                     form: dict[str, str], action_url: str, back_url: str) -> Form | Response | None:
    """Set the password typed once confirmed (403 where the storefront does not allow manual entry): None when
    set, the question before it (for a password the policy takes), or the form refused, without the password."""
    if confirmed(form):
        _, errors = attempt(session, lambda: service.set_manual_password(
            session, staff.actor, contact, ManualPassword.model_validate(form).password,
            request.app.state.settings.base_url))
        return Form.refused({}, errors, "password") if errors else None
    password, errors = attempt(session, lambda: _acceptable_password(session, contact, form))
    if errors:
        return Form.refused({}, errors, "password")
    return confirmation_page(request, Confirmation(
        _l("Set this password?"),
        filled(_l("%(name)s (%(email)s) is signed out everywhere else and gets an e-mail saying that staff set their "
                  "password, with a link to choose their own."), name=contact.name, email=contact.email),
        _l("Yes, set the password"), action_url, back_url, fields={"password": password}), {"staff": staff})


def _acceptable_password(session: Session, contact: Contact, form: dict[str, str]) -> str:
    password = ManualPassword.model_validate(form).password
    service.check_manual_password(session, contact, password)
    return password


# --- after "Create customer": how the person gets a password ---------------------------------------------------

def welcome_url(contact: Contact) -> str:
    return contact_url(contact) + "/welcome"


@router.get("/{contact_id}/welcome")
def welcome(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Manager) -> Response:
    """The choice after "Create customer" (seed 001): e-mail the person a link to choose a password or, where the
    storefront allows manual entry, enter one now; then the account's record for the company's details."""
    account, contact = _find(session, staff, account_id, contact_id)
    return welcome_page(request, session, staff, account, contact)


def welcome_page(request: Request, session: Session, staff: StaffPrincipal, account: Account, contact: Contact, *,
                 password: Form | None = None, status: int = 200) -> Response:
    settings = request.app.state.settings
    return page(request, "contacts/welcome.html", {
        "staff": staff, "account": account, "contact": contact,
        "storefront": session.get(Storefront, contact.storefront_id), "password_form": password or Form(
            prefix="password"), "hours": settings.activation_token_hours, "minutes": settings.reset_token_minutes},
        status)


@router.post("/{contact_id}/welcome/link")
def send_welcome_link(account_id: Id, contact_id: Id, request: Request, session: DbSession,
                      staff: Manager) -> Response:
    """E-mail the activation link (a reset link once the person has a password)."""
    account, contact = _find(session, staff, account_id, contact_id)
    return flash_redirect(request, account_url(account), _link_sent(request, session, staff, contact))


@router.post("/{contact_id}/welcome/password")
def enter_welcome_password(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Manager,
                           form: Fields) -> Response:
    """Enter the person's first password, where the storefront allows manual entry, once confirmed."""
    account, contact = _find(session, staff, account_id, contact_id)
    refused = _manual_password(request, session, staff, contact, form, f"{welcome_url(contact)}/password",
                               welcome_url(contact))
    if isinstance(refused, Form):
        return welcome_page(request, session, staff, account, contact, password=refused, status=422)
    return refused or flash_redirect(request, account_url(account), STAFF_SET_PASSWORD)
