"""Console: each login's active cart and favourites on the account record, and "Copy into cart" on an order's page,
which puts the order's lines into the cart of a login (buyer) of the same account through carts.service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.accounts.pages import RECORD_SECTIONS, account_url
from accountdesk.carts import service
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactStatus
from accountdesk.core.errors import field_error
from accountdesk.core.i18n import _l, filled
from accountdesk.core.pages import Form, PageRoute, attempt, flash_redirect, form_fields
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.orders import service as orders
from accountdesk.orders.models import Order
from accountdesk.orders.record_pages import ORDER_PAGE_PARTS, order_url, render_order
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, StaffPrincipal

router = APIRouter(prefix="/console/accounts/{account_id}/orders", route_class=PageRoute, include_in_schema=False)
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
NOT_A_BUYER = _l("Choose a login of this customer.")


def _record_section(session: Session, account: Account) -> dict[str, Any]:
    """Every login's cart and favourites, for the account's record page."""
    return {"login_carts": service.carts_of(session, contacts.list_contacts(session, account))}


def buyers(session: Session, account: Account) -> list[Contact]:
    """The logins an order of the account can be copied for: its contacts not deactivated nor erased."""
    return [c for c in contacts.list_contacts(session, account)
            if c.status != ContactStatus.deactivated and c.erased_at is None]


def _order_part(session: Session, account: Account, order: Order) -> dict[str, Any]:
    """The "Copy into cart" form of an order's page: the logins to choose from."""
    return {"copy_to_cart": [(str(c.id), f"{c.name} · {c.email}") for c in buyers(session, account)],
            "copy_to_cart_url": f"{order_url(account, order)}/copy-to-cart", "copy_form": Form(prefix="copy")}


RECORD_SECTIONS.append(_record_section)
ORDER_PAGE_PARTS.append(_order_part)


@router.post("/{order_id}/copy-to-cart")
def copy_to_cart(account_id: Id, order_id: Id, request: Request, session: DbSession, staff: Manager,
                 form: Fields) -> Response:
    """Copy the order's lines into the chosen login's active cart (in the account's history)."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    order = orders.order_of(session, account, order_id)
    contact, errors = attempt(session, lambda: _copy(session, staff, account, order, form.get("contact_id", "")))
    if contact is None:
        return render_order(request, session, staff, account, order,
                            forms={"copy": Form.refused(form, errors, "copy")}, status=422)
    done = filled(_l("The lines of order %(number)s are in the cart of %(name)s."), number=order.number,
                  name=contact.name)
    return flash_redirect(request, account_url(account) + "#carts", done)


def _copy(session: Session, staff: StaffPrincipal, account: Account, order: Order, chosen: str) -> Contact:
    contact = next((c for c in buyers(session, account) if str(c.id) == chosen), None)
    if contact is None:
        raise field_error("contact_id", NOT_A_BUYER)
    service.copy_order(session, staff.actor, order, contact)
    return contact
