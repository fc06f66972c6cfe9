"""Storefront API of a signed-in login's account: its finances read from the ERP (for its account admins). The
account's orders are in the orders API (resellers.order_routes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from accountdesk.core.errors import NotAuthenticated
from accountdesk.core.web import get_db
from accountdesk.erp.deps import Erp
from accountdesk.orders import overview
from accountdesk.orders.finances import describe_finances
from accountdesk.signin import switcher
from accountdesk.signin.session import StorefrontSignIn

router = APIRouter(prefix="/api/v1")


def _api_sign_in(request: Request, slug: str) -> StorefrontSignIn:
    _, signed_in = switcher.read_sign_in(get_db(request), request, slug)
    if signed_in is None:
        raise NotAuthenticated("Sign in to this storefront first: Authorization: Bearer <token>.",
                               code="not_signed_in", headers={"WWW-Authenticate": "Bearer"})
    return signed_in


@router.get("/storefronts/{slug}/account/erp-summary", tags=["storefront accounts"])
def erp_summary(slug: str, request: Request, erp: Erp) -> dict[str, Any]:
    """Credit limit, balance, invoices and statements of the signed-in admin's account, read from the ERP."""
    signed_in = _api_sign_in(request, slug)
    finances = overview.login_finances(erp, signed_in.storefront, signed_in.contact)
    account = signed_in.contact.account
    return {"account_id": account.id, "account_number": account.number, **describe_finances(finances)}
