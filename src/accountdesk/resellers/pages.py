"""Console pages for a reseller's "My Customers": the grid with statistics, search, sort, pages and the Excel
export; a new customer; the customer record (order approval toggle, details, storefront users, orders). The rules
live in resellers.service and orders.service, as for the API; every page is scoped like the API (404 otherwise)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.accounts.models import Account, AccountKind
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactStatus
from accountdesk.core import exports, validation
from accountdesk.core.confirmations import Confirmation, confirmed
from accountdesk.core.errors import NotFound
from accountdesk.core.forms import redirect
from accountdesk.core.i18n import _l, filled, joined
from accountdesk.core.languages import DATE_FORMATS, LANGUAGES
from accountdesk.core.pages import Form, PageRoute, attempt, flash_redirect, form_fields, page
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.orders import service as orders
from accountdesk.orders.models import Order, OrderStatus
from accountdesk.resellers import service
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(prefix="/console/resellers", route_class=PageRoute, include_in_schema=False)
Reader = Annotated[StaffPrincipal, Depends(console_page(READ))]
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
Search = Annotated[str, Query(max_length=200)]
PER_PAGE = 25
SORT_LABELS = {"name": _l("Name"), "number": _l("Number"), "city": _l("City"),
               "monthly_run_rate": _l("Monthly run rate")}
# action -> (title, what happens, "Yes" button, done); the texts name the user (%(name)s, %(email)s)
USER_ACTIONS = {
    "resend-activation": (_l("Resend the activation link?"),
                          _l("%(name)s gets a new welcome e-mail at %(email)s with a link to activate the login and "
                             "choose a password; the earlier link stops working."),
                          _l("Yes, resend the link"), _l("Activation link sent to %(email)s.")),
    "reset-password": (_l("Reset the storefront password?"),
                       _l("%(name)s gets an e-mail at %(email)s with a single-use link to choose a new password."),
                       _l("Yes, send the reset link"), _l("Password reset link sent to %(email)s.")),
    "deactivate": (_l("Deactivate this user?"),
                   _l("%(name)s (%(email)s) is signed out everywhere at once, can no longer sign in and is told by "
                      "e-mail. You can activate the user again at any time."),
                   _l("Yes, deactivate"), _l("%(name)s is deactivated.")),
    "activate": (_l("Activate this user?"), _l("%(name)s (%(email)s) can sign in to the storefront again."),
                 _l("Yes, activate"), _l("%(name)s is active again.")),
}
# action -> (title, what happens, "Yes" button, the way back, done); the texts name the order (%(number)s, %(amount)s)
ORDER_ACTIONS = {
    "accept": (_l("Accept this order?"), _l("Order %(number)s (%(amount)s) goes ahead."), _l("Yes, accept"),
               _l("Cancel"), _l("Order %(number)s accepted.")),
    "cancel": (_l("Cancel this order?"), _l("Order %(number)s (%(amount)s) is rejected and will not be executed."),
               _l("Cancel order"), _l("Keep the order"), _l("Order %(number)s canceled.")),
}
OPTIONS: dict[str, Any] = {"languages": list(LANGUAGES.items()), "date_formats": [(f, f) for f in DATE_FORMATS]}


def customers_url(reseller: Account, **query: Any) -> str:
    params = {k: v for k, v in query.items() if v not in ("", None, 1, "name")}
    return f"/console/resellers/{reseller.id}/customers" + (f"?{urlencode(params)}" if params else "")


def customer_url(reseller: Account, customer: Account, anchor: str = "") -> str:
    return f"/console/resellers/{reseller.id}/customers/{customer.id}" + (f"#{anchor}" if anchor else "")


@router.get("")
def resellers_index(request: Request, session: DbSession, staff: Reader) -> Response:
    """Reseller staff go to their own customers; operator staff choose a reseller."""
    if staff.reseller_scope is not None:
        return redirect(f"/console/resellers/{staff.reseller_scope}/customers")
    rows = session.scalars(select(Account).where(Account.kind == AccountKind.reseller).order_by(Account.name))
    return page(request, "resellers/index.html", {"staff": staff, "resellers": list(rows)})


@router.get("/{reseller_id}/customers")
def my_customers(reseller_id: Id, request: Request, session: DbSession, staff: Reader, q: Search = "",
                 sort: str = "name", page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1) -> Response:
    """My Customers: statistics, the credit-card notice, the searchable, sortable grid and the Excel button."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    sort = sort if sort in service.GRID_SORTS else "name"
    result = service.grid(session, reseller, q=q, sort=sort, page=page_no, per_page=PER_PAGE)
    more = page_no * PER_PAGE < result.total
    return page(request, "resellers/customers.html", {
        "staff": staff, "reseller": reseller, "result": result, "q": q, "sort": sort, "page_no": page_no,
        "per_page": PER_PAGE, "stats": service.statistics(session, reseller), "sort_labels": SORT_LABELS,
        "forced": orders.approval_forced(reseller), "forced_message": orders.FORCED_MESSAGE,
        "can_manage": staff.may(MANAGE_CUSTOMERS), "url": lambda **kw: customers_url(reseller, **kw),
        "export_url": f"/console/resellers/{reseller.id}/customers/export?" + urlencode({"q": q, "sort": sort}),
        "prev_url": customers_url(reseller, q=q, sort=sort, page=page_no - 1) if page_no > 1 else "",
        "next_url": customers_url(reseller, q=q, sort=sort, page=page_no + 1) if more else ""})


