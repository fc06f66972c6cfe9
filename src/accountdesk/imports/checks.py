"""One row of a customer file checked as the console's forms check what staff type: the account (AccountFields),
its addresses (AddressIn: country, region rules, postcode format), phones (E.164 in the billing country), the
contact (ContactFields), custom attributes (their definitions). Pure: no database, so a chunk is checked at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

from pydantic import ValidationError

from accountdesk.accounts.models import CustomAttributeDefinition
from accountdesk.accounts.schemas import AccountFields, AddressIn
from accountdesk.accounts.service import parse_attribute
from accountdesk.contacts.schemas import ContactFields
from accountdesk.core import validation
from accountdesk.core.i18n import LazyText, _l, as_data
from accountdesk.core.pages import field_errors
from accountdesk.imports.columns import ADDRESS_KINDS, ADDRESS_PARTS, ATTRIBUTE_PREFIX, CONTACT_NAMES, FIXED_NAMES

# column -> field of the account schema (phone and status are read apart: see check_row)
ACCOUNT_FIELDS = {"account_number": "number", "account_name": "name", "account_kind": "kind",
                  "account_email": "email", "account_language": "preferred_language", "customer_group":
                  "customer_group", "price_group": "price_group", "rep_code": "rep_code", "payment_method":
                  "payment_method", "payment_terms": "payment_terms", "currency": "currency", "erp_code": "erp_code"}
CONTACT_FIELDS = {"contact_email": "email", "contact_first_name": "first_name", "contact_last_name": "last_name",
                  "contact_language": "language", "contact_date_format": "date_format", "contact_role": "role"}
ACCOUNT_COLUMNS = {name: column for column, name in ACCOUNT_FIELDS.items()}
CONTACT_COLUMNS = {name: column for column, name in CONTACT_FIELDS.items()}
ADDRESS_FIELDS = tuple(part for part, _, _ in ADDRESS_PARTS)
ADDRESS_COLUMNS = {kind: {part: f"{kind}_{part}" for part in ADDRESS_FIELDS} for kind in ADDRESS_KINDS}
STATUSES = ("active", "inactive")
NUMBER_MAX = 40
CHECKED_KEPT = 4096  # distinct accounts and addresses whose checks are kept (see _checked)


@dataclass
class Row:
    """A row of the file, checked: normalised values of what its cells gave (a blank cell gives nothing) and the
    problems, each in the words the forms use, prefixed with its column. Problems and notes are kept as data
    (core.i18n.as_data): the report shows them in the language of whoever reads it."""

    line: int
    cells: dict[str, str]
    problems: list[Any] = field(default_factory=list)
    account: dict[str, Any] = field(default_factory=dict)
    addresses: dict[str, dict[str, Any]] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    contact: dict[str, Any] | None = None
    # a phone without +country where the row gives no billing country: read in the account's (see plan)
    phones_to_read: dict[str, str] = field(default_factory=dict)
    notes: list[Any] = field(default_factory=list)  # why a matched row was left as it is

    @property
    def account_key(self) -> tuple[str, str] | None:
        """What ties the rows of one account together: its number, else its ERP code, else its e-mail."""
        for name in ("number", "erp_code", "email"):
            if self.account.get(name):
                return name, self.account[name]
        return None

    @property
    def account_cells(self) -> tuple[str, ...]:
        """The cells every row of one account repeats (account, addresses, attributes)."""
        return _account_cells_of(tuple(self.cells))(self.cells)

    def problem(self, column: str, message: Any) -> None:
        self.problems.append(as_data(_l("%(column)s: %(problem)s", column=column, problem=_lazy(message))))

    def note(self, message: Any) -> None:
        self.notes.append(as_data(message))

    @property
    def problem_columns(self) -> list[str]:
        return [problem["values"]["column"] for problem in self.problems]


@lru_cache(maxsize=64)
def _account_cells_of(columns: tuple[str, ...]) -> Callable[[dict[str, str]], tuple[str, ...]]:
    """What reads the account's cells out of a row with these columns, in their order (the rows of a file have the
    same columns, but for a short row)."""
    names = [column for column in columns if not column.startswith("contact_")]
    if len(names) < 2:
        return lambda cells: tuple(cells[name] for name in names)
    return itemgetter(*names)


def _lazy(message: Any) -> Any:
    """A message to keep translatable: a plain text (a validator's) is looked up in the catalogue when shown."""
    return LazyText(message) if isinstance(message, str) else message


@lru_cache(maxsize=CHECKED_KEPT)
def _checked(schema: type, items: tuple[tuple[str, str], ...]) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """The values `schema` makes of the fields, or its messages by field: kept per distinct set of fields, because
    every row of an account repeats the account's cells and addresses."""
    data = dict(items)
    try:
        return schema.model_validate(data).model_dump(exclude_none=True, include=set(data)), ()
    except ValidationError as exc:
        return {}, tuple(field_errors(exc).items())


def _validate(row: Row, schema: type, data: dict[str, Any], columns: dict[str, str],
              repeated: bool = True) -> dict[str, Any]:
    check = _checked if repeated else _checked.__wrapped__
    values, errors = check(schema, tuple(data.items()))
    for location, message in errors:
        row.problem(columns.get(location.split(".")[0], location), message)
    return dict(values)


def _given(cells: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    return {name: cells[column] for column, name in names.items() if cells.get(column)}


def _phone(row: Row, column: str, value: str, country: str | None) -> str:
    if not value:
        return ""
    if not country and not value.lstrip().startswith("+"):
        row.phones_to_read[column] = value
        return ""
    try:
        return validation.normalise_phone(value, country)
    except ValueError as exc:
        row.problem(column, str(exc))
        return ""


def read_phone(row: Row, column: str, country: str | None) -> str:
    """A phone left by check_row for want of a country, read in `country` (the stored account's billing one)."""
    try:
        return validation.normalise_phone(row.phones_to_read[column], country)
    except ValueError as exc:
        row.problem(column, str(exc))
        return ""


def check_row(line: int, cells: dict[str, str], definitions: dict[str, CustomAttributeDefinition]) -> Row:
    row = Row(line, cells)
    if not validation.all_storable(list(cells.values())):
        for column, value in cells.items():
            if value and (problem := validation.text_problem(value)):
                row.problem(column, problem)
        if row.problems:
            return row
    account_cells = _given(cells, ACCOUNT_FIELDS)
    if len(account_cells.get("number", "")) > NUMBER_MAX:
        row.problem("account_number", _l("Use at most %(count)s characters.", count=NUMBER_MAX))
        account_cells.pop("number")
    row.account = _validate(row, AccountFields, {k: v for k, v in account_cells.items() if k != "number"},
                            ACCOUNT_COLUMNS)
    if "number" in account_cells:
        row.account["number"] = account_cells["number"].strip()
    status = cells.get("account_status", "").strip().lower()
    if status:
        row.account["status"] = status  # active or inactive, or what the account already is (see plan)
    for kind, columns in ADDRESS_COLUMNS.items():
        given = {part: cells.get(column, "") for part, column in columns.items()}
        if any(given.values()):
            address = _validate(row, AddressIn, given, columns)
            if address:
                row.addresses[kind] = {part: address[part] for part in ADDRESS_FIELDS}
    country = row.addresses.get("billing", {}).get("country") or None
    if phone := _phone(row, "account_phone", cells.get("account_phone", ""), country):
        row.account["phone"] = phone
    for column, value in cells.items() if definitions else ():  # the header names only defined attributes
        if column.startswith(ATTRIBUTE_PREFIX) and value:
            key = column.removeprefix(ATTRIBUTE_PREFIX)
            try:
                row.attributes[key] = parse_attribute(definitions[key], value)
            except ValueError as exc:
                row.problem(column, str(exc))
    if any(cells.get(c) for c in CONTACT_NAMES):
        contact = _validate(row, ContactFields, _given(cells, CONTACT_FIELDS), CONTACT_COLUMNS, repeated=False)
        if not cells.get("contact_email"):
            row.problem("contact_email", "This field is required.")
        if phone := _phone(row, "contact_phone", cells.get("contact_phone", ""), country):
            contact["phone"] = phone
        row.contact = contact
    return row


def header_problems(header: list[str], definitions: dict[str, CustomAttributeDefinition]) -> list[Any]:
    """What is wrong with the header row (a column the template does not have, a column twice), as data."""
    problems: list[Any] = []
    for name in dict.fromkeys(header):
        if not name:
            continue
        if header.count(name) > 1:
            problems.append(_l("The column %(column)s appears more than once.", column=name))
        elif name.startswith(ATTRIBUTE_PREFIX):
            if name.removeprefix(ATTRIBUTE_PREFIX) not in definitions:
                problems.append(_l("No custom attribute is called %(attribute)s (column %(column)s).",
                                   attribute=name.removeprefix(ATTRIBUTE_PREFIX), column=name))
        elif name not in FIXED_NAMES:
            problems.append(_l("Unknown column %(column)s: the columns are those of the template.", column=name))
    if not {"account_number", "erp_code", "account_email", "account_name", "contact_email"} & set(header):
        problems.append(_l("The file needs at least an account_number, erp_code, account_email, account_name or "
                           "contact_email column."))
    return [as_data(problem) for problem in problems]
