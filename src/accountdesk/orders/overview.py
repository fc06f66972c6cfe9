"""What a signed-in login sees of its account on the storefront: orders, the logins it may switch to, and the
finances read from the ERP. Local data is read first and the ERP afterwards, before the request writes anything
(see signin.erp_check)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session

from accountdesk.contacts.models import Contact, ContactRole
from accountdesk.core.errors import Forbidden, NotFound
from accountdesk.core.i18n import _l
from accountdesk.core.pages import sign_in_required
from accountdesk.erp.gateway import ErpGateway
from accountdesk.orders import service as orders
from accountdesk.orders.finances import Finances, finances
from accountdesk.signin import switcher
from accountdesk.signin.session import SignInRequired, StorefrontSignIn, current_sign_in, sign_in_path
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.policy import by_slug

ORDERS_SHOWN = 20
NOT_LINKED = _l("Statements and credit details appear here once your account is linked to our records.")
ADMINS_ONLY = _l("Statements and credit details are shown to your account administrators.")


@dataclass(frozen=True)
class Overview:
    storefront: Storefront
    signed_in: StorefrontSignIn
    orders: orders.OrderPage
    switchable: list[Contact]


def read_overview(session: Session, request: Request, slug: str) -> Overview:
    """The login's orders and switchable logins; SignInRequired (a redirect) when nobody is signed in."""
    storefront = by_slug(session, slug)
    signed_in = current_sign_in(request, session, storefront)
    if signed_in is None:
        raise SignInRequired(sign_in_required(request, sign_in_path(storefront)).url)
    return Overview(storefront, signed_in, orders.list_orders(session, signed_in.contact.account,
                                                              per_page=ORDERS_SHOWN),
                    switcher.switchable(session, signed_in.contact))


def login_finances(gateway: ErpGateway, storefront: Storefront, contact: Contact) -> Finances:
    """The finances of the login's account, for its account admins; NotFound when the account has no ERP code,
    ErpUnreachableError when the ERP cannot be read."""
    code = contact.account.erp_code
    if not code:
        raise NotFound(NOT_LINKED, code="erp_not_linked")
    if contact.role != ContactRole.account_admin:
        raise Forbidden(ADMINS_ONLY, code="account_admins_only")
    return finances(gateway, code, storefront.invoice_window_days)
