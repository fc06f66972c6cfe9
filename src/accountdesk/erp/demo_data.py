"""Demo ERP data: one data set written as a CSV folder (file adapter) or served by the SAP loopback server.

The data set has what the instant-account rules need: a B2C cash account "CASH" with a contact, one e-mail
(maria.lopez@harbourtools.example, stored in mixed case) on two accounts of the same group (C20000, C20001), an
inactive contact (lee@kestrel-catering.example), a frozen account (C20003), invoices and payments from which the
monthly statements are computed. Dates are relative to `today`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from accountdesk.erp.file_adapter import (
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    FILES,
    INVOICE_COLUMNS,
    STATEMENT_COLUMNS,
    write_rows,
)
from accountdesk.erp.gateway import (
    ErpAccount,
    ErpContact,
    ErpInvoice,
    ErpStatement,
    ErpStatementLine,
    monthly_statements,
)

CASH_ACCOUNT = "CASH"
SHARED_EMAIL = "maria.lopez@harbourtools.example"


@dataclass(frozen=True)
class ErpPayment:
    """A payment received from a customer (SAP: an incoming payment)."""

    number: str
    account_code: str
    paid_on: date
    amount: Decimal
    currency: str


@dataclass
class ErpDataset:
    accounts: list[ErpAccount]
    contacts: list[ErpContact]
    invoices: list[ErpInvoice]
    payments: list[ErpPayment] = field(default_factory=list)

    def movements(self, code: str) -> list[ErpStatementLine]:
        lines = [ErpStatementLine(i.issued_on, i.number, "Invoice", i.total) for i in self.invoices
                 if i.account_code == code]
        lines += [ErpStatementLine(p.paid_on, p.number, "Payment", -p.amount) for p in self.payments
                  if p.account_code == code]
        return lines

    def statements(self, code: str, today: date) -> list[ErpStatement]:
        account = next(a for a in self.accounts if a.code == code)
        return monthly_statements(code, account.currency, account.balance, self.movements(code), today)


def _account(code: str, name: str, group: str, street: str, postcode: str, city: str, phone: str, email: str,
             terms: str, credit: str, *, active: bool = True) -> ErpAccount:
    return ErpAccount(code=code, name=name, group=group, billing_postcode=postcode, city=city, country="GB",
                      phone=phone, email=email, payment_terms=terms, price_list="1", currency="GBP",
                      credit_limit=Decimal(credit), balance=Decimal("0"), active=active, street=street)


def demo_dataset(today: date | None = None) -> ErpDataset:
    """The demo ERP; account balances equal invoices minus payments."""
    today = today or date.today()
    accounts = [
        _account(CASH_ACCOUNT, "Cash Sales (web shop)", "110", "1 Commercial Street", "E1 6AN", "London",
                 "+44 20 7946 0000", "shop@harbourtools.example", "-1", "0"),
        _account("C20000", "Harbour Tools Ltd", "100", "12 Dock Road", "E16 1AA", "London", "+44 20 7946 0100",
                 "accounts@harbourtools.example", "1", "5000.00"),
        _account("C20001", "Harbour Tools North", "100", "3 Canal Street", "M1 1AE", "Manchester", "+44 161 496 0200",
                 "north@harbourtools.example", "1", "2500.00"),
        _account("C20002", "Kestrel Catering", "110", "45 Princes Street", "EH1 1YZ", "Edinburgh", "+44 131 496 0300",
                 "office@kestrel-catering.example", "2", "1500.00"),
        _account("C20003", "Orchid Interiors", "100", "8 Queen Square", "BS1 4DJ", "Bristol", "+44 117 496 0400",
                 "hello@orchid-interiors.example", "1", "1000.00", active=False),
        _account("C20004", "Pine & Oak Joinery", "100", "22 Boar Lane", "LS1 4AP", "Leeds", "+44 113 496 0500",
                 "ravi@pineoak.example", "1", "3000.00"),
    ]
    contacts = [
        ErpContact("1", CASH_ACCOUNT, "Jo", "Walker", "jo.walker@example.org", "+44 7700 900001", True),
        ErpContact("2", "C20000", "Maria", "Lopez", "Maria.Lopez@HarbourTools.example", "+44 7700 900002", True),
        ErpContact("3", "C20000", "Tom", "Reed", "tom.reed@harbourtools.example", "+44 7700 900003", True),
        ErpContact("4", "C20001", "Maria", "Lopez", SHARED_EMAIL, "+44 7700 900002", True),
        ErpContact("5", "C20002", "Sam", "Kerr", "sam@kestrel-catering.example", "+44 7700 900005", True),
        ErpContact("6", "C20002", "Lee", "Oldham", "lee@kestrel-catering.example", "+44 7700 900006", False),
        ErpContact("7", "C20003", "Ada", "Frost", "ada@orchid-interiors.example", "+44 7700 900007", True),
        ErpContact("8", "C20004", "Ravi", "Patel", "ravi@pineoak.example", "+44 7700 900008", True),
    ]

    def ago(days: int) -> date:
        return today - timedelta(days=days)

    invoices = [
        ErpInvoice("1001", "C20000", ago(75), Decimal("1250.00"), "GBP", False),
        ErpInvoice("1002", "C20000", ago(40), Decimal("310.40"), "GBP", True),
        ErpInvoice("1003", "C20000", ago(10), Decimal("89.99"), "GBP", True),
        ErpInvoice("1004", "C20001", ago(20), Decimal("640.00"), "GBP", True),
        ErpInvoice("1005", "C20002", ago(50), Decimal("220.00"), "GBP", False),
        ErpInvoice("1006", "C20002", ago(5), Decimal("75.50"), "GBP", True),
        ErpInvoice("1007", "C20004", ago(30), Decimal("1980.00"), "GBP", True),
    ]
    payments = [
        ErpPayment("5001", "C20000", ago(60), Decimal("1250.00"), "GBP"),
        ErpPayment("5002", "C20002", ago(35), Decimal("220.00"), "GBP"),
    ]
    data = ErpDataset(accounts, contacts, invoices, payments)
    data.accounts = [_with_balance(a, data) for a in accounts]
    return data


def _with_balance(account: ErpAccount, data: ErpDataset) -> ErpAccount:
    balance = sum((line.amount for line in data.movements(account.code)), Decimal("0"))
    return replace(account, balance=balance)


def write_folder(folder: Path | str, data: ErpDataset, today: date | None = None) -> Path:
    """Write the data set as the file adapter's CSV folder (statements computed as of `today`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    today = today or date.today()
    write_rows(folder / FILES["customers"], CUSTOMER_COLUMNS, [_customer_row(a) for a in data.accounts])
    write_rows(folder / FILES["contacts"], CONTACT_COLUMNS, [
        {"code": c.code, "account_code": c.account_code, "first_name": c.first_name, "last_name": c.last_name,
         "email": c.email, "phone": c.phone, "active": _yes(c.active)} for c in data.contacts])
    write_rows(folder / FILES["invoices"], INVOICE_COLUMNS, [
        {"number": i.number, "account_code": i.account_code, "issued_on": i.issued_on.isoformat(),
         "total": str(i.total), "currency": i.currency, "open": _yes(i.open)} for i in data.invoices])
    rows = [row for a in data.accounts for s in data.statements(a.code, today) for row in _statement_rows(s)]
    write_rows(folder / FILES["statements"], STATEMENT_COLUMNS, rows)
    return folder


def write_demo_folder(folder: Path | str, today: date | None = None) -> ErpDataset:
    """Write the demo ERP into `folder` (used by `accountdesk demo`); returns the data set written."""
    data = demo_dataset(today)
    write_folder(folder, data, today)
    return data


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _customer_row(a: ErpAccount) -> dict[str, str]:
    return {"code": a.code, "name": a.name, "group": a.group, "billing_postcode": a.billing_postcode, "city": a.city,
            "country": a.country, "phone": a.phone, "email": a.email, "payment_terms": a.payment_terms,
            "price_list": a.price_list, "currency": a.currency, "credit_limit": str(a.credit_limit),
            "balance": str(a.balance), "active": _yes(a.active), "address_line1": a.street}


def _statement_rows(s: ErpStatement) -> list[dict[str, str]]:
    head = {"account_code": s.account_code, "period_start": s.period_start.isoformat(),
            "period_end": s.period_end.isoformat(), "currency": s.currency, "opening_balance": str(s.opening_balance)}
    if not s.lines:
        return [head]
    return [{**head, "date": line.on.isoformat(), "reference": line.reference, "description": line.description,
             "amount": str(line.amount)} for line in s.lines]
