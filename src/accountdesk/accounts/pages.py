"""Console pages for accounts: search first and the record page (details, Active toggle, address book, saved payment
methods, custom attributes, contacts, history); "Create customer" is contacts.new_customer_pages. The rules live in
accounts.service, as for the API."""

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
    CardBrand,
    CustomAttributeDefinition,
    PaymentMethod,
    SavedPaymentMethod,
)
from accountdesk.accounts.schemas import AccountUpdate, AddressIn
from accountdesk.core import history
from accountdesk.core.confirmations import Confirmation, confirmation_page, confirmed
from accountdesk.core.i18n import _l, filled
from accountdesk.core.languages import DATE_FORMATS, LANGUAGES
from accountdesk.core.pages import (
    Form,
    PageRoute,
    active_choice,
    attempt,
    flash_redirect,
    form_fields,
    nest,
    page,
    without_blanks,
)
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(prefix="/console/accounts", route_class=PageRoute, include_in_schema=False)
Reader = Annotated[StaffPrincipal, Depends(console_page(READ))]
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
PER_PAGE = 25
SORTS = {"name": _l("Name A–Z"), "-name": _l("Name Z–A"), "number": _l("Number ↑"), "-number": _l("Number ↓"),
         "-created_at": _l("Newest first"), "created_at": _l("Oldest first")}
