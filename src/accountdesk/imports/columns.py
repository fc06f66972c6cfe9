"""The customer file's column set (accounts, their billing and shipping address, their contacts, custom attributes),
reading it from CSV or XLSX a chunk at a time, and writing it (template and export)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from accountdesk.core import exports
from accountdesk.core.errors import ValidationFailed
from accountdesk.core.i18n import _l


@dataclass(frozen=True)
class FileColumn:
    name: str
    meaning: str
    example: str = ""


ACCOUNT = (
    FileColumn("account_number", "Account number; left blank on a new account: the storefront's next number",
               "C100231"),
    FileColumn("account_name", "Company or customer name (needed for a new account)", "Harbour Tools Ltd"),
    FileColumn("account_kind", "b2b, b2c or reseller (new account: b2b)", "b2b"),
    FileColumn("account_status", "active or inactive (new account: active)", "active"),
    FileColumn("account_email", "The account's e-mail", "office@harbourtools.example"),
    FileColumn("account_phone", "The account's phone; without +country it is read in the billing country",
               "+44 20 7946 0958"),
    FileColumn("account_language", "en, fr or de (new account: the storefront's language)", "en"),
    FileColumn("customer_group", "Customer group", "trade"),
    FileColumn("price_group", "Price group", "A"),
    FileColumn("rep_code", "Sales representative", "R12"),
    FileColumn("payment_method", "cash, deposit, credit_card or invoice (new account: the storefront's default)",
               "invoice"),
    FileColumn("payment_terms", "Payment terms", "30 days"),
    FileColumn("currency", "ISO 4217 code (new account: the storefront's default)", "GBP"),
    FileColumn("erp_code", "The customer's code in the ERP", "HT-0042"),
)
ADDRESS_KINDS = {"billing": "Billing address", "shipping": "Shipping address"}
ADDRESS_PARTS = (
    ("line1", "street and number", "1 Quay Street"),
    ("line2", "second line", ""),
    ("city", "city", "London"),
    ("region", "state or province, ISO 3166-2 (US-CA, or CA); needed where the country's addresses have one", ""),
    ("postcode", "postcode, in the country's format", "EC1A 1BB"),
    ("country", "country, ISO 3166-1 two letters", "GB"),
)
ADDRESS = tuple(FileColumn(f"{kind}_{part}", f"{title}: {meaning}", example if kind == "billing" else "")
                for kind, title in ADDRESS_KINDS.items() for part, meaning, example in ADDRESS_PARTS)
CONTACT = (
    FileColumn("contact_email", "The contact's sign-in e-mail; blank: a row for the account alone",
               "maria@harbourtools.example"),
    FileColumn("contact_first_name", "First name (needed for a new contact)", "Maria"),
    FileColumn("contact_last_name", "Last name (needed for a new contact)", "Lopez"),
    FileColumn("contact_phone", "Phone (needed for a new contact); without +country: the billing country's",
               "+44 20 7946 0959"),
    FileColumn("contact_language", "en, fr or de (new contact: the account's language)", "en"),
    FileColumn("contact_date_format", "DD/MM/YYYY, MM/DD/YYYY, YYYY-MM-DD or DD.MM.YYYY", "DD/MM/YYYY"),
    FileColumn("contact_role", "buyer or account_admin (new contact: buyer)", "account_admin"),
)
ATTRIBUTE_PREFIX = "attribute."
FIXED = (*ACCOUNT, *ADDRESS, *CONTACT)
FIXED_NAMES = frozenset(c.name for c in FIXED)
ACCOUNT_NAMES = tuple(c.name for c in ACCOUNT)
CONTACT_NAMES = tuple(c.name for c in CONTACT)
XLSX_MEDIA_TYPE = exports.MEDIA_TYPES["xlsx"]
# A CSV export prefixes a cell that a spreadsheet would run as a formula with an apostrophe (core.exports); the
# import takes it off again, so that the file round-trips.
_ESCAPED = ("'=", "'@", "'+", "'-", "'\t", "'\r")


def column_names(attribute_keys: Sequence[str]) -> list[str]:
    """Every column of the file, in the order the template and the export write them."""
    return [c.name for c in FIXED] + [ATTRIBUTE_PREFIX + key for key in attribute_keys]


def file_format(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ValidationFailed("Choose a .csv or .xlsx file.", code="import_file_type")
    return suffix[1:]


def _text(value: str) -> str:
    text = value.strip()
    return text[1:] if text.startswith(_ESCAPED) else text


def _cell(value: Any) -> str:
    """A spreadsheet cell as the text a form field would hold."""
    if isinstance(value, str):
        return _text(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return _text(str(value))


def _csv_rows(path: Path) -> Iterator[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.reader(handle):
                # _text inlined: this runs for every cell of the file
                yield [text[1:] if text[:1] == "'" and text.startswith(_ESCAPED) else text
                       for text in map(str.strip, row)]
    except UnicodeDecodeError as exc:
        raise ValidationFailed("The file is not UTF-8 text. Save it as \"CSV UTF-8\" and upload it again.",
                               code="import_file_encoding") from exc
    except csv.Error as exc:
        raise ValidationFailed(_l("The CSV file cannot be read: %(problem)s.", problem=str(exc)),
                               code="import_file_unreadable") from exc


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
    except (CalamineError, OSError, ValueError) as exc:
        raise ValidationFailed("The file is not an Excel workbook (.xlsx) that can be read.",
                               code="import_file_unreadable") from exc
    try:
        for row in sheet.iter_rows():
            yield [_cell(value) for value in row]
    finally:
        workbook.close()


def read_rows(path: Path, fmt: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header (column names, lower-cased) and the data rows as (line number, {column: text}); blank rows are
    left out. Rows are read as they are used: a file of any length takes the same memory (CSV)."""
    rows = _csv_rows(path) if fmt == "csv" else _xlsx_rows(path)
    header: list[str] = []
    for header in rows:
        if any(header):
            break
    header = [name.strip().lower() for name in header]
    if not any(header):
        raise ValidationFailed("The file is empty: it needs a header row with the column names.",
                               code="import_file_empty")

    def data() -> Iterator[tuple[int, dict[str, str]]]:
        every_column_named = all(header)
        for line, row in enumerate(rows, start=2):
            if any(row):
                if every_column_named:
                    yield line, dict(zip(header, row, strict=False))
                else:
                    yield line, {name: value for name, value in zip(header, row, strict=False) if name}

    return header, data()


def write(path: Path, names: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    """The file at `path` (.csv or .xlsx by its name): text cells only, so that "01234" stays "01234"."""
    columns = [exports.Column(name, "text", max(12, min(40, len(name) + 2))) for name in names]
    if file_format(path.name) == "xlsx":
        return exports.write_xlsx(path, "Customers", columns, rows)
    return exports.write_csv(path, columns, rows)


def template_rows(attribute_keys: Sequence[str]) -> list[list[str]]:
    """The template's one example row: a company, its billing address and an admin contact."""
    return [[c.example for c in FIXED] + ["" for _ in attribute_keys]]
