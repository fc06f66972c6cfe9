"""The file ERP: a folder of CSV files (UTF-8, header row, a BOM is accepted), re-read when any of them changes.

customers.csv   code, name, group, billing_postcode, city, country, phone, email, payment_terms, price_list,
                currency, credit_limit, balance, active, address_line1, address_line2, region, idempotency_key
contacts.csv    code, account_code, first_name, last_name, email, phone, active
invoices.csv    number, account_code, issued_on (YYYY-MM-DD), total, currency, open
statements.csv  account_code, period_start, period_end, currency, opening_balance, date, reference, description,
                amount — one row per statement line; the statement's own columns repeat on each of its lines, and a
                statement without lines is one row with `date` empty. closing balance = opening + sum of amounts.

Booleans (active, open) read 1/0, true/false, yes/no, y/n; amounts are decimals with a dot. Only `code` and `name`
(customers), `code`, `account_code`, `email` (contacts), `number`, `account_code`, `issued_on`, `total`
(invoices) and `account_code`, `period_start`, `period_end` (statements) are required; a missing file is empty.

A change is noticed by each file's (inode, mtime, size), checked on every call. create_customer holds an
exclusive fcntl lock on `.lock` in the folder, rewrites customers.csv (then contacts.csv) through a temporary file
and an atomic rename, gives the next code "C" + number, and keeps the idempotency key in the `idempotency_key`
column, so a repeat with the same key returns the same code (and adds contacts a crash may have left out).
"""

from __future__ import annotations

import csv
import fcntl
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

from accountdesk.erp.gateway import (
    ErpAccount,
    ErpContact,
    ErpGateway,
    ErpInvoice,
    ErpStatement,
    ErpStatementLine,
    ErpUnavailable,
    NewCustomer,
    statement_lines_total,
)

CUSTOMER_COLUMNS = ["code", "name", "group", "billing_postcode", "city", "country", "phone", "email", "payment_terms",
                    "price_list", "currency", "credit_limit", "balance", "active", "address_line1", "address_line2",
                    "region", "idempotency_key"]
CONTACT_COLUMNS = ["code", "account_code", "first_name", "last_name", "email", "phone", "active"]
INVOICE_COLUMNS = ["number", "account_code", "issued_on", "total", "currency", "open"]
STATEMENT_COLUMNS = ["account_code", "period_start", "period_end", "currency", "opening_balance", "date", "reference",
                     "description", "amount"]
FILES = {"customers": "customers.csv", "contacts": "contacts.csv", "invoices": "invoices.csv",
         "statements": "statements.csv"}
TRUE = {"1", "true", "yes", "y", "t"}
FALSE = {"0", "false", "no", "n", "f"}
CODE = re.compile(r"^C(\d+)$")

Row = dict[str, str]
T = TypeVar("T")


class _BadRow(ValueError):
    pass


def _text(row: Row, column: str, required: bool = False) -> str:
    value = (row.get(column) or "").strip()
    if required and not value:
        raise _BadRow(f"{column} is empty")
    return value


def _flag(row: Row, column: str, default: bool) -> bool:
    value = _text(row, column).lower()
    if not value:
        return default
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise _BadRow(f"{column} must be yes or no, not {value!r}")


def _amount(row: Row, column: str, required: bool = False) -> Decimal:
    value = _text(row, column, required) or "0"
    try:
        return Decimal(value)
    except InvalidOperation:
        raise _BadRow(f"{column} is not a number: {value!r}") from None


def _day(row: Row, column: str) -> date:
    value = _text(row, column, True)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _BadRow(f"{column} is not a YYYY-MM-DD date: {value!r}") from None


def _account(row: Row) -> ErpAccount:
    return ErpAccount(
        code=_text(row, "code", True), name=_text(row, "name", True), group=_text(row, "group"),
        billing_postcode=_text(row, "billing_postcode"), city=_text(row, "city"), country=_text(row, "country"),
        phone=_text(row, "phone"), email=_text(row, "email").lower(), payment_terms=_text(row, "payment_terms"),
        price_list=_text(row, "price_list"), currency=_text(row, "currency"),
        credit_limit=_amount(row, "credit_limit"), balance=_amount(row, "balance"), active=_flag(row, "active", True),
        street=_text(row, "address_line1"))


