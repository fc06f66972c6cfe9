"""An ERP customer's finances as the storefront shows them to the account's admins: credit limit, balance, recent
invoices and monthly statements, read through the gateway (its cache keeps answers briefly)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from accountdesk.core.errors import NotFound
from accountdesk.erp.errors import ErpUnreachableError
from accountdesk.erp.gateway import ErpAccount, ErpFailure, ErpGateway, ErpInvoice, ErpStatement

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Finances:
    """An ERP customer's credit limit, balance, recent invoices and monthly statements."""

    account: ErpAccount
    invoices: list[ErpInvoice]
    statements: list[ErpStatement]

    @property
    def available_credit(self) -> Decimal:
        return self.account.credit_limit - self.account.balance


def finances(gateway: ErpGateway, erp_code: str, invoice_window_days: int = 365) -> Finances:
    """Read through the gateway (its cache keeps answers briefly); ErpUnreachableError when the ERP cannot be
    asked, NotFound when it has no such customer."""
    try:
        account = gateway.get_account(erp_code)
        if account is None:
            raise NotFound("Our records have no customer account with this code.", code="erp_account_not_found")
        since = date.today() - timedelta(days=invoice_window_days)
        invoices = gateway.list_invoices(erp_code, since)
        statements = gateway.list_statements(erp_code)
    except ErpFailure as exc:
        raise ErpUnreachableError("Your statements and credit details cannot be read right now. "
                                  "Please try again in a few minutes.") from exc
    return Finances(account, sorted(invoices, key=lambda i: (i.issued_on, i.number), reverse=True),
                    sorted(statements, key=lambda s: s.period_start, reverse=True))


def _money(amount: Decimal) -> str:
    """Two decimals whatever the adapter gave (SAP answers 2500.0, the CSV folder 2500.00)."""
    return str(amount.quantize(CENT))


def describe_finances(result: Finances) -> dict[str, Any]:
    account = result.account
    return {
        "erp_code": account.code, "name": account.name, "currency": account.currency,
        "credit_limit": _money(account.credit_limit), "balance": _money(account.balance),
        "available_credit": _money(result.available_credit), "payment_terms": account.payment_terms,
        "invoices": [{"number": i.number, "issued_on": i.issued_on.isoformat(), "total": _money(i.total),
                      "currency": i.currency, "open": i.open} for i in result.invoices],
        "statements": [{"period_start": s.period_start.isoformat(), "period_end": s.period_end.isoformat(),
                        "currency": s.currency, "opening_balance": _money(s.opening_balance),
                        "closing_balance": _money(s.closing_balance),
                        "lines": [{"on": line.on.isoformat(), "reference": line.reference,
                                   "description": line.description, "amount": _money(line.amount)}
                                  for line in s.lines]} for s in result.statements]}
