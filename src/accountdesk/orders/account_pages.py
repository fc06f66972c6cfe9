"""The storefront's account page of a signed-in login: its orders, and the statements, invoices and credit read from
the ERP (for its account admins). Rules: orders.overview and orders.finances."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from accountdesk.core.errors import AppError
from accountdesk.core.i18n import later
from accountdesk.core.web import DbSession
from accountdesk.erp.deps import Erp
from accountdesk.orders import overview
from accountdesk.signin.account_pages import storefront_page
from accountdesk.signin.pages import StorefrontPageRoute

storefront_pages = APIRouter(prefix="/s/{slug}", route_class=StorefrontPageRoute)


@storefront_pages.get("/account")
def account_overview(slug: str, request: Request, session: DbSession, erp: Erp) -> Response:
    """The signed-in login's account: orders, and statements, invoices and credit read from the ERP."""
    view = overview.read_overview(session, request, slug)
    finances, erp_message = None, ""
    try:
        finances = overview.login_finances(erp, view.storefront, view.signed_in.contact)
    except AppError as exc:
        erp_message = later(exc.message)
    return storefront_page(request, "erp/account.html", view.storefront, {
        "signed_in": view.signed_in, "orders": view.orders, "switchable": view.switchable, "finances": finances,
        "erp_message": erp_message})


router = APIRouter(include_in_schema=False)
router.include_router(storefront_pages)
