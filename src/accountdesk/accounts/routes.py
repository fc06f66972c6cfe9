"""Accounts API for staff: search, create, read, change, address book, saved payment methods, custom attributes,
invoices, history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from accountdesk.accounts import service
from accountdesk.accounts.models import CustomAttributeDefinition
from accountdesk.accounts.schemas import (
    AccountCreate,
    AccountPage,
    AccountUpdate,
    AddressIn,
    AddressOut,
    AttributeDefinitionIn,
    AttributeDefinitionOut,
    EventOut,
    InvoiceIn,
    InvoiceOut,
    SavedPaymentMethodIn,
    SavedPaymentMethodOut,
)
from accountdesk.core.idempotency import IDEMPOTENT, IDEMPOTENT_IN_TRANSACTION, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import api_staff
from accountdesk.staff.service import ADMIN, MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(route_class=ApiRoute, prefix="/api/v1", tags=["accounts"])
Reader = Annotated[StaffPrincipal, Depends(api_staff(READ))]
Manager = Annotated[StaffPrincipal, Depends(api_staff(MANAGE_CUSTOMERS))]
Admin = Annotated[StaffPrincipal, Depends(api_staff(ADMIN))]
Sort = Literal["name", "-name", "number", "-number", "created_at", "-created_at"]


@router.get("/accounts", response_model=AccountPage)
def list_accounts(session: DbSession, staff: Reader, q: Annotated[str, Query(max_length=200)] = "",
                  status: str | None = None, kind: str | None = None, customer_group: str | None = None,
                  sort: Sort = "name", page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                  per_page: Annotated[int, Query(ge=1, le=100)] = 25) -> dict[str, Any]:
    """Search accounts by name, number, e-mail, phone or city (partial, case-insensitive), with filters."""
    result = service.search(session, staff.reseller_scope, q=q, status=status, kind=kind,
                            customer_group=customer_group, sort=sort, page=page, per_page=per_page)
    return {"items": service.describe_all(session, result.items), "total": result.total,
            "total_is_exact": result.total_is_exact, "page": page, "per_page": per_page}


@router.post("/accounts", status_code=201, dependencies=[IDEMPOTENT_IN_TRANSACTION])
def create_account(body: AccountCreate, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Create an account (its number comes from the sequence unless given)."""
    data = body.model_dump(exclude={"billing_address"}, exclude_none=True)
    billing = body.billing_address.model_dump() if body.billing_address else None
    account = service.create_account(session, staff.actor, staff.reseller_scope, data, billing_address=billing)
    return service.describe(session, account)


@router.get("/accounts/{account_id}")
def read_account(account_id: Id, session: DbSession, staff: Reader) -> dict[str, Any]:
    """One account with its addresses and custom attributes."""
    return service.describe(session, service.get_account(session, staff.reseller_scope, account_id))


@router.patch("/accounts/{account_id}")
def update_account(account_id: Id, body: AccountUpdate, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Change some fields of an account; `status` active/inactive is the Active toggle."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    service.update_account(session, staff.actor, account, body.model_dump(exclude_unset=True), staff.reseller_scope)
    return service.describe(session, account)


@router.get("/accounts/{account_id}/events", response_model=list[EventOut])
def account_events(account_id: Id, session: DbSession, staff: Reader) -> list[Any]:
    """The history of the account, its contacts and addresses, newest first."""
    return service.events(session, staff.reseller_scope,
                          service.get_account(session, staff.reseller_scope, account_id))


@router.post("/accounts/{account_id}/addresses", response_model=AddressOut, status_code=201,
             dependencies=[IDEMPOTENT_IN_TRANSACTION])
def add_address(account_id: Id, body: AddressIn, session: DbSession, staff: Manager) -> Any:
    """Add an address to the account's address book."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    return service.add_address(session, staff.actor, account, body.model_dump())


@router.put("/accounts/{account_id}/addresses/{address_id}", response_model=AddressOut)
def update_address(account_id: Id, address_id: Id, body: AddressIn, session: DbSession, staff: Manager) -> Any:
    """Replace one address of the address book."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    return service.update_address(session, staff.actor, account, address_id, body.model_dump())


@router.delete("/accounts/{account_id}/addresses/{address_id}", status_code=204)
def delete_address(account_id: Id, address_id: Id, session: DbSession, staff: Manager) -> Response:
    """Remove an address from the address book."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    service.delete_address(session, staff.actor, account, address_id)
    return Response(status_code=204)


@router.get("/accounts/{account_id}/invoices", response_model=list[InvoiceOut])
def list_invoices(account_id: Id, session: DbSession, staff: Reader) -> list[Any]:
    """Invoices recorded for the account, newest first."""
    return service.invoices(session, service.get_account(session, staff.reseller_scope, account_id))


@router.post("/accounts/{account_id}/invoices", response_model=InvoiceOut, status_code=201,
             dependencies=[IDEMPOTENT_IN_TRANSACTION])
def record_invoice(account_id: Id, body: InvoiceIn, session: DbSession, staff: Manager) -> Any:
    """Record an invoice issued to the account (used to prove ownership when a new contact joins)."""
    account = service.get_account(session, staff.reseller_scope, account_id)
    return service.record_invoice(session, staff.actor, account, body.model_dump())


@router.get("/accounts/{account_id}/payment-methods", response_model=list[SavedPaymentMethodOut])
def list_payment_methods(account_id: Id, session: DbSession, staff: Reader) -> list[Any]:
    """The payment methods the payment provider keeps for the account and its contacts (references only: brand,
    last four digits, expiry; `expired` once past the expiry month)."""
    return service.payment_methods(session, service.get_account(session, staff.reseller_scope, account_id))


@router.post("/accounts/{account_id}/payment-methods", response_model=SavedPaymentMethodOut, status_code=201,
             dependencies=[IDEMPOTENT_IN_TRANSACTION])
def add_payment_method(account_id: Id, body: SavedPaymentMethodIn, session: DbSession, staff: Manager) -> Any:
    """Save a reference to a method the payment provider stores: its token id, brand, last four digits and expiry.
    A card number or security code is refused, in any field (422 `card_data_refused`); the same provider token
    twice is 409 `duplicate`."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    return service.add_payment_method(session, staff.actor, account, body.model_dump())


@router.delete("/accounts/{account_id}/payment-methods/{method_id}", status_code=204)
def delete_payment_method(account_id: Id, method_id: Id, session: DbSession, staff: Manager) -> Response:
    """Forget a saved payment method (the provider keeps the card until it is removed there)."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    service.delete_payment_method(session, staff.actor, account, method_id)
    return Response(status_code=204)


@router.get("/custom-attributes", response_model=list[AttributeDefinitionOut])
def list_attribute_definitions(session: DbSession, staff: Reader) -> list[Any]:
    """The custom attributes defined for accounts."""
    return service.definitions(session)


@router.post("/custom-attributes", response_model=AttributeDefinitionOut, status_code=201, dependencies=[IDEMPOTENT])
def define_attribute(body: AttributeDefinitionIn, session: DbSession, staff: Admin) -> Any:
    """Define a typed custom attribute (text, number, date, boolean, choice)."""
    definition = CustomAttributeDefinition(**body.model_dump())
    session.add(definition)
    session.flush()
    return definition
