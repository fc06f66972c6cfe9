"""Reseller API ("My Customers"): the customer grid, statistics and export, new customers, customer records with
order approval, subscriptions and storefront users. Reseller staff reach only their own reseller id; any other id,
customer or user answers 404 exactly as one that does not exist."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from accountdesk.contacts import service as contacts
from accountdesk.core import exports
from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.orders import service as orders
from accountdesk.resellers import service
from accountdesk.resellers.schemas import (
    CustomerIn,
    CustomerOut,
    CustomerUpdate,
    GridPage,
    GridSort,
    MarkupIn,
    OrderApprovalIn,
    ResellerOut,
    StatisticsOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionUpdate,
    UserIn,
    UserOut,
)
from accountdesk.staff.deps import api_staff
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(route_class=ApiRoute, prefix="/api/v1/resellers/{reseller_id}", tags=["resellers"])
Reader = Annotated[StaffPrincipal, Depends(api_staff(READ))]
Manager = Annotated[StaffPrincipal, Depends(api_staff(MANAGE_CUSTOMERS))]
Search = Annotated[str, Query(max_length=200)]


@router.get("", response_model=ResellerOut)
def read_reseller(reseller_id: Id, session: DbSession, staff: Reader) -> dict[str, Any]:
    """The reseller: payment method (credit card forces order approval), markup and storefront."""
    return service.describe_reseller(session, service.get_reseller(session, staff.reseller_scope, reseller_id))


@router.put("/markup", response_model=ResellerOut)
def set_markup(reseller_id: Id, body: MarkupIn, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Set the reseller's markup (percent) added to the cost of its customers' orders."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    service.set_markup(session, staff.actor, reseller, body.markup_percent)
    return service.describe_reseller(session, reseller)


@router.get("/customers", response_model=GridPage)
def customer_grid(reseller_id: Id, session: DbSession, staff: Reader, q: Search = "", sort: GridSort = "name",
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                  per_page: Annotated[int, Query(ge=1, le=100)] = 25) -> dict[str, Any]:
    """The reseller's customers: search by name, e-mail, phone, city or number (every word, partial), sort, pages."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    result = service.grid(session, reseller, q=q, sort=sort, page=page, per_page=per_page)
    return {"items": [row._asdict() for row in result.rows], "total": result.total,
            "total_is_exact": result.total_is_exact, "page": page, "per_page": per_page}


@router.get("/customers/statistics", response_model=StatisticsOut)
def customer_statistics(reseller_id: Id, session: DbSession, staff: Reader) -> dict[str, Any]:
    """All customers, transacting customers and the total monthly run rate."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    return {**vars(service.statistics(session, reseller)), "currency": reseller.currency}


@router.get("/customers/export", response_class=FileResponse)
def export_customers(reseller_id: Id, request: Request, session: DbSession, staff: Reader, q: Search = "",
                     sort: GridSort = "name",
                     fmt: Annotated[exports.Format, Query(alias="format")] = "xlsx") -> FileResponse:
    """Download the grid (its columns, the current search) as Customers.xlsx or Customers.csv; titles and words in
    Accept-Language, else the staff user's language."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    rows = service.export_rows(session, reseller, q, sort)
    return exports.export_response("Customers", fmt, service.EXPORT_COLUMNS, rows,
                                   language=exports.api_language(request, staff.user.language))


