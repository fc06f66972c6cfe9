"""ERP pages. Storefront: the account overview (orders, statements, invoices, credit from the ERP), the account
switcher and the re-verification link. Console: ERP pushes with their retry button, instant accounts made from ERP
data, and remapping an account to an ERP code (a section of the account record). Rules live in erp.service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form as FormField, Request, Response
from sqlalchemy.orm import Session, object_session

from accountdesk.accounts import pages as account_pages
from accountdesk.accounts import service as accounts
from accountdesk.contacts.models import Contact, ContactRole
from accountdesk.core.errors import AppError, BadRequest, Forbidden
from accountdesk.core.forms import verify_csrf
from accountdesk.core.pages import Form, LinkToken, PageRoute, field_errors, flash_redirect, form_fields, page
from accountdesk.core.web import DbSession, get_db, templates
from accountdesk.erp import overview, service
from accountdesk.erp.deps import Erp
from accountdesk.erp.gateway import ErpGateway
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, OPERATOR, StaffPrincipal
from accountdesk.storefronts import reverification, switcher
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.pages import StorefrontPageRoute
from accountdesk.storefronts.policy import list_storefronts
from accountdesk.storefronts.session import CurrentStorefront, StorefrontSignIn, get_storefront, sign_in_contact

storefront_pages = APIRouter(prefix="/s/{slug}", route_class=StorefrontPageRoute)
console_pages = APIRouter(prefix="/console", route_class=PageRoute)
Operator = Annotated[StaffPrincipal, Depends(console_page(OPERATOR))]
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
Text = Annotated[str, FormField()]
CSRF = [Depends(verify_csrf)]
ROLES = [(ContactRole.buyer.value, "Buyer"), (ContactRole.account_admin.value, "Account admin")]


def _switch_options(signed_in: StorefrontSignIn | None) -> list[Contact]:
    """For the storefront header's account switcher on any page: the logins to switch between, read in the
    session the sign-in came from (empty when that session is closed; such pages pass `switchable` themselves)."""
    session = object_session(signed_in.contact) if signed_in else None
    return switcher.switchable(session, signed_in.contact) if session is not None else []


templates.env.globals["switch_options"] = _switch_options


def _storefront_page(request: Request, template: str, storefront: Storefront, context: dict[str, Any] | None = None,
                     *, error: AppError | None = None, headers: dict[str, str] | None = None) -> Response:
    response = page(request, template, {"storefront": storefront, "error": error.message if error else None,
                                        **(context or {})}, status_code=error.status_code if error else 200)
    response.headers.update({**(error.headers if error else {}), **(headers or {})})
    return response


# --- storefront ----------------------------------------------------------------------------------------------------

@storefront_pages.get("/account")
def account_overview(slug: str, request: Request, erp: Erp) -> Response:
    """The signed-in login's account: orders, and statements, invoices and credit read from the ERP."""
    view = overview.read_overview(get_db(request), request, slug)
    finances, erp_message = None, ""
    try:
        finances = overview.login_finances(erp, view.storefront, view.signed_in.contact)
    except AppError as exc:
        erp_message = exc.message
    return _storefront_page(request, "erp/account.html", view.storefront, {
        "signed_in": view.signed_in, "orders": view.orders, "switchable": view.switchable, "finances": finances,
        "erp_message": erp_message})


@storefront_pages.post("/switch", dependencies=CSRF)
def switch_account(slug: str, request: Request, session: DbSession, erp: Erp,
                   contact_id: Annotated[int, FormField()] = 0) -> Response:
    """Switch to another login of the same e-mail from the header's drop-down; a new session, no password."""
    try:
        signed_in, target = switcher.prepare_switch(get_db(request), request, slug, contact_id)
        service.verify_sign_in(session, erp, signed_in.storefront, target)
    except AppError as exc:  # answered, not raised: what the ERP check recorded is kept
        storefront = get_storefront(session, slug)
        return _storefront_page(request, "erp/refused.html", storefront, error=exc)
    response = flash_redirect(request, f"/s/{slug}/account", f"You are now working for {target.account.name}.")
    sign_in_contact(session, response, signed_in.storefront, target, request=request)
    switcher.record_switch(session, signed_in, target)
    return response