DETAIL_FLAGS = ("prorate_billing", "auto_invoice_email", "order_approval_required")
OPTIONS: dict[str, Any] = {
    # the words a history uses for the same values (core.history), so that a page and its history agree
    "kinds": [(k.value, history.VALUES["kind"][k.value]) for k in AccountKind],
    "statuses": [(s.value, history.STATUSES[s.value]) for s in AccountStatus],
    "payment_methods": [(m.value, history.VALUES["payment_method"][m.value]) for m in PaymentMethod],
    "languages": list(LANGUAGES.items()),
    "date_formats": [(f, f) for f in DATE_FORMATS],
    "sorts": list(SORTS.items()),
    # card networks' names are the same in every language
    "card_brands": {**{b.value: b.value.replace("_", " ").title() for b in CardBrand},
                    "amex": "American Express", "jcb": "JCB", "unionpay": "UnionPay", "other": _l("Other card")},
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


def attribute_values_of(session: Session, form: dict[str, str]) -> dict[str, str]:
    """Custom attribute values from a form (fields `attributes.<key>`); an unticked boolean box is a "no"."""
    values = nest(form, "attributes")["attributes"]
    for definition in service.definitions(session):
        if definition.type == AttributeType.boolean:
            values[definition.key] = "true" if f"attributes.{definition.key}" in form else "false"
    return values


@router.get("/{account_id}")
def account_record(account_id: Id, request: Request, session: DbSession, staff: Reader,
                   delete_payment_method: Annotated[Id | None, Query()] = None) -> Response:
    """The customer record: details, Active toggle, address book, saved payment methods, attributes, contacts and
    history; `delete_payment_method` asks to confirm that method's deletion."""
    account = service.get_account(session, staff.reseller_scope, account_id)
    confirm = service.get_payment_method(session, account, delete_payment_method) \
        if delete_payment_method is not None and staff.may(MANAGE_CUSTOMERS) else None
    return record_page(request, session, staff, account, confirm_deletion=confirm)


def record_page(request: Request, session: Session, staff: StaffPrincipal, account: Account, *,
                refused: dict[str, Form] | None = None, confirm_deletion: SavedPaymentMethod | None = None,
                status: int = 200) -> Response:
    """Render the record page; `refused` holds the one form to show again with its messages (e.g. "contact:new"),
    `confirm_deletion` a saved payment method waiting for "Yes, delete"."""
    forms = {"details": Form(prefix="details"), "address:new": Form(prefix="address-new"),
             "contact:new": Form(prefix="contact-new"),
             **{f"address:{a.id}": Form(prefix=f"address-{a.id}") for a in account.addresses}, **(refused or {})}
    definitions: list[CustomAttributeDefinition] = service.definitions(session)
    methods = service.payment_methods(session, account)
    storefronts = _storefront_options(session, staff, account.storefront_id)
    return page(request, "accounts/record.html", {
        "staff": staff, "account": account, "forms": forms, **OPTIONS, "can_manage": staff.may(MANAGE_CUSTOMERS),
        "operator": staff.reseller_scope is None,
        "definitions": definitions, "attributes": _attribute_texts(session, account),
        "saved_methods": methods, "payment_method_owners": service.payment_method_owners(session, methods),
        "confirm_deletion": confirm_deletion, "storefronts": storefronts,
        **{key: value for section in RECORD_SECTIONS for key, value in section(session, account).items()},
        "events": service.events(session, staff.reseller_scope, account),
        "history_labels": {f"attributes.{d.key}": d.label for d in definitions},
        "history_names": {"storefront_id": {int(key): name for key, name in storefronts}}}, status)


def _storefront_options(session: Session, staff: StaffPrincipal, current: int | None = None) -> list[tuple[str, str]]:
    """The storefront selector's options: the storefronts the staff user may put an account on, and its own."""
    return [(str(key), name) for key, name in service.storefront_choices(session, staff.reseller_scope, current)]


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
    return flash_redirect(request, account_url(account), _l("Changes saved.") if changes else _l("Nothing changed."))


def _update(session: Session, staff: StaffPrincipal, account: Account, form: dict[str, str]) -> dict[str, Any]:
    data = {**nest(form, "attributes"), **{flag: flag in form for flag in DETAIL_FLAGS}}
    if not data.get("storefront_id", "").strip():  # an account without one keeps none until one is chosen
        data.pop("storefront_id", None)
    data["attributes"] = attribute_values_of(session, form)
    body = AccountUpdate.model_validate(data)
    fields = body.model_dump(exclude_unset=True)
    return service.update_account(session, staff.actor, account, fields, staff.reseller_scope)


@router.post("/{account_id}/status")
def set_account_active(account_id: Id, request: Request, session: DbSession, staff: Manager,
                       form: Fields) -> Response:
    """The Active toggle: the contacts of an inactive account cannot sign in (deactivation is confirmed first)."""
    active = active_choice(form, _l("Use the Activate or Deactivate button."))
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    if not active and not confirmed(form):
        return confirmation_page(request, Confirmation(
            _l("Deactivate this account?"),
            filled(_l("The contacts of %(name)s (%(number)s) are signed out and cannot sign in until the account is "
                      "activated again."), name=account.name, number=account.number),
            _l("Yes, deactivate"), f"{account_url(account)}/status", account_url(account), danger=True,
            fields={"active": "false"}), {"staff": staff})
    status = AccountStatus.active if active else AccountStatus.inactive
    service.update_account(session, staff.actor, account, {"status": status}, staff.reseller_scope)
    return flash_redirect(request, account_url(account),
                          _l("Account activated.") if active else _l("Account deactivated."))


@router.post("/{account_id}/addresses")
def add_address(account_id: Id, request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Add an address to the address book."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    added, errors = attempt(session, lambda: service.add_address(session, staff.actor, account, _address(form)))
    if added is None:
        return record_page(request, session, staff, account,
                           refused={"address:new": Form.refused(form, errors, "address-new")}, status=422)
    return flash_redirect(request, account_url(account) + "#addresses", _l("Address added."))


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
    return flash_redirect(request, account_url(account) + "#addresses", _l("Address saved."))


@router.post("/{account_id}/addresses/{address_id}/delete")
def delete_address(account_id: Id, address_id: Id, request: Request, session: DbSession,
                   staff: Manager, form: Fields) -> Response:
    """Remove an address from the address book, once confirmed."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    if not confirmed(form):
        address = service.address_of(account, address_id)
        return confirmation_page(request, Confirmation(
            _l("Delete this address?"),
            filled(_l("%(address)s goes from the address book of %(name)s for good."),
                   address=f"{address.line1}, {address.city}", name=account.name),
            _l("Yes, delete"), f"{account_url(account)}/addresses/{address_id}/delete",
            account_url(account) + "#addresses", danger=True), {"staff": staff})
    service.delete_address(session, staff.actor, account, address_id)
    return flash_redirect(request, account_url(account) + "#addresses", _l("Address deleted."))


@router.post("/{account_id}/payment-methods/{method_id}/delete")
def delete_payment_method(account_id: Id, method_id: Id, request: Request, session: DbSession,
                          staff: Manager) -> Response:
    """"Yes, delete" on the confirmation: forget a saved payment method."""
    account = service.get_account(session, staff.reseller_scope, account_id, lock=True)
    service.delete_payment_method(session, staff.actor, account, method_id)
    return flash_redirect(request, account_url(account) + "#payment-methods", _l("Saved payment method deleted."))


def _address(form: dict[str, str]) -> dict[str, Any]:
    flags = {"is_billing": "is_billing" in form, "is_shipping": "is_shipping" in form}
    return AddressIn.model_validate({**without_blanks(form), **flags}).model_dump()