@router.get("/{reseller_id}/customers/export")
def export_customers(reseller_id: Id, session: DbSession, staff: Reader, q: Search = "", sort: str = "name",
                     fmt: Annotated[exports.Format, Query(alias="format")] = "xlsx") -> Response:
    """The Excel button: Customers.xlsx with the grid's columns and the current search."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    sort = sort if sort in service.GRID_SORTS else "name"
    return exports.export_response("Customers", fmt, service.EXPORT_COLUMNS,
                                   service.export_rows(session, reseller, q, sort), language=staff.user.language)


@router.get("/{reseller_id}/customers/new")
def new_customer_form(reseller_id: Id, request: Request, session: DbSession, staff: Manager) -> Response:
    """The New customer form."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    return _new_page(request, staff, reseller, Form(prefix="new"))


@router.post("/{reseller_id}/customers/new")
def create_customer(reseller_id: Id, request: Request, session: DbSession, staff: Manager,
                    form: Fields) -> Response:
    """Save the new customer; missing or wrong fields show the form again with a message beside each."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer, errors = attempt(session, lambda: service.create_customer(session, staff.actor, reseller, form))
    if customer is None:
        return _new_page(request, staff, reseller, Form.refused(form, errors, "new"), 422)
    return flash_redirect(request, customer_url(reseller, customer),
                          _l("Customer %(name)s created.", name=customer.name))


def _new_page(request: Request, staff: StaffPrincipal, reseller: Account, form: Form, status: int = 200) -> Response:
    return page(request, "resellers/new_customer.html", {"staff": staff, "reseller": reseller, "form": form},
                status)


# --- the customer record ---------------------------------------------------------------------------------------

def _user_confirmation(reseller: Account, customer: Account, contact: Contact, action: str) -> Confirmation:
    title, text, button, _ = USER_ACTIONS[action]
    return Confirmation(title, filled(text, name=contact.name, email=contact.email), button,
                        f"{customer_url(reseller, customer)}/users/{contact.id}/{action}",
                        customer_url(reseller, customer, "users"), danger=action == "deactivate", section="users")


def order_confirmation(reseller: Account, customer: Account, order: Order, action: str) -> Confirmation:
    title, text, button, keep, _ = ORDER_ACTIONS[action]
    return Confirmation(title, filled(text, number=order.number, amount=order.amount_label), button,
                        f"/console/resellers/{reseller.id}/orders/{order.id}/{action}",
                        customer_url(reseller, customer, "orders"), keep=keep, danger=action == "cancel",
                        section="orders")


def _confirmation(session: Session, reseller: Account, customer: Account, confirm: str) -> Confirmation | None:
    """`confirm` is "user:<id>:<action>" or "order:<id>:<action>" from a menu link; anything else is ignored."""
    kind, _, rest = confirm.partition(":")
    raw_id, _, action = rest.partition(":")
    row_id = validation.parse_id(raw_id)
    if row_id is None:
        return None
    if kind == "user" and action in USER_ACTIONS:
        return _user_confirmation(reseller, customer, contacts.get_contact(session, customer, row_id), action)
    if kind == "order" and action in ORDER_ACTIONS:
        order = orders.get_order(session, reseller.id, row_id)
        if order.account_id != customer.id:
            raise NotFound("No such order.", code="order_not_found")
        return order_confirmation(reseller, customer, order, action)
    return None


def user_actions(contact: Contact) -> list[tuple[str, Any]]:
    """The three-dot menu of a storefront user: resend the link before activation, reset the password after."""
    actions: list[tuple[str, Any]] = []
    if contact.status == ContactStatus.invited:
        actions.append(("resend-activation", _l("Resend activation link")))
    elif contact.status in (ContactStatus.active, ContactStatus.expired):
        actions.append(("reset-password", _l("Reset storefront password")))
    if contact.status == ContactStatus.deactivated:
        actions.append(("activate", _l("Activate user")))
    else:
        actions.append(("deactivate", _l("Deactivate user")))
    return actions


def record_page(request: Request, session: Session, staff: StaffPrincipal, reseller: Account, customer: Account, *,
                forms: dict[str, Form] | None = None, confirm: Confirmation | None = None, problem: str = "",
                q_users: str = "", q_orders: str = "", status: int = 200) -> Response:
    """Render the customer record; `forms` holds a refused form to show again, `problem` a refused action."""
    new_user = {"language": contacts.default_language(session, customer), "date_format": "DD/MM/YYYY"}
    forms = {"details": Form(prefix="details"), "user": Form(new_user, submitted=True, prefix="user"),
             **(forms or {})}
    orders_url = f"{customer_url(reseller, customer)}/orders/export?" + urlencode({"q": q_orders})
    return page(request, "resellers/customer.html", {
        "staff": staff, "reseller": reseller, "customer": customer, "forms": forms, "confirm": confirm,
        "problem": problem, "q_users": q_users, "q_orders": q_orders, "details": service.details_of(customer),
        "access": service.storefront_access(session, customer), "approval": service.order_approval(reseller, customer),
        "users": service.users(session, customer, q_users), "user_actions": user_actions,
        "orders": orders.list_orders(session, customer, q=q_orders, per_page=100), "orders_export_url": orders_url,
        "pending": OrderStatus.pending_approval, "can_manage": staff.may(MANAGE_CUSTOMERS),
        "base": customer_url(reseller, customer), **OPTIONS}, status)


@router.get("/{reseller_id}/customers/{customer_id}")
def customer_record(reseller_id: Id, customer_id: Id, request: Request, session: DbSession, staff: Reader,
                    q_users: Search = "", q_orders: Search = "",
                    confirm: Annotated[str, Query(max_length=80)] = "") -> Response:
    """The customer record: name and sticky menu, information, storefront users and orders."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id)
    pending = _confirmation(session, reseller, customer, confirm) if confirm and staff.may(MANAGE_CUSTOMERS) else None
    return record_page(request, session, staff, reseller, customer, confirm=pending, q_users=q_users,
                       q_orders=q_orders)


