"""Console pages for orders: accept or cancel a pending order after the confirmation on the customer record, and
the Orders.xlsx export of a customer's orders (the record page itself is resellers.pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from accountdesk.core import exports
from accountdesk.core.confirmations import confirmed
from accountdesk.core.errors import NotFound
from accountdesk.core.i18n import filled, joined
from accountdesk.core.pages import PageRoute, attempt, flash_redirect
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.orders import service
from accountdesk.resellers import service as resellers
from accountdesk.resellers.pages import ORDER_ACTIONS, Fields, customer_url, order_confirmation, record_page
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(prefix="/console/resellers/{reseller_id}", route_class=PageRoute, include_in_schema=False)
Reader = Annotated[StaffPrincipal, Depends(console_page(READ))]
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]


@router.get("/customers/{customer_id}/orders/export")
def export_orders(reseller_id: Id, customer_id: Id, session: DbSession, staff: Reader,
                  q: Annotated[str, Query(max_length=200)] = "",
                  fmt: Annotated[exports.Format, Query(alias="format")] = "xlsx") -> Response:
    """The orders table's Excel button: Orders.xlsx with the current search."""
    reseller = resellers.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = resellers.get_customer(session, reseller, customer_id)
    return exports.export_response("Orders", fmt, service.EXPORT_COLUMNS, service.export_rows(session, customer, q),
                                   language=staff.user.language)


@router.post("/orders/{order_id}/{action}")
def decide_order(reseller_id: Id, order_id: Id, action: str, request: Request, session: DbSession,
                 staff: Manager, form: Fields) -> Response:
    """Yes on a confirmation: accept or cancel a pending order (asked first when the form does not say yes); a
    decision taken meanwhile is reported, not undone."""
    if action not in ORDER_ACTIONS:
        raise NotFound("No such action.")
    reseller = resellers.get_reseller(session, staff.reseller_scope, reseller_id)
    order = service.get_order(session, reseller.id, order_id)
    customer = resellers.get_customer(session, reseller, order.account_id)
    if not confirmed(form):
        return record_page(request, session, staff, reseller, customer,
                           confirm=order_confirmation(reseller, customer, order, action))
    actor = resellers.actor_for(staff.actor, reseller)
    _, errors = attempt(session, lambda: service.decide(session, actor, order, accept=action == "accept",
                                                        staff_id=staff.user.id))
    if errors:
        session.refresh(order)
        return record_page(request, session, staff, reseller, customer, problem=joined(list(errors.values())),
                           status=409)
    done = filled(ORDER_ACTIONS[action][4], number=order.number)
    return flash_redirect(request, customer_url(reseller, customer, "orders"), done)