@router.post("/customers", status_code=201, response_model=CustomerOut, dependencies=[IDEMPOTENT])
def create_customer(reseller_id: Id, body: CustomerIn, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Create a customer: company name, e-mail, address, city, country, state/province, postcode and phone."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.create_customer(session, staff.actor, reseller, body.model_dump())
    return service.describe_customer(session, reseller, customer)


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def read_customer(reseller_id: Id, customer_id: Id, session: DbSession, staff: Reader) -> dict[str, Any]:
    """The customer record: details, storefront access, run rate, markup and order approval."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    return service.describe_customer(session, reseller, service.get_customer(session, reseller, customer_id))


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(reseller_id: Id, customer_id: Id, body: CustomerUpdate, session: DbSession,
                    staff: Manager) -> dict[str, Any]:
    """Change some details of the customer (or its own markup; null falls back to the reseller's)."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id, lock=True)
    service.update_customer(session, staff.actor, reseller, customer, body.model_dump(exclude_unset=True))
    return service.describe_customer(session, reseller, customer)


@router.put("/customers/{customer_id}/order-approval", response_model=CustomerOut)
def set_order_approval(reseller_id: Id, customer_id: Id, body: OrderApprovalIn, session: DbSession,
                       staff: Manager) -> dict[str, Any]:
    """Turn "order approval required" on or off (409 order_approval_forced when the reseller pays by credit card)."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id, lock=True)
    orders.set_order_approval(session, service.actor_for(staff.actor, reseller), customer, reseller, body.required)
    return service.describe_customer(session, reseller, customer)


@router.get("/customers/{customer_id}/subscriptions", response_model=list[SubscriptionOut])
def list_subscriptions(reseller_id: Id, customer_id: Id, session: DbSession, staff: Reader) -> list[Any]:
    """The customer's subscriptions and assets, newest first."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    return service.subscriptions(session, service.get_customer(session, reseller, customer_id))


@router.post("/customers/{customer_id}/subscriptions", status_code=201, response_model=SubscriptionOut,
             dependencies=[IDEMPOTENT])
def record_subscription(reseller_id: Id, customer_id: Id, body: SubscriptionIn, session: DbSession,
                        staff: Manager) -> Any:
    """Record a subscription or asset of the customer; the monthly run rate follows at once."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id, lock=True)
    return service.record_subscription(session, staff.actor, reseller, customer, body.model_dump(exclude_none=True))


@router.patch("/customers/{customer_id}/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def update_subscription(reseller_id: Id, customer_id: Id, subscription_id: Id, body: SubscriptionUpdate,
                        session: DbSession, staff: Manager) -> Any:
    """Change a subscription (status active/suspended/canceled, quantity, amount, end date)."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id, lock=True)
    subscription = service.get_subscription(session, customer, subscription_id)
    service.update_subscription(session, staff.actor, reseller, customer, subscription,
                                body.model_dump(exclude_unset=True))
    return subscription


@router.get("/customers/{customer_id}/users", response_model=list[UserOut])
def list_users(reseller_id: Id, customer_id: Id, session: DbSession, staff: Reader, q: Search = "") -> list[Any]:
    """The customer's storefront users; search by name, e-mail, language, date format or status."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    return [service.describe_user(c) for c in service.users(session, service.get_customer(session, reseller,
                                                                                          customer_id), q)]


@router.post("/customers/{customer_id}/users", status_code=201, response_model=UserOut, dependencies=[IDEMPOTENT])
def add_user(reseller_id: Id, customer_id: Id, body: UserIn, request: Request, session: DbSession,
             staff: Manager) -> dict[str, Any]:
    """Add a storefront user (all fields mandatory); a welcome e-mail carries the activation link."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    customer = service.get_customer(session, reseller, customer_id, lock=True)
    contact = service.add_user(session, staff.actor, reseller, customer, body.model_dump(),
                               request.app.state.settings)
    return service.describe_user(contact)


UserAction = Literal["resend-activation", "reset-password", "deactivate", "activate"]


@router.post("/customers/{customer_id}/users/{user_id}/{action}", response_model=UserOut, dependencies=[IDEMPOTENT])
def user_action(reseller_id: Id, customer_id: Id, user_id: Id, action: UserAction, request: Request,
                session: DbSession, staff: Manager) -> dict[str, Any]:
    """Resend the activation link (before activation), e-mail a password reset (after), deactivate (signs the
    user out everywhere at once) or activate a storefront user."""
    reseller = service.get_reseller(session, staff.reseller_scope, reseller_id)
    contact = contacts.get_contact(session, service.get_customer(session, reseller, customer_id), user_id)
    service.run_user_action(session, staff.actor, reseller, contact, action, request.app.state.settings)
    return service.describe_user(contact)
