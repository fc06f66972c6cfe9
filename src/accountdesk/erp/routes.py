"""ERP API: for storefronts, switching between the logins of one e-mail, the account's finances from the ERP and
re-verification; for staff, ERP pushes with their retry, instant accounts made from ERP data and remapping an
account to an ERP code. The rules live in erp.service (and storefronts.switcher / reverification)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from accountdesk.accounts import service as accounts
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact
from accountdesk.core.errors import AppError, Forbidden, NotAuthenticated, field_error
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession, error_response, get_db
from accountdesk.erp import overview, service
from accountdesk.erp.deps import Erp
from accountdesk.erp.schemas import ErpCodeIn, InstantAccountIn, ReverificationIn, SwitchIn
from accountdesk.staff.deps import api_staff
from accountdesk.staff.models import StaffRole
from accountdesk.staff.service import MANAGE_CUSTOMERS, OPERATOR, StaffPrincipal
from accountdesk.storefronts import reverification, switcher
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.session import ApiContact, CurrentStorefront, StorefrontSignIn, api_sign_in_body

router = APIRouter(prefix="/api/v1")
INSTANT = frozenset({StaffRole.admin, StaffRole.csr})  # operator staff who manage customers
Operator = Annotated[StaffPrincipal, Depends(api_staff(OPERATOR))]
Manager = Annotated[StaffPrincipal, Depends(api_staff(MANAGE_CUSTOMERS))]
Instant = Annotated[StaffPrincipal, Depends(api_staff(INSTANT))]
PUSH_STATUSES = {"failed": ("failed",), "pending": ("pending", "sending"), "sent": ("sent",),
                 "open": ("failed", "pending", "sending")}


def _refused(exc: AppError) -> JSONResponse:
    """A refusal answered rather than raised, so that what the checks recorded is committed."""
    return error_response(exc.status_code, exc.code, exc.message, exc.fields, exc.headers)


def _api_sign_in(request: Request, slug: str) -> StorefrontSignIn:
    _, signed_in = switcher.read_sign_in(get_db(request), request, slug)
    if signed_in is None:
        raise NotAuthenticated("Sign in to this storefront first: Authorization: Bearer <token>.",
                               code="not_signed_in", headers={"WWW-Authenticate": "Bearer"})
    return signed_in


# --- storefront: several accounts, finances, re-verification -------------------------------------------------------

@router.get("/storefronts/{slug}/switchable-accounts", tags=["storefront accounts"])
def switchable_accounts(session: DbSession, signed_in: ApiContact) -> dict[str, Any]:
    """The logins of this e-mail the signed-in account admin may switch to (same customer group)."""
    return {"current_contact_id": signed_in.contact.id, "accounts": [
        {"contact_id": c.id, "account_id": c.account_id, "account_number": c.account.number,
         "account_name": c.account.name, "customer_group": c.account.customer_group,
         "current": c.id == signed_in.contact.id} for c in switcher.switchable(session, signed_in.contact)]}


@router.post("/storefronts/{slug}/switch", status_code=201, tags=["storefront accounts"])
def switch_account(slug: str, body: SwitchIn, request: Request, session: DbSession, erp: Erp) -> Any:
    """Switch to another login without signing in again: this token ends, a new one is returned."""
    signed_in, target = switcher.prepare_switch(get_db(request), request, slug, body.contact_id)
    try:
        service.verify_sign_in(session, erp, signed_in.storefront, target)
    except AppError as exc:
        return _refused(exc)
    token = switcher.switch_api_session(session, signed_in, target, request.app.state.settings)
    return api_sign_in_body(token, session.get(Contact, target.id), request.app.state.settings)


@router.get("/storefronts/{slug}/account/erp-summary", tags=["storefront accounts"])
def erp_summary(slug: str, request: Request, erp: Erp) -> dict[str, Any]:
    """Credit limit, balance, invoices and statements of the signed-in admin's account, read from the ERP."""
    signed_in = _api_sign_in(request, slug)
    finances = overview.login_finances(erp, signed_in.storefront, signed_in.contact)
    account = signed_in.contact.account
    return {"account_id": account.id, "account_number": account.number, **service.describe_finances(finances)}


@router.post("/storefronts/{slug}/reverifications", tags=["storefront sign-in"])
def complete_reverification(body: ReverificationIn, session: DbSession,
                            storefront: CurrentStorefront) -> dict[str, str]:
    """Confirm an expired login with the token of its re-verification link; the password stays the same."""
    reverification.reverify(session, storefront, body.token)
    return {"status": "reverified"}


# --- staff: pushes, instant accounts, remapping --------------------------------------------------------------------

def _operator(staff: StaffPrincipal) -> StaffPrincipal:
    if staff.reseller_scope is not None:
        raise Forbidden("Only the distributor's staff work with the ERP.", code="operator_only")
    return staff


@router.get("/erp/pushes", tags=["erp"])
def list_pushes(session: DbSession, staff: Operator,
                status: Literal["failed", "pending", "sent", "open"] = "open") -> dict[str, Any]:
    """Pushes of web accounts to the ERP: failed, pending (waiting or under way), sent, or open (the default)."""
    return {"items": [service.describe_push(p) for p in service.pushes(session, PUSH_STATUSES[status])]}


@router.post("/erp/pushes/{message_id}/retry", tags=["erp"])
def retry_push(message_id: Id, session: DbSession, staff: Operator) -> dict[str, Any]:
    """Send a failed push again now."""
    return service.describe_push(service.retry_push(session, staff.actor, message_id))


@router.get("/erp/contacts", tags=["erp"])
def find_erp_contacts(session: DbSession, staff: Instant, erp: Erp, storefront_id: Id,
                      email: Annotated[str, Query(min_length=3, max_length=320)]) -> dict[str, Any]:
    """ERP contacts with this e-mail, their accounts, and whether each may have an instant account."""
    storefront = _storefront(session, storefront_id)
    return {"items": [{"account_code": m.contact.account_code, "account_name": m.account.name if m.account else None,
                       "customer_group": m.account.group if m.account else None, "first_name": m.contact.first_name,
                       "last_name": m.contact.last_name, "email": m.contact.email, "refusal": m.refusal or None}
                      for m in service.erp_matches(erp, storefront, email)]}


@router.post("/erp/instant-accounts", status_code=201, tags=["erp"])
def create_instant_account(body: InstantAccountIn, request: Request, session: DbSession, staff: Instant,
                           erp: Erp) -> dict[str, Any]:
    """Make the account of an ERP customer and invite its contact with this e-mail (activation e-mail)."""
    contact = service.create_instant_account(session, staff.actor, erp, _storefront(session, body.storefront_id),
                                             body.email, body.account_code, request.app.state.settings.base_url,
                                             body.role)
    return {"account": accounts.describe(session, contact.account), "contact": contacts.describe(contact)}


@router.put("/accounts/{account_id}/erp-code", tags=["erp"])
def remap_erp_code(account_id: Id, body: ErpCodeIn, session: DbSession, staff: Manager,
                   erp: Erp) -> dict[str, Any]:
    """Map the account to a customer created in the ERP by hand (it must exist there)."""
    account = accounts.get_account(session, _operator(staff).reseller_scope, account_id, lock=True)
    service.remap_erp_code(session, staff.actor, erp, account, body.erp_code)
    return accounts.describe(session, account)


def _storefront(session: DbSession, storefront_id: int) -> Storefront:
    storefront = session.get(Storefront, storefront_id)
    if storefront is None:
        raise field_error("storefront_id", "No such storefront.")
    return storefront