@router.post("/{reseller_id}/customers/{customer_id}")
def update_customer(reseller_id: Id, customer_id: Id, request: Request, session: DbSession, staff: Manager,
                    form: Fields) -> Response:
    """Update: save the details edited in place."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id, lock=True)
    _, errors = attempt(session, lambda: service.update_customer(session, staff.actor, reseller, customer, form))
    if errors:
        session.refresh(customer)
        return record_page(request, session, staff, reseller, customer,
                           forms={"details": Form.refused(form, errors, "details")}, status=422)
    return flash_redirect(request, customer_url(reseller, customer, "information"), _l("Customer details updated."))


@router.post("/{reseller_id}/customers/{customer_id}/order-approval")
def set_order_approval(reseller_id: Id, customer_id: Id, request: Request, session: DbSession, staff: Manager,
                       form: Fields) -> Response:
    """The Order approval required toggle (it cannot be turned off when the reseller pays by credit card)."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id, lock=True)
    required = form.get("required") == "on"
    _, errors = attempt(session, lambda: orders.set_order_approval(session, service.actor_for(staff.actor, reseller),
                                                                   customer, reseller, required))
    if errors:
        return record_page(request, session, staff, reseller, customer, problem=joined(list(errors.values())),
                           status=409)
    message = (_l("Orders of this customer now need your approval.") if required
               else _l("Orders no longer need approval."))
    return flash_redirect(request, customer_url(reseller, customer), message)


@router.post("/{reseller_id}/customers/{customer_id}/users")
def add_user(reseller_id: Id, customer_id: Id, request: Request, session: DbSession, staff: Manager,
             form: Fields) -> Response:
    """Add storefront user: a welcome e-mail with the activation link goes out."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id, lock=True)
    settings = request.app.state.settings
    user, errors = attempt(session, lambda: service.add_user(session, staff.actor, reseller, customer, form, settings))
    if user is None:
        return record_page(request, session, staff, reseller, customer,
                           forms={"user": Form.refused(form, errors, "user")}, status=422)
    return flash_redirect(request, customer_url(reseller, customer, "users"),
                          _l("%(name)s added; a welcome e-mail with the activation link went to %(email)s.",
                             name=user.name, email=user.email))


@router.post("/{reseller_id}/customers/{customer_id}/users/{user_id}/{action}")
def user_action(reseller_id: Id, customer_id: Id, user_id: Id, action: str, request: Request, session: DbSession,
                staff: Manager, form: Fields) -> Response:
    """Yes on a confirmation: resend activation, reset password, deactivate or activate a storefront user (asked
    first when the form does not say yes)."""
    if action not in USER_ACTIONS:
        raise NotFound("No such action.")
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id)
    contact = contacts.get_contact(session, customer, user_id)
    if not confirmed(form):
        return record_page(request, session, staff, reseller, customer,
                           confirm=_user_confirmation(reseller, customer, contact, action))
    settings = request.app.state.settings
    _, errors = attempt(session, lambda: service.run_user_action(session, staff.actor, reseller, contact, action,
                                                                 settings))
    if errors:
        return record_page(request, session, staff, reseller, customer, problem=joined(list(errors.values())),
                           status=409)
    done = filled(USER_ACTIONS[action][3], name=contact.name, email=contact.email)
    return flash_redirect(request, customer_url(reseller, customer, "users"), done)

