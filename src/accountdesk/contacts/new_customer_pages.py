"""The console's "Create customer" dialog (seed 001), a page that works without scripts: the person, then a new
account (optional company name and billing address) or an existing one found by search, the existing customers
that look like this one, and after Save the choice of how the person gets a password (contacts.pages, "welcome").
The rules: contacts.new_customer."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.accounts.pages import OPTIONS, attribute_values_of
from accountdesk.accounts.schemas import AccountFields, AddressIn
from accountdesk.contacts import new_customer
from accountdesk.contacts.models import Contact, ContactRole
from accountdesk.contacts.new_customer import CONFIRM_FIELD, NewCustomer
from accountdesk.contacts.pages import welcome_url
from accountdesk.contacts.schemas import ContactCreate
from accountdesk.core import validation
from accountdesk.core.errors import AppError, ValidationFailed
from accountdesk.core.i18n import _l
from accountdesk.core.pages import (
    Form,
    PageRoute,
    attempt,
    field_errors,
    flash_redirect,
    form_fields,
    nest,
    page,
    without_blanks,
)
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import MANAGE_CUSTOMERS, StaffPrincipal

router = APIRouter(prefix="/console/accounts", route_class=PageRoute, include_in_schema=False)
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
M = TypeVar("M", bound=BaseModel)
PREFIX = "new"
PERSON_FIELDS = ("first_name", "last_name", "email", "phone", "language")
ADDRESS_FIELDS = ("line1", "line2", "city", "postcode", "country", "region")
NEW, EXISTING = "new", "existing"  # the `account` choice: a new account, or an existing one
DEFAULTS = {"active": "on", "account": NEW, "language": "en"}
FOUND = 10  # accounts listed for the "existing account" search
RESELLER_FIELD = "reseller"  # ticked: the new company's account is a reseller's (merchant staff see the box)


@router.get("/new")
def new_customer_form(request: Request, session: DbSession, staff: Manager,
                      name: Annotated[str, Query(max_length=200)] = "") -> Response:
    """The "Create customer" dialog; `name` (the search that found nothing) fills in the company name."""
    return _dialog(request, session, staff, Form({**DEFAULTS, "company_name": name}, submitted=True, prefix=PREFIX))


@router.post("/new")
def create_customer(request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Create the customer, or show the dialog again with a message beside each field (and the accounts found, the
    look-alikes, the "Create anyway" box)."""
    contact, errors = attempt(session, lambda: new_customer.create_customer(
        session, staff.actor, staff.reseller_scope, _checked(session, form)))
    if contact is None:
        return _dialog(request, session, staff, Form.refused(form, errors, PREFIX), 422)
    return flash_redirect(request, welcome_url(contact), _created(contact))


def _created(contact: Contact) -> Any:
    if contact.role == ContactRole.account_admin:  # the first person of a new account
        return _l("Customer %(number)s created.", number=contact.account.number)
    return _l("%(name)s added to %(account)s.", name=contact.name, account=contact.account.name)


def _dialog(request: Request, session: Session, staff: StaffPrincipal, form: Form, status: int = 200) -> Response:
    values = form.values
    similar = new_customer.look_alikes(session, staff.reseller_scope, _draft(values))
    return page(request, "contacts/new_customer.html", {
        "staff": staff, "form": form, **OPTIONS,
        "storefronts": [(str(s.id), s.name) for s in new_customer.usable_storefronts(session, staff.reseller_scope)],
        "definitions": accounts.definitions(session), "similar": similar,
        "exact": any(s.exact for s in similar), "confirm_field": CONFIRM_FIELD,
        "found": [(a.id, _described(a)) for a in _accounts_found(session, staff, values)],
        "searched": bool(values.get("account_q", "").strip()),
        "may_open_resellers": staff.reseller_scope is None, "reseller_field": RESELLER_FIELD,
        "choices": [(NEW, _l("New customer account")), (EXISTING, _l("Add to an existing account"))]}, status)


