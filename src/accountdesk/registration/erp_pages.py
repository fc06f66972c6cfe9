"""ERP console pages: web accounts pushed to the ERP with their retry button, instant accounts made from ERP data,
and remapping an account to an ERP code (a section of the account record). Rules live in registration.erp."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from accountdesk.accounts import pages as account_pages
from accountdesk.accounts import service as accounts
from accountdesk.contacts.models import ContactRole
from accountdesk.core import outbox
from accountdesk.core.errors import AppError, BadRequest, Forbidden
from accountdesk.core.i18n import _l, later
from accountdesk.core.pages import Form, PageRoute, field_errors, flash_redirect, form_fields, page
from accountdesk.core.validation import Id, parse_id
from accountdesk.core.web import DbSession
from accountdesk.erp.deps import Erp
from accountdesk.erp.gateway import ErpGateway
from accountdesk.registration import erp as service
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, OPERATOR, StaffPrincipal
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.policy import list_storefronts

console_pages = APIRouter(prefix="/console", route_class=PageRoute)
Operator = Annotated[StaffPrincipal, Depends(console_page(OPERATOR))]
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
ROLES = [(ContactRole.buyer.value, "Buyer"), (ContactRole.account_admin.value, "Account admin")]


@console_pages.get("/erp")
def erp_pushes(request: Request, session: DbSession, staff: Operator) -> Response:
    """Web accounts waiting to reach the ERP or refused by it, with a retry button; e-mails that could not be sent."""
    return page(request, "erp/pushes.html", {
        "staff": staff, "pushes": service.pushes(session, ("failed", "pending", "sending")),
        "undelivered": outbox.failed(session, "email")})


@console_pages.post("/erp/pushes/{message_id}/retry")
def retry_push(message_id: Id, request: Request, session: DbSession, staff: Operator) -> Response:
    """Send a failed push again now."""
    push = service.retry_push(session, staff.actor, message_id)
    name = push.account.name if push.account else _l("push %(id)s", id=message_id)
    return flash_redirect(request, "/console/erp", _l("%(name)s: the push will be tried again now.", name=name))


def _instant_staff(staff: StaffPrincipal) -> StaffPrincipal:
    if staff.reseller_scope is not None or not staff.may(MANAGE_CUSTOMERS):
        raise Forbidden(f"Your role ({staff.user.role}) may not create instant accounts.", code="role_forbidden")
    return staff


def _instant_page(request: Request, session: Session, staff: StaffPrincipal, erp: ErpGateway, email: str,
                  storefront_id: int | None, form: Form | None = None, status: int = 200) -> Response:
    storefronts = list_storefronts(session)
    storefront = next((s for s in storefronts if s.id == storefront_id), storefronts[0] if storefronts else None)
    matches, search_error = [], ""
    if email.strip() and storefront is not None:
        try:
            matches = service.erp_matches(erp, storefront, email)
        except AppError as exc:
            search_error, status = later(exc.message), max(status, exc.status_code)
    return page(request, "erp/instant.html", {
        "staff": staff, "email": email.strip(), "storefronts": storefronts, "storefront": storefront,
        "matches": matches, "search_error": search_error, "roles": ROLES, "form": form or Form(prefix="instant")},
        status)


@console_pages.get("/erp/instant")
def instant_form(request: Request, session: DbSession, staff: Operator, erp: Erp, email: str = "",
                 storefront_id: Id | None = None) -> Response:
    """Search the ERP by e-mail, pick the contact and the storefront, and invite them (instant account)."""
    return _instant_page(request, session, _instant_staff(staff), erp, email, storefront_id)


@console_pages.post("/erp/instant")
def create_instant_account(request: Request, session: DbSession, staff: Operator, erp: Erp,
                           form: Fields) -> Response:
    """Create (or reuse) the account from the ERP and send the contact's activation e-mail."""
    _instant_staff(staff)
    storefront_id = parse_id(form.get("storefront_id", ""))
    storefront = session.get(Storefront, storefront_id) if storefront_id else None
    try:
        if storefront is None:
            raise BadRequest("Choose a storefront.")
        with session.begin_nested():
            contact = service.create_instant_account(
                session, staff.actor, erp, storefront, form.get("email", ""), form.get("account_code", ""),
                request.app.state.settings, form.get("role") or ContactRole.buyer)
    except AppError as exc:
        return _instant_page(request, session, staff, erp, form.get("email", ""), storefront_id,
                             Form.refused(form, field_errors(exc), "instant"), exc.status_code)
    return flash_redirect(request, f"/console/accounts/{contact.account_id}",
                          _l("%(email)s is invited to %(storefront)s: the activation e-mail is on its way.",
                             email=contact.email, storefront=storefront.name))


@console_pages.post("/accounts/{account_id}/erp-code")
def remap_erp_code(account_id: Id, request: Request, session: DbSession, staff: Manager, erp: Erp,
                   form: Fields) -> Response:
    """Map the account to a customer created in the ERP by hand (the ERP code must exist there)."""
    if staff.reseller_scope is not None:
        raise Forbidden("Only the distributor's staff map accounts to the ERP.", code="operator_only")
    account = accounts.get_account(session, None, account_id, lock=True)
    try:
        with session.begin_nested():
            changes = service.remap_erp_code(session, staff.actor, erp, account, form.get("erp_code", ""))
    except AppError as exc:
        refused = {"erp": Form.refused(form, field_errors(exc), "erp")}
        return account_pages.record_page(request, session, staff, account, refused=refused, status=exc.status_code)
    message = (_l("Mapped to ERP customer %(code)s.", code=account.erp_code) if changes
               else _l("The ERP code did not change."))
    return flash_redirect(request, f"/console/accounts/{account.id}#erp", message)


router = APIRouter(include_in_schema=False)
router.include_router(console_pages)
