"""Storefront API of a signed-in login's account: its finances read from the ERP (for its account admins). The
account's orders are in the orders API (resellers.order_routes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from accountdesk.erp.deps import Erp
from accountdesk.orders import overview
from accountdesk.orders.finances import describe_finances
from accountdesk.signin.session import ApiContact

router = APIRouter(prefix="/api/v1")


@router.get("/storefronts/{slug}/account/erp-summary", tags=["storefront accounts"])
def erp_summary(signed_in: ApiContact, erp: Erp) -> dict[str, Any]:
    """Credit limit, balance, invoices and statements of the signed-in admin's account, read from the ERP."""
    finances = overview.login_finances(erp, signed_in.storefront, signed_in.contact)
    account = signed_in.contact.account
    return {"account_id": account.id, "account_number": account.number, **describe_finances(finances)}
