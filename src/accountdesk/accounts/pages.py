"""Console pages for accounts: search first, create a customer, and the record page (details, Active toggle,
address book, custom attributes, contacts, history). The rules live in accounts.service, as for the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from accountdesk.accounts import service
from accountdesk.accounts.models import (
    Account,
    AccountKind,
    AccountStatus,
    AttributeType,
    CustomAttributeDefinition,
    PaymentMethod,
)
from accountdesk.accounts.schemas import AccountCreate, AccountUpdate, AddressIn
from accountdesk.core import validation
from accountdesk.core.errors import BadRequest
from accountdesk.core.languages import DATE_FORMATS, LANGUAGES
from accountdesk.core.pages import Form, PageRoute, attempt, flash_redirect, form_fields, nest, page, without_blanks
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(prefix="/console/accounts", route_class=PageRoute, include_in_schema=False)
Reader = Annotated[StaffPrincipal, Depends(console_page(READ))]
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
PER_PAGE = 25
SORTS = {"name": "Name A–Z", "-name": "Name Z–A", "number": "Number ↑", "-number": "Number ↓",
         "-created_at": "Newest first", "created_at": "Oldest first"}
DETAIL_FLAGS = ("prorate_billing", "auto_invoice_email", "order_approval_required")
NEW_DEFAULTS = {"active": "on", "kind": "b2b", "preferred_language": "en", "payment_method": "cash", "currency": "EUR"}
OPTIONS: dict[str, Any] = {
    "kinds": [(k.value, k.value.upper() if k != AccountKind.reseller else "Reseller") for k in AccountKind],
    "statuses": [(s.value, s.value.replace("_", " ").capitalize()) for s in AccountStatus],
    "payment_methods": [(m.value, m.value.replace("_", " ").capitalize()) for m in PaymentMethod],
    "languages": list(LANGUAGES.items()),
    "date_formats": [(f, f) for f in DATE_FORMATS],
    "sorts": list(SORTS.items()),
}
# What other packages show on the record page, as template values for the account (contacts: the list and the form
# to add one). They add themselves here: accounts knows nothing of the packages built on it.
RECORD_SECTIONS: list[Callable[[Session, Account], dict[str, Any]]] = []


def account_url(account: Account) -> str:
    return f"/console/accounts/{account.id}"


@router.get("")
def search_accounts(request: Request, session: DbSession, staff: Reader,
                    q: Annotated[str, Query(max_length=200)] = "", status: str = "", kind: str = "",
                    customer_group: Annotated[str, Query(max_length=40)] = "", sort: str = "name",
                    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1) -> Response:
    """Search first: customers by name, number, e-mail, phone or city, with filters, sort and pages."""
    sort = sort if sort in SORTS else "name"
    filters = {"q": q, "status": status, "kind": kind, "customer_group": customer_group, "sort": sort}
    result = service.search(session, staff.reseller_scope, q=q, status=status or None, kind=kind or None,
                            customer_group=customer_group or None, sort=sort, page=page_no, per_page=PER_PAGE)
    return page(request, "accounts/list.html", {
        "staff": staff, "result": result, "filters": filters, "page_no": page_no, "per_page": PER_PAGE,
        "can_manage": staff.may(MANAGE_CUSTOMERS), **OPTIONS,
        "prev_url": _page_url(filters, page_no - 1) if page_no > 1 else "",
        "next_url": _page_url(filters, page_no + 1) if page_no * PER_PAGE < result.total else ""})


def _page_url(filters: dict[str, str], page_no: int) -> str:
    return "/console/accounts?" + urlencode({**{k: v for k, v in filters.items() if v}, "page": page_no})


@router.get("/new")
def new_account_form(request: Request, session: DbSession, staff: Manager,
                     name: Annotated[str, Query(max_length=200)] = "") -> Response:
    """The "Create customer" form, with similar customers listed to avoid a duplicate."""
    return _new_page(request, session, staff, Form({**NEW_DEFAULTS, "name": name}, submitted=True, prefix="new"))


@router.post("/new")
def create_account(request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Create a customer; refused input shows the form again with a message beside each field."""
    account, errors = attempt(session, lambda: _create(session, staff, form))
    if account is None:
        return _new_page(request, session, staff, Form.refused(form, errors, "new"), 422)
    return flash_redirect(request, account_url(account), f"Customer {account.number} created.")


def _new_page(request: Request, session: Session, staff: StaffPrincipal, form: Form, status: int = 200) -> Response:
    kinds = [k for k in OPTIONS["kinds"] if staff.reseller_scope is None or k[0] != AccountKind.reseller]
    return page(request, "accounts/new.html", {
        "staff": staff, "form": form, **OPTIONS, "kinds": kinds, "countries": validation.countries(),
        "definitions": service.definitions(session),
        "similar": service.name_taken_hint(session, staff.reseller_scope, form.values.get("name", ""))}, status)


def _create(session: Session, staff: StaffPrincipal, form: dict[str, str]) -> Account:
    data = nest(without_blanks(form), "billing_address", "attributes")
    data["status"] = AccountStatus.active if data.pop("active", "") else AccountStatus.inactive
    data["attributes"] = _attributes(session, form)
    body = AccountCreate.model_validate(data)
    billing = body.billing_address.model_dump() if body.billing_address else None
    fields = body.model_dump(exclude={"billing_address"}, exclude_none=True)
    return service.create_account(session, staff.actor, staff.reseller_scope, fields, billing_address=billing)


