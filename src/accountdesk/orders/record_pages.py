"""The console's account record shows the account's orders (accounts.pages.RECORD_SECTIONS), and one order opens on
a page of its own: its lines, totals and what other packages offer to do with it (ORDER_PAGE_PARTS: carts adds "Copy
into cart"). Scoped like the record: an account outside the staff user's scope, or an order of another account,
answers 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.accounts.pages import RECORD_SECTIONS, account_url
from accountdesk.core.pages import Form, PageRoute, page
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.orders import service
from accountdesk.orders.models import Order
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(prefix="/console/accounts/{account_id}/orders", route_class=PageRoute, include_in_schema=False)
Reader = Annotated[StaffPrincipal, Depends(console_page(READ))]
ORDERS_SHOWN = 20
# What other packages show on an order's page, as template values (carts: the logins its lines can be copied to).
ORDER_PAGE_PARTS: list[Callable[[Session, Account, Order], dict[str, Any]]] = []


def order_url(account: Account, order: Order) -> str:
    return f"{account_url(account)}/orders/{order.id}"


def _record_section(session: Session, account: Account) -> dict[str, Any]:
    """The newest orders of the account, for its record page."""
    return {"account_orders": service.list_orders(session, account, per_page=ORDERS_SHOWN)}


RECORD_SECTIONS.append(_record_section)


@router.get("/{order_id}")
def order_page(account_id: Id, order_id: Id, request: Request, session: DbSession, staff: Reader) -> Response:
    """One order of the account: number, date, status, lines and totals."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return render_order(request, session, staff, account, service.order_of(session, account, order_id))


def render_order(request: Request, session: Session, staff: StaffPrincipal, account: Account, order: Order, *,
                 forms: dict[str, Form] | None = None, status: int = 200) -> Response:
    """The order's page; `forms` holds a refused form of a part to show again with its messages."""
    return page(request, "orders/order.html", {
        "staff": staff, "account": account, "order": order, "can_manage": staff.may(MANAGE_CUSTOMERS),
        "forms": forms or {},
        **{key: value for part in ORDER_PAGE_PARTS for key, value in part(session, account, order).items()}}, status)