def _contact(row: Row) -> ErpContact:
    return ErpContact(code=_text(row, "code", True), account_code=_text(row, "account_code", True),
                      first_name=_text(row, "first_name"), last_name=_text(row, "last_name"),
                      email=_text(row, "email", True), phone=_text(row, "phone"), active=_flag(row, "active", True))


def _invoice(row: Row) -> ErpInvoice:
    return ErpInvoice(number=_text(row, "number", True), account_code=_text(row, "account_code", True),
                      issued_on=_day(row, "issued_on"), total=_amount(row, "total", True),
                      currency=_text(row, "currency"), open=_flag(row, "open", True))


def _statement_row(row: Row) -> tuple[tuple[str, date], tuple[date, str, Decimal], ErpStatementLine | None]:
    key = (_text(row, "account_code", True), _day(row, "period_start"))
    head = (_day(row, "period_end"), _text(row, "currency"), _amount(row, "opening_balance"))
    if not _text(row, "date"):
        return key, head, None
    return key, head, ErpStatementLine(_day(row, "date"), _text(row, "reference"), _text(row, "description"),
                                       _amount(row, "amount", True))


@dataclass
class _Snapshot:
    stamp: tuple
    accounts: dict[str, ErpAccount] = field(default_factory=dict)
    contacts: dict[str, list[ErpContact]] = field(default_factory=dict)  # by e-mail
    invoices: dict[str, list[ErpInvoice]] = field(default_factory=dict)  # by account code
    statements: dict[str, list[ErpStatement]] = field(default_factory=dict)  # by account code