def _reverify_page(request: Request, session: Session, storefront: Storefront, token: str,
                   error: AppError | None = None) -> Response:
    contact = reverification.contact_for_link(session, storefront, token)
    if contact is None and error is None:
        error = BadRequest(reverification.LINK_INVALID)
    return _storefront_page(request, "erp/reverify.html", storefront, {"contact": contact}, error=error)


@storefront_pages.get("/reverify")
def reverify_form(request: Request, session: DbSession, storefront: CurrentStorefront, token: LinkToken) -> Response:
    """The re-verification link: a button to confirm it is still you (a link preview does not use it up)."""
    return _reverify_page(request, session, storefront, token)


@storefront_pages.post("/reverify", dependencies=CSRF)
def reverify(request: Request, session: DbSession, storefront: CurrentStorefront, token: LinkToken) -> Response:
    """Confirm: the login is active again with its password unchanged."""
    try:
        reverification.reverify(session, storefront, token)
    except AppError as exc:
        return _reverify_page(request, session, storefront, token, exc)
    return flash_redirect(request, f"/s/{storefront.slug}/sign-in",
                          "Thank you: your login is confirmed. Sign in with your usual password.")


# --- console -------------------------------------------------------------------------------------------------------

@console_pages.get("/erp")
def erp_pushes(request: Request, session: DbSession, staff: Operator) -> Response:
    """Web accounts waiting to reach the ERP or refused by it, with a retry button."""
    return page(request, "erp/pushes.html", {
        "staff": staff, "pushes": service.pushes(session, ("failed", "pending", "sending"))})


@console_pages.post("/erp/pushes/{message_id}/retry", dependencies=CSRF)
def retry_push(message_id: int, request: Request, session: DbSession, staff: Operator) -> Response:
    """Send a failed push again now."""
    push = service.retry_push(session, staff.actor, message_id)
    name = push.account.name if push.account else f"push {message_id}"
    return flash_redirect(request, "/console/erp", f"{name}: the push will be tried again now.")


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
            search_error, status = exc.message, max(status, exc.status_code)
    return page(request, "erp/instant.html", {
        "staff": staff, "email": email.strip(), "storefronts": storefronts, "storefront": storefront,
        "matches": matches, "search_error": search_error, "roles": ROLES, "form": form or Form(prefix="instant")},
        status)


@console_pages.get("/erp/instant")
def instant_form(request: Request, session: DbSession, staff: Operator, erp: Erp, email: str = "",
                 storefront_id: int | None = None) -> Response:
    """Search the ERP by e-mail, pick the contact and the storefront, and invite them (instant account)."""
    return _instant_page(request, session, _instant_staff(staff), erp, email, storefront_id)


@console_pages.post("/erp/instant", dependencies=CSRF)
def create_instant_account(request: Request, session: DbSession, staff: Operator, erp: Erp,
                           form: Fields) -> Response:
    """Create (or reuse) the account from the ERP and send the contact's activation e-mail."""
    _instant_staff(staff)
    storefront_id = int(form["storefront_id"]) if form.get("storefront_id", "").isdigit() else None
    storefront = session.get(Storefront, storefront_id) if storefront_id else None
    try:
        if storefront is None:
            raise BadRequest("Choose a storefront.")
        with session.begin_nested():
            contact = service.create_instant_account(
                session, staff.actor, erp, storefront, form.get("email", ""), form.get("account_code", ""),
                request.app.state.settings.base_url, form.get("role") or ContactRole.buyer)
    except AppError as exc:
        return _instant_page(request, session, staff, erp, form.get("email", ""), storefront_id,
                             Form.refused(form, field_errors(exc), "instant"), exc.status_code)
    return flash_redirect(request, f"/console/accounts/{contact.account_id}",
                          f"{contact.email} is invited to {storefront.name}: the activation e-mail is on its way.")


@console_pages.post("/accounts/{account_id}/erp-code", dependencies=CSRF)
def remap_erp_code(account_id: int, request: Request, session: DbSession, staff: Manager, erp: Erp,
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
    message = f"Mapped to ERP customer {account.erp_code}." if changes else "The ERP code did not change."
    return flash_redirect(request, f"/console/accounts/{account.id}#erp", message)


router = APIRouter(include_in_schema=False)
router.include_router(storefront_pages)
router.include_router(console_pages)
