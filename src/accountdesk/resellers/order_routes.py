"""Orders API: a signed-in contact orders on the storefront; reseller staff order on a customer's behalf, list,
export, and accept or cancel pending orders. Another reseller's orders answer 404 as if they did not exist."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from accountdesk.contacts.service import contact_may_order
from accountdesk.core import exports
from accountdesk.core.errors import Forbidden, NotAuthenticated, field_error
from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.oidc.backend import backend_credential
from accountdesk.oidc.claims import contact_by_subject
from accountdesk.orders import service
from accountdesk.orders.schemas import OrderIn, OrderOut, OrderPage, StorefrontOrderIn
from accountdesk.resellers import service as resellers
from accountdesk.signin.session import ApiContact, CurrentStorefront, OptionalContact
from accountdesk.staff.deps import api_staff
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(route_class=ApiRoute, prefix="/api/v1", tags=["orders"])
Reader = Annotated[StaffPrincipal, Depends(api_staff(READ))]
Manager = Annotated[StaffPrincipal, Depends(api_staff(MANAGE_CUSTOMERS))]
Search = Annotated[str, Query(max_length=200)]
CUSTOMER_ORDERS = "/resellers/{reseller_id}/customers/{customer_id}/orders"


@router.post("/storefronts/{slug}/orders", status_code=201, response_model=OrderOut, dependencies=[IDEMPOTENT])
def place_storefront_order(body: StorefrontOrderIn, request: Request, session: DbSession,
                           storefront: CurrentStorefront, signed_in: OptionalContact) -> dict[str, Any]:
    """Order as the signed-in contact, without prices (422 price_not_allowed: a buyer's own token never prices an
    order), or, with the storefront's backend credential (scope orders:write), for the buyer named by `buyer`, with
    or without prices. It waits for the reseller's approval when the customer needs it."""
    backend = backend_credential(session, request, storefront)
    if backend is not None:
        backend.require("orders:write")
        contact = contact_by_subject(session, storefront.id, body.buyer) if body.buyer else None
        if contact is None:
            raise field_error("buyer", "Name a buyer of this storefront by the sub of their ID token.",
                              code="buyer_not_found")
        actor, may_price = backend.actor, True
    elif signed_in is not None:
        if body.buyer is not None:
            raise field_error("buyer", "Leave buyer out: you order for yourself.", code="buyer_not_allowed")
        contact, actor, may_price = signed_in.contact, signed_in.actor, False
    else:
        raise NotAuthenticated("Sign in to this storefront first: Authorization: Bearer <token>.",
                               code="not_signed_in", headers={"WWW-Authenticate": "Bearer"})
    if not contact_may_order(contact, storefront):
        raise Forbidden("Confirm your e-mail address before ordering.", code="email_not_verified")
    customer = contact.account
    order = service.place_order(session, actor, customer, resellers.reseller_of(session, customer),
                                [line.model_dump() for line in body.lines], may_price=may_price, contact=contact)
    return service.describe(order)


@router.get("/storefronts/{slug}/orders", response_model=OrderPage)
def list_storefront_orders(session: DbSession, signed_in: ApiContact, q: Search = "",
                           page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                           per_page: Annotated[int, Query(ge=1, le=100)] = 25) -> dict[str, Any]:
    """The signed-in contact's account's orders, newest first."""
    result = service.list_orders(session, signed_in.contact.account, q=q, page=page, per_page=per_page)
    return {"items": [service.describe(o) for o in result.items], "total": result.total, "page": page,
            "per_page": per_page}


@router.get(CUSTOMER_ORDERS, response_model=OrderPage)
def list_customer_orders(reseller_id: Id, customer_id: Id, session: DbSession, staff: Reader, q: Search = "",
                         page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                         per_page: Annotated[int, Query(ge=1, le=100)] = 25) -> dict[str, Any]:
    """The customer's orders, newest first; search by order number, status or SKU."""
    reseller = resellers.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = resellers.get_customer(session, reseller, customer_id)
    result = service.list_orders(session, customer, q=q, page=page, per_page=per_page)
    return {"items": [service.describe(o) for o in result.items], "total": result.total, "page": page,
            "per_page": per_page}


@router.post(CUSTOMER_ORDERS, status_code=201, response_model=OrderOut, dependencies=[IDEMPOTENT])
def place_customer_order(reseller_id: Id, customer_id: Id, body: OrderIn, session: DbSession,
                         staff: Manager) -> dict[str, Any]:
    """Order on the customer's behalf (placed by the reseller: no approval step)."""
    reseller = resellers.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = resellers.get_customer(session, reseller, customer_id)
    order = service.place_order(session, resellers.actor_for(staff.actor, reseller), customer, reseller,
                                [line.model_dump() for line in body.lines], may_price=True,
                                staff_id=staff.user.id)
    return service.describe(order)


@router.get(CUSTOMER_ORDERS + "/export", response_class=FileResponse)
def export_customer_orders(reseller_id: Id, customer_id: Id, request: Request, session: DbSession, staff: Reader,
                           q: Search = "",
                           fmt: Annotated[exports.Format, Query(alias="format")] = "xlsx") -> FileResponse:
    """Download the customer's orders (the current search applied) as Orders.xlsx or Orders.csv; titles and words
    in Accept-Language, else the staff user's language."""
    reseller = resellers.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = resellers.get_customer(session, reseller, customer_id)
    return exports.export_response("Orders", fmt, service.EXPORT_COLUMNS, service.export_rows(session, customer, q),
                                   language=exports.api_language(request, staff.user.language))


@router.get("/resellers/{reseller_id}/orders/{order_id}", response_model=OrderOut)
def read_order(reseller_id: Id, order_id: Id, session: DbSession, staff: Reader) -> dict[str, Any]:
    """One of the reseller's orders with its lines."""
    reseller = resellers.get_reseller(session, staff.reseller_scope, reseller_id)
    return service.describe(service.get_order(session, reseller.id, order_id))


@router.post("/resellers/{reseller_id}/orders/{order_id}/accept", response_model=OrderOut, dependencies=[IDEMPOTENT])
def accept_order(reseller_id: Id, order_id: Id, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Accept a pending order (409 order_already_decided when it was accepted or canceled meanwhile)."""
    reseller = resellers.get_reseller(session, staff.reseller_scope, reseller_id)
    order = service.get_order(session, reseller.id, order_id)
    service.decide(session, resellers.actor_for(staff.actor, reseller), order, accept=True, staff_id=staff.user.id)
    return service.describe(order)


@router.post("/resellers/{reseller_id}/orders/{order_id}/cancel", response_model=OrderOut, dependencies=[IDEMPOTENT])
def cancel_order(reseller_id: Id, order_id: Id, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Cancel (reject) a pending order (409 order_already_decided when it was decided meanwhile)."""
    reseller = resellers.get_reseller(session, staff.reseller_scope, reseller_id)
    order = service.get_order(session, reseller.id, order_id)
    service.decide(session, resellers.actor_for(staff.actor, reseller), order, accept=False, staff_id=staff.user.id)
    return service.describe(order)
