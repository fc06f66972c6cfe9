"""Personal data pages: in the console, a contact's data as a download, its erasure after a confirmation step and
legal holds; on the storefront, the signed-in person's own data and its erasure (confirmed with their password).
Rules: privacy.service."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Form as FormField
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact
from accountdesk.core.confirmations import Confirmation
from accountdesk.core.errors import AppError, Conflict, ValidationFailed
from accountdesk.core.i18n import _l, filled
from accountdesk.core.pages import PageRoute, flash_redirect, page
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession, client_address
from accountdesk.privacy import service
from accountdesk.privacy.service import Person
from accountdesk.signin import service as signin
from accountdesk.signin.account_pages import storefront_page
from accountdesk.signin.pages import StorefrontPageRoute
from accountdesk.signin.session import PageContact, StorefrontSignIn, sign_out
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import ADMIN, MANAGE_CUSTOMERS, StaffPrincipal

console_pages = APIRouter(prefix="/console/accounts/{account_id}", route_class=PageRoute)
storefront_pages = APIRouter(prefix="/s/{slug}/account", route_class=StorefrontPageRoute)
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Admin = Annotated[StaffPrincipal, Depends(console_page(ADMIN))]
Text = Annotated[str, FormField(max_length=500)]


def download(session: Session, person: Person) -> Response:
    body = json.dumps(service.export(session, person), ensure_ascii=False, indent=2)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{service.export_filename(person)}"'})


# --- console -------------------------------------------------------------------------------------------------------

def _find(session: Session, staff: StaffPrincipal, account_id: int, contact_id: int) -> tuple[Account, Contact]:
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return account, contacts.get_contact(session, account, contact_id)


def contact_url(contact: Contact) -> str:
    return f"/console/accounts/{contact.account_id}/contacts/{contact.id}"


@console_pages.get("/contacts/{contact_id}/personal-data")
def console_download(account_id: Id, contact_id: Id, session: DbSession, staff: Manager) -> Response:
    """Download everything held about the contact's person (every login of their e-mail) as JSON."""
    _, contact = _find(session, staff, account_id, contact_id)
    return download(session, service.person_for_staff(session, staff.reseller_scope, contact))


def _confirm_page(request: Request, session: Session, staff: StaffPrincipal, account: Account, contact: Contact,
                  problem: AppError | None = None) -> Response:
    person = service.person_for_staff(session, staff.reseller_scope, contact)
    if problem is None:
        try:
            service.check_erasable(session, person)
        except Conflict as exc:
            problem = exc
    url = contact_url(contact)
    question = Confirmation(
        filled(_l("Erase the personal data of %(name)s?"), name=contact.name),
        filled(_l("This erases, for good, the personal data of %(email)s on these logins:"), email=person.email),
        _l("Yes, erase for good"), f"{url}/erase", url, danger=True)
    return page(request, "privacy/confirm_erase.html", {
        "staff": staff, "account": account, "contact": contact, "person": person, "confirm": question,
        "problem": problem.message if problem else ""}, problem.status_code if problem else 200)


@console_pages.get("/contacts/{contact_id}/erase")
def confirm_erase(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Admin) -> Response:
    """What erasing the person's data does, and a confirmation (or why it is refused now)."""
    account, contact = _find(session, staff, account_id, contact_id)
    return _confirm_page(request, session, staff, account, contact)


@console_pages.post("/contacts/{contact_id}/erase")
def erase(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Admin,
          reason: Text = "", confirmed: Text = "") -> Response:
    """Erase the person's personal data and logins, once confirmed; their orders and invoices stay."""
    account, contact = _find(session, staff, account_id, contact_id)
    if confirmed != "yes":
        return _confirm_page(request, session, staff, account, contact)
    person = service.person_for_staff(session, staff.reseller_scope, contact)
    try:
        service.erase(session, staff.actor, person, reason)
    except Conflict as exc:
        session.rollback()
        return _confirm_page(request, session, staff, account, contact, exc)
    return flash_redirect(request, f"/console/accounts/{account.id}#contacts",
                          _l("Personal data of %(count)s login(s) erased; orders and invoices were kept.",
                             count=len(person.logins)))


@console_pages.post("/contacts/{contact_id}/legal-hold")
def contact_legal_hold(account_id: Id, contact_id: Id, request: Request, session: DbSession, staff: Admin,
                       legal_hold: Text = "", reason: Text = "") -> Response:
    """Put a legal hold on the contact or lift it."""
    _, contact = _find(session, staff, account_id, contact_id)
    held = legal_hold == "true"
    service.set_legal_hold(session, staff.actor, contact, held, reason)
    return flash_redirect(request, contact_url(contact), _l("Legal hold set.") if held else _l("Legal hold lifted."))


@console_pages.post("/legal-hold")
def account_legal_hold(account_id: Id, request: Request, session: DbSession, staff: Admin, legal_hold: Text = "",
                       reason: Text = "") -> Response:
    """Put a legal hold on the account (all its contacts) or lift it."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    held = legal_hold == "true"
    service.set_legal_hold(session, staff.actor, account, held, reason)
    return flash_redirect(request, f"/console/accounts/{account.id}",
                          _l("Legal hold set.") if held else _l("Legal hold lifted."))


# --- storefront: the person's own data -------------------------------------------------------------------------------

def _own_page(request: Request, session: Session, signed_in: StorefrontSignIn,
              error: AppError | None = None) -> Response:
    person = service.person_for_self(session, signed_in.contact)
    problem = ""
    try:
        service.check_erasable(session, person)
    except Conflict as exc:
        problem = exc.message
    return storefront_page(request, "privacy/own_data.html", signed_in.storefront, {
        "signed_in": signed_in, "person": person, "problem": problem,
        "fields": error.fields if error else {}}, error=error)


@storefront_pages.get("/privacy")
def own_data(request: Request, session: DbSession, signed_in: PageContact) -> Response:
    """Your personal data: download it, or erase it and your logins."""
    return _own_page(request, session, signed_in)


@storefront_pages.get("/personal-data")
def own_download(session: DbSession, signed_in: PageContact) -> Response:
    """Download everything held about you as JSON."""
    return download(session, service.person_for_self(session, signed_in.contact))


@storefront_pages.post("/privacy/erase")
def erase_own(request: Request, session: DbSession, signed_in: PageContact, current_password: Text = "",
              confirm: Text = "") -> Response:
    """Erase your personal data and logins, confirmed with your password; you are signed out."""
    storefront = signed_in.storefront
    try:
        if confirm != "yes":
            raise ValidationFailed("Tick the box to confirm that your data is to be erased.",
                                   fields={"confirm": "Tick the box to confirm."})
        signin.check_current_password(session, request.app.state.rate_limits, signed_in, current_password,
                                      request.app.state.settings.base_url, client_address(request))
        person = service.person_for_self(session, signed_in.contact)
        with session.begin_nested():
            service.erase(session, service.erasing_actor(signed_in.actor), person)
    except AppError as exc:  # answered, not raised: a warning of an attack on the password is kept
        return _own_page(request, session, signed_in, exc)
    response = flash_redirect(request, f"/s/{storefront.slug}",
                              _l("Your personal data and your logins were erased. Goodbye."))
    sign_out(session, request, response, storefront)
    return response


router = APIRouter(include_in_schema=False)
router.include_router(console_pages)
router.include_router(storefront_pages)
