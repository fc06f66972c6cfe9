"""Contacts API for staff: the storefront users of an account, their activation and passwords."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from accountdesk.accounts import service as accounts
from accountdesk.contacts import service
from accountdesk.contacts.schemas import ContactCreate, ContactUpdate, ManualPassword
from accountdesk.core.idempotency import IDEMPOTENT, IDEMPOTENT_IN_TRANSACTION, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import api_staff
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(route_class=ApiRoute, prefix="/api/v1/accounts/{account_id}/contacts", tags=["contacts"])
Reader = Annotated[StaffPrincipal, Depends(api_staff(READ))]
Manager = Annotated[StaffPrincipal, Depends(api_staff(MANAGE_CUSTOMERS))]


def base_url(request: Request) -> str:
    return request.app.state.settings.base_url


@router.get("")
def list_contacts(account_id: Id, session: DbSession, staff: Reader) -> list[dict[str, Any]]:
    """The account's contacts (storefront users)."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return [service.describe(c) for c in service.list_contacts(session, account)]


@router.post("", status_code=201, dependencies=[IDEMPOTENT_IN_TRANSACTION])
def create_contact(account_id: Id, body: ContactCreate, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Add a contact; first name, last name, e-mail and phone are mandatory."""
    account = accounts.get_account(session, staff.reseller_scope, account_id, lock=True)
    return service.describe(service.create_contact(session, staff.actor, account, body.model_dump(),
                                                   reseller_scope=staff.reseller_scope))


@router.get("/{contact_id}")
def read_contact(account_id: Id, contact_id: Id, session: DbSession, staff: Reader) -> dict[str, Any]:
    """One contact."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return service.describe(service.get_contact(session, account, contact_id))


@router.patch("/{contact_id}")
def update_contact(account_id: Id, contact_id: Id, body: ContactUpdate, session: DbSession,
                   staff: Manager) -> dict[str, Any]:
    """Change some fields of a contact."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    contact = service.get_contact(session, account, contact_id)
    service.update_contact(session, staff.actor, contact, body.model_dump(exclude_unset=True))
    return service.describe(contact)


@router.post("/{contact_id}/activate")
def activate(account_id: Id, contact_id: Id, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Let the contact sign in again."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    contact = service.get_contact(session, account, contact_id)
    service.set_active(session, staff.actor, contact, True)
    return service.describe(contact)


@router.post("/{contact_id}/deactivate")
def deactivate(account_id: Id, contact_id: Id, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Stop the contact signing in; their open sessions end at once."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    contact = service.get_contact(session, account, contact_id)
    service.set_active(session, staff.actor, contact, False)
    return service.describe(contact)


@router.post("/{contact_id}/password-reset", status_code=202, dependencies=[IDEMPOTENT])
def send_reset_link(account_id: Id, contact_id: Id, request: Request, session: DbSession,
                    staff: Manager) -> dict[str, str]:
    """E-mail the contact a single-use link to choose a new password; a contact who never had one gets the welcome
    e-mail with an activation link instead (`email`: password_reset or activation)."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    sent = service.send_password_reset(session, staff.actor, service.get_contact(session, account, contact_id),
                                       request.app.state.settings)
    return {"status": "sent", "email": sent}


@router.put("/{contact_id}/password", status_code=204)
def set_password(account_id: Id, contact_id: Id, body: ManualPassword, request: Request, session: DbSession,
                 staff: Manager) -> Response:
    """Enter a password for the contact, where the storefront allows manual entry."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    contact = service.get_contact(session, account, contact_id)
    service.set_manual_password(session, staff.actor, contact, body.password, base_url(request))
    return Response(status_code=204)
