"""ERP API for staff: web accounts pushed to the ERP with their retry, instant accounts made from ERP data and
remapping an account to an ERP code. The rules live in registration.erp."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from accountdesk.accounts import service as accounts
from accountdesk.contacts import service as contacts
from accountdesk.core.errors import Forbidden, field_error
from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.erp.deps import Erp
from accountdesk.registration import erp as service
from accountdesk.registration.erp_schemas import ErpCodeIn, InstantAccountIn
from accountdesk.staff.deps import api_staff
from accountdesk.staff.models import StaffRole
from accountdesk.staff.service import MANAGE_CUSTOMERS, OPERATOR, StaffPrincipal
from accountdesk.storefronts.models import Storefront

router = APIRouter(route_class=ApiRoute, prefix="/api/v1")
INSTANT = frozenset({StaffRole.admin, StaffRole.csr})  # operator staff who manage customers
Operator = Annotated[StaffPrincipal, Depends(api_staff(OPERATOR))]
Manager = Annotated[StaffPrincipal, Depends(api_staff(MANAGE_CUSTOMERS))]
Instant = Annotated[StaffPrincipal, Depends(api_staff(INSTANT))]
PUSH_STATUSES = {"failed": ("failed",), "pending": ("pending", "sending"), "sent": ("sent",),
                 "open": ("failed", "pending", "sending")}


def _operator(staff: StaffPrincipal) -> StaffPrincipal:
    if staff.reseller_scope is not None:
        raise Forbidden("Only the distributor's staff work with the ERP.", code="operator_only")
    return staff


@router.get("/erp/pushes", tags=["erp"])
def list_pushes(session: DbSession, staff: Operator,
                status: Literal["failed", "pending", "sent", "open"] = "open") -> dict[str, Any]:
    """Pushes of web accounts to the ERP: failed, pending (waiting or under way), sent, or open (the default)."""
    return {"items": [service.describe_push(p) for p in service.pushes(session, PUSH_STATUSES[status])]}


@router.post("/erp/pushes/{message_id}/retry", tags=["erp"], dependencies=[IDEMPOTENT])
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


@router.post("/erp/instant-accounts", status_code=201, tags=["erp"], dependencies=[IDEMPOTENT])
def create_instant_account(body: InstantAccountIn, request: Request, session: DbSession, staff: Instant,
                           erp: Erp) -> dict[str, Any]:
    """Make the account of an ERP customer and invite its contact with this e-mail (activation e-mail)."""
    contact = service.create_instant_account(session, staff.actor, erp, _storefront(session, body.storefront_id),
                                             body.email, body.account_code, request.app.state.settings,
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