def read_rows(path: Path) -> tuple[list[str], list[Row]]:
    """Header and rows of one CSV file; a missing file has neither."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            return list(reader.fieldnames or []), list(reader)
    except FileNotFoundError:
        return [], []


def write_rows(path: Path, columns: Sequence[str], rows: Sequence[Row]) -> None:
    """Write a whole CSV file through a temporary file and an atomic rename: readers see the old or the new file."""
    handle = tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", dir=path.parent,
                                         prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


class FileGateway(ErpGateway):
    """The ERP as a folder of CSV files (see the module docstring for the columns)."""

    def __init__(self, folder: Path | str, *, timeout: float = 2.0) -> None:
        self.folder = Path(folder)
        self.timeout = timeout
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.folder / FILES[name]

    def _stamp(self) -> tuple:
        if not self.folder.is_dir():
            raise ErpUnavailable(f"The ERP folder {self.folder} does not exist.")
        stamp = []
        for name in FILES:
            try:
                st = self._path(name).stat()
                stamp.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stamp.append(None)
        return tuple(stamp)

    def _current(self) -> _Snapshot:
        stamp = self._stamp()
        snapshot = self._snapshot
        if snapshot is not None and snapshot.stamp == stamp:
            return snapshot
        with self._lock:
            if self._snapshot is None or self._snapshot.stamp != stamp:
                self._snapshot = self._load(stamp)
            return self._snapshot

    def _parse(self, name: str, parse: Callable[[Row], T]) -> Iterator[T]:
        _, rows = read_rows(self._path(name))
        for number, row in enumerate(rows, start=2):  # line 1 is the header
            try:
                yield parse(row)
            except _BadRow as exc:
                raise ErpUnavailable(f"{FILES[name]} line {number}: {exc}.") from None

    def _load(self, stamp: tuple) -> _Snapshot:
        snap = _Snapshot(stamp)
        for account in self._parse("customers", _account):
            snap.accounts[account.code] = account
        for contact in self._parse("contacts", _contact):
            snap.contacts.setdefault(contact.email, []).append(contact)
        for invoice in self._parse("invoices", _invoice):
            snap.invoices.setdefault(invoice.account_code, []).append(invoice)
        for invoices in snap.invoices.values():
            invoices.sort(key=lambda i: (i.issued_on, i.number))
        snap.statements = self._statements()
        return snap

    def _statements(self) -> dict[str, list[ErpStatement]]:
        heads: dict[tuple[str, date], tuple[tuple[date, str, Decimal], list[ErpStatementLine]]] = {}
        for key, head, line in self._parse("statements", _statement_row):
            _, lines = heads.setdefault(key, (head, []))
            if line is not None:
                lines.append(line)
        result: dict[str, list[ErpStatement]] = {}
        for (code, start), ((end, currency, opening), lines) in sorted(heads.items()):
            lines.sort(key=lambda line: (line.on, line.reference))
            closing = opening + statement_lines_total(lines)
            result.setdefault(code, []).append(ErpStatement(code, start, end, currency, opening, closing, tuple(lines)))
        return result

    # -- the gateway -----------------------------------------------------------------------------------------

    def find_contacts_by_email(self, email: str) -> list[ErpContact]:
        snap = self._current()
        found = [c for c in snap.contacts.get(email.strip().lower(), []) if c.account_code in snap.accounts]
        return sorted(found, key=lambda c: (c.account_code, c.code))

    def get_account(self, code: str) -> ErpAccount | None:
        return self._current().accounts.get(code)

    def contact_exists(self, account_code: str, email: str) -> bool:
        snap = self._current()
        account = snap.accounts.get(account_code)
        return bool(account and account.active and any(
            c.active and c.account_code == account_code for c in snap.contacts.get(email.strip().lower(), [])))

    def list_invoices(self, code: str, since: date | None = None) -> list[ErpInvoice]:
        return [i for i in self._current().invoices.get(code, []) if since is None or i.issued_on >= since]

    def list_statements(self, code: str) -> list[ErpStatement]:
        return list(self._current().statements.get(code, []))

    def health(self) -> bool:
        try:
            self._current()
        except ErpUnavailable:
            return False
        return True

    # -- writing ---------------------------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout
        if not self.folder.is_dir():
            raise ErpUnavailable(f"The ERP folder {self.folder} does not exist.")
        with (self.folder / ".lock").open("a") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ErpUnavailable("The ERP folder is locked by another writer.") from None
                    time.sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def create_customer(self, customer: NewCustomer, idempotency_key: str) -> str:
        with self._exclusive():
            header, rows = read_rows(self._path("customers"))
            code = next((r["code"] for r in rows if _text(r, "idempotency_key") == idempotency_key), None)
            if code is None:
                code = _next_code(rows)
                rows.append(_customer_row(code, customer, idempotency_key))
                write_rows(self._path("customers"), _columns(header, CUSTOMER_COLUMNS), rows)
            self._add_contacts(code, customer)
        return code

    def _add_contacts(self, code: str, customer: NewCustomer) -> None:
        header, rows = read_rows(self._path("contacts"))
        present = {_text(r, "email").lower() for r in rows if _text(r, "account_code") == code}
        missing = [c for c in customer.contacts if c.email.strip().lower() not in present]
        if not missing:
            return
        number = max((int(r["code"]) for r in rows if _text(r, "code").isdigit()), default=0)
        for offset, contact in enumerate(missing, start=1):
            rows.append({"code": str(number + offset), "account_code": code, "first_name": contact.first_name,
                         "last_name": contact.last_name, "email": contact.email.strip().lower(),
                         "phone": contact.phone, "active": "yes"})
        write_rows(self._path("contacts"), _columns(header, CONTACT_COLUMNS), rows)


def _columns(header: list[str], standard: list[str]) -> list[str]:
    return header + [c for c in standard if c not in header] if header else standard


def _next_code(rows: list[Row]) -> str:
    numbers = [m.group(1) for r in rows if (m := CODE.match(_text(r, "code")))]
    if not numbers:
        return "C00001"
    width = max(len(n) for n in numbers)
    return f"C{max(int(n) for n in numbers) + 1:0{width}d}"


def _customer_row(code: str, customer: NewCustomer, idempotency_key: str) -> Row:
    return {"code": code, "name": customer.name, "group": customer.group, "billing_postcode": customer.postcode,
            "city": customer.city, "country": customer.country, "phone": customer.phone,
            "email": customer.email.strip().lower(), "payment_terms": customer.payment_terms, "price_list": "",
            "currency": customer.currency, "credit_limit": "0", "balance": "0", "active": "yes",
            "address_line1": customer.address_line1, "address_line2": customer.address_line2,
            "region": customer.region, "idempotency_key": idempotency_key}