def _draft(values: dict[str, str]) -> NewCustomer:
    """What was typed so far, unchecked: enough to look for existing customers like it."""
    person = {name: values.get(name, "").strip() for name in ("first_name", "last_name", "email")}
    return NewCustomer(person, values.get("company_name", ""), account_id=_existing_id(values))


def _existing_id(values: dict[str, str]) -> int | None:
    if values.get("account") != EXISTING:
        return None
    return validation.parse_id(values.get("account_id", "")) or 0  # 0: an existing account, not yet chosen


def _accounts_found(session: Session, staff: StaffPrincipal, values: dict[str, str]) -> list[Account]:
    """The accounts the "existing account" search finds, within the staff user's scope, and the one chosen."""
    query = values.get("account_q", "").strip()
    found = accounts.search(session, staff.reseller_scope, q=query, per_page=FOUND).items if query else []
    chosen = _existing_id(values)
    if chosen and chosen not in {a.id for a in found}:
        try:
            found.insert(0, accounts.get_account(session, staff.reseller_scope, chosen))
        except AppError:
            pass  # outside the scope: refused when saved, like one that does not exist
    return found


def _described(account: Account) -> str:
    city = account.billing_address.city if account.billing_address else ""
    return " · ".join(part for part in (account.name, account.number, city, account.email) if part)


def _checked(session: Session, form: dict[str, str]) -> NewCustomer:
    """The dialog's values checked all at once, as the schemas and core.validation.check_person check a person,
    an address and an account everywhere; every problem under its field, or the customer to create."""
    problems: dict[str, str] = {}
    person = _valid(ContactCreate, {**{k: form[k] for k in PERSON_FIELDS if form.get(k, "").strip()},
                                    "active": "active" in form}, problems) or {}
    existing = form.get("account") == EXISTING
    address = None if existing else _billing_address(form, problems)
    person |= validation.check_person({name: form.get(name, "") for name in ("email", "phone")}, problems,
                                      country=(address or {}).get("country"))
    customer = NewCustomer(person, " ".join(form.get("company_name", "").split()), address,
                           validation.parse_id(form.get("storefront_id", "")), create_anyway=CONFIRM_FIELD in form,
                           reseller=not existing and RESELLER_FIELD in form)
    if existing:
        customer.account_id = validation.parse_id(form.get("account_id", ""))
        if customer.account_id is None:
            problems.setdefault("account_id", _l("Choose the account: type its name or number, press Save, then "
                                                 "pick it from the accounts found."))
    else:
        _check_account_name(customer, problems)
        customer.attributes = attribute_values_of(session, form)
    if problems:
        raise ValidationFailed(fields=problems)
    return customer


def _billing_address(form: dict[str, str], problems: dict[str, str]) -> dict[str, Any] | None:
    """The billing address, when any of its fields was filled in (it is optional)."""
    typed = nest(without_blanks(form), "billing_address")["billing_address"]
    if not any(typed.get(name) for name in ADDRESS_FIELDS):
        return None
    return _valid(AddressIn, {**typed, "is_billing": True}, problems, "billing_address.")


def _check_account_name(customer: NewCustomer, problems: dict[str, str]) -> None:
    """The account's name, the company's or the person's, fits an account (AccountFields); a person's name that
    does not is reported beside the last name. A reseller's account needs the company's name."""
    errors: dict[str, str] = {}
    _valid(AccountFields, {"name": customer.account_name}, errors)
    if "name" in errors:
        problems.setdefault("company_name" if customer.company_name else "last_name", errors["name"])
    if customer.reseller and not customer.company_name:
        problems.setdefault("company_name", new_customer.RESELLER_NEEDS_NAME)


def _valid(model: type[M], data: dict[str, Any], problems: dict[str, str], prefix: str = "") -> dict[str, Any] | None:
    """`data` as `model` dumps it, or None with each problem under its (prefixed) field in `problems`."""
    try:
        return model.model_validate(data).model_dump()
    except ValidationError as exc:
        for name, message in field_errors(exc).items():
            problems.setdefault(prefix + name, message)
        return None

