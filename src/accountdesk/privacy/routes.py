"""Personal data API for staff: a contact's data as one JSON document, its erasure, and legal holds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from accountdesk.accounts import service as accounts
from accountdesk.contacts import service as contacts
from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.privacy import service
from accountdesk.privacy.schemas import ErasureIn, ErasureOut, LegalHoldIn, LegalHoldOut
from accountdesk.staff.deps import api_staff
from accountdesk.staff.service import ADMIN, MANAGE_CUSTOMERS, StaffPrincipal

router = APIRouter(route_class=ApiRoute, prefix="/api/v1/accounts/{account_id}", tags=["personal data"])
Manager = Annotated[StaffPrincipal, Depends(api_staff(MANAGE_CUSTOMERS))]
Admin = Annotated[StaffPrincipal, Depends(api_staff(ADMIN))]


@router.get("/contacts/{contact_id}/personal-data", response_model=dict[str, Any])
def personal_data(account_id: Id, contact_id: Id, session: DbSession, staff: Manager) -> JSONResponse:
    """Everything held about the contact's person (every login of their e-mail in your scope), machine-readable."""
    contact = contacts.get_contact(session, accounts.get_account(session, staff.reseller_scope, account_id),
                                   contact_id)
    person = service.person_for_staff(session, staff.reseller_scope, contact)
    return JSONResponse(service.export(session, person), headers={
        "Content-Disposition": f'attachment; filename="{service.export_filename(person)}"'})


@router.post("/contacts/{contact_id}/erasure", response_model=ErasureOut, dependencies=[IDEMPOTENT])
def erase(account_id: Id, contact_id: Id, body: ErasureIn, session: DbSession, staff: Admin) -> ErasureOut:
    """Erase the person's personal data and logins (every login of their e-mail); orders and invoices stay.
    409 `open_orders` or `legal_hold` while the data is still needed, `already_erased` the second time."""
    contact = contacts.get_contact(session, accounts.get_account(session, staff.reseller_scope, account_id),
                                   contact_id)
    person = service.person_for_staff(session, staff.reseller_scope, contact)
    service.erase(session, staff.actor, person, body.reason)
    return ErasureOut(contact_ids=person.ids)


@router.put("/contacts/{contact_id}/legal-hold", response_model=LegalHoldOut)
def contact_legal_hold(account_id: Id, contact_id: Id, body: LegalHoldIn, session: DbSession,
                       staff: Admin) -> LegalHoldOut:
    """Put a legal hold on the contact (their data cannot be erased) or lift it; recorded in the history."""
    contact = contacts.get_contact(session, accounts.get_account(session, staff.reseller_scope, account_id),
                                   contact_id)
    service.set_legal_hold(session, staff.actor, contact, body.legal_hold, body.reason)
    return LegalHoldOut(legal_hold=contact.legal_hold)


@router.put("/legal-hold", response_model=LegalHoldOut)
def account_legal_hold(account_id: Id, body: LegalHoldIn, session: DbSession, staff: Admin) -> LegalHoldOut:
    """Put a legal hold on the account (none of its contacts' data can be erased) or lift it."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    service.set_legal_hold(session, staff.actor, account, body.legal_hold, body.reason)
    return LegalHoldOut(legal_hold=account.legal_hold)