def _attributes(session: Session, form: dict[str, str]) -> dict[str, str]:
    """Custom attribute values from the form; an unticked boolean box is a "no"."""
    values = nest(form, "attributes")["attributes"]
    for definition in service.definitions(session):
        if definition.type == AttributeType.boolean:
            values[definition.key] = "true" if f"attributes.{definition.key}" in form else "false"
    return values


@router.get("/{account_id}")
def account_record(account_id: Id, request: Request, session: DbSession, staff: Reader) -> Response:
    """The customer record: details, Active toggle, address book, attributes, contacts and history."""
    return record_page(request, session, staff, service.get_account(session, staff.reseller_scope, account_id))


def record_page(request: Request, session: Session, staff: StaffPrincipal, account: Account, *,
                refused: dict[str, Form] | None = None, status: int = 200) -> Response:
    """Render the record page; `refused` holds the one form to show again with its messages (e.g. "contact:new")."""
    forms = {"details": Form(prefix="details"), "address:new": Form(prefix="address-new"),
             "contact:new": Form(prefix="contact-new"),
             **{f"address:{a.id}": Form(prefix=f"address-{a.id}") for a in account.addresses}, **(refused or {})}
    definitions: list[CustomAttributeDefinition] = service.definitions(session)
    return page(request, "accounts/record.html", {
        "staff": staff, "account": account, "forms": forms, **OPTIONS, "countries": validation.countries(),
        "can_manage": staff.may(MANAGE_CUSTOMERS), "operator": staff.reseller_scope is None,
        "definitions": definitions, "attributes": _attribute_texts(session, account),
        **{key: value for section in RECORD_SECTIONS for key, value in section(session, account).items()},
        "events": service.events(session, staff.reseller_scope, account)}, status)


def _attribute_texts(session: Session, account: Account) -> dict[str, Any]:
    return {key: value if isinstance(value, bool) else str(value)
            for key, value in service.attribute_values(session, account).items()}


@router.post("/{account_id}")
def update_account(account_id: Id, request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Save the details and custom attributes edited on the record page."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    changes, errors = attempt(session, lambda: _update(session, staff, account, form))
    if errors:
        return record_page(request, session, staff, account, refused={"details": Form.refused(form, errors, "details")},
                           status=422)
    return flash_redirect(request, account_url(account), "Changes saved." if changes else "Nothing changed.")


def _update(session: Session, staff: StaffPrincipal, account: Account, form: dict[str, str]) -> dict[str, Any]:
    data = {**nest(form, "attributes"), **{flag: flag in form for flag in DETAIL_FLAGS}}
    data["attributes"] = _attributes(session, form)
    body = AccountUpdate.model_validate(data)
    fields = body.model_dump(exclude_unset=True)
    return service.update_account(session, staff.actor, account, fields, staff.reseller_scope)


@router.post("/{account_id}/status")
def set_account_active(account_id: Id, request: Request, session: DbSession, staff: Manager,
                       form: Fields) -> Response:
    """The Active toggle: the contacts of an inactive account cannot sign in."""
    if form.get("active") not in ("true", "false"):
        raise BadRequest("Use the Activate or Deactivate button.")
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    active = form["active"] == "true"
    status = AccountStatus.active if active else AccountStatus.inactive
    service.update_account(session, staff.actor, account, {"status": status}, staff.reseller_scope)
    return flash_redirect(request, account_url(account), "Account activated." if active else "Account deactivated.")


@router.post("/{account_id}/addresses")
def add_address(account_id: Id, request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Add an address to the address book."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    added, errors = attempt(session, lambda: service.add_address(session, staff.actor, account, _address(form)))
    if added is None:
        return record_page(request, session, staff, account,
                           refused={"address:new": Form.refused(form, errors, "address-new")}, status=422)
    return flash_redirect(request, account_url(account) + "#addresses", "Address added.")


@router.post("/{account_id}/addresses/{address_id}")
def update_address(account_id: Id, address_id: Id, request: Request, session: DbSession, staff: Manager,
                   form: Fields) -> Response:
    """Change one address of the address book."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    saved, errors = attempt(session, lambda: service.update_address(session, staff.actor, account, address_id,
                                                                    _address(form)))
    if saved is None:
        refused = {f"address:{address_id}": Form.refused(form, errors, f"address-{address_id}")}
        return record_page(request, session, staff, account, refused=refused, status=422)
    return flash_redirect(request, account_url(account) + "#addresses", "Address saved.")


@router.post("/{account_id}/addresses/{address_id}/delete")
def delete_address(account_id: Id, address_id: Id, request: Request, session: DbSession,
                   staff: Manager) -> Response:
    """Remove an address from the address book."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    service.delete_address(session, staff.actor, account, address_id)
    return flash_redirect(request, account_url(account) + "#addresses", "Address deleted.")


def _address(form: dict[str, str]) -> dict[str, Any]:
    flags = {"is_billing": "is_billing" in form, "is_shipping": "is_shipping" in form}
    return AddressIn.model_validate({**without_blanks(form), **flags}).model_dump()
