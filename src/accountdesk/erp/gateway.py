"""What accountdesk asks of an ERP: one interface (`ErpGateway`), its records, its errors and a read cache.

Adapters: `file_adapter.FileGateway` (a folder of CSV files, the embedded default) and
`sap_adapter.SapGateway` (SAP Business One Service Layer). `gateway_from_settings` builds the configured one,
wrapped in `CachedGateway` so that sign-in checks and account pages do not ask the ERP on every request.

Errors: `ErpUnavailable` means "could not get an answer" (timeout, connection refused or dropped, 5xx, the
adapter cannot sign in): retry later, or apply the storefront's fallback policy. `ErpError` means the ERP
answered and refused (a 4xx business error): retrying the same call will not help. Both derive from `ErpFailure`.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from accountdesk.core.settings import Settings

T = TypeVar("T")


class ErpFailure(Exception):
    """Any failed ERP call."""


class ErpUnavailable(ErpFailure):
    """No answer from the ERP: timeout, connection error, 5xx, or the adapter cannot sign in to it."""


class ErpError(ErpFailure):
    """The ERP answered with a business error (4xx): `code` and `message` are the ERP's own."""

    def __init__(self, message: str, *, code: str | int | None = None, status: int | None = None) -> None:
        self.message = message
        self.code = code
        self.status = status
        super().__init__(f"{message} (ERP code {code})" if code is not None else message)


@dataclass(frozen=True)
class ErpContact:
    """A contact person on a customer account; `email` is lower-cased."""

    code: str
    account_code: str
    first_name: str
    last_name: str
    email: str
    phone: str
    active: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", self.email.strip().lower())


@dataclass(frozen=True)
class ErpAccount:
    """A customer account (SAP: a business partner of type customer)."""

    code: str
    name: str
    group: str
    billing_postcode: str
    city: str
    country: str
    phone: str
    email: str
    payment_terms: str
    price_list: str
    currency: str
    credit_limit: Decimal
    balance: Decimal
    active: bool
    street: str = ""  # the billing address's street line


@dataclass(frozen=True)
class ErpInvoice:
    number: str
    account_code: str
    issued_on: date
    total: Decimal
    currency: str
    open: bool


@dataclass(frozen=True)
class ErpStatementLine:
    """One movement: an invoice (positive amount) or a payment (negative amount)."""

    on: date
    reference: str
    description: str
    amount: Decimal


@dataclass(frozen=True)
class ErpStatement:
    """A monthly statement of account: closing_balance = opening_balance + the sum of the lines."""

    account_code: str
    period_start: date
    period_end: date
    currency: str
    opening_balance: Decimal
    closing_balance: Decimal
    lines: tuple[ErpStatementLine, ...] = ()


@dataclass(frozen=True)
class NewContact:
    first_name: str
    last_name: str
    email: str
    phone: str = ""


@dataclass(frozen=True)
class NewCustomer:
    """A web account pushed to the ERP. `group` and `payment_terms` are ERP codes (SAP: GroupCode, PayTermsGrpCode)."""

    name: str
    email: str
    phone: str = ""
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    region: str = ""
    postcode: str = ""
    country: str = ""
    currency: str = ""
    group: str = ""
    payment_terms: str = ""
    contacts: tuple[NewContact, ...] = field(default_factory=tuple)


class ErpGateway(ABC):
    """Everything accountdesk asks of an ERP. Every call ends within the adapter's timeout or raises ErpUnavailable."""

    @abstractmethod
    def find_contacts_by_email(self, email: str) -> list[ErpContact]:
        """Contacts with this e-mail (case-insensitive) on customer accounts, active or not, sorted by account code."""

    @abstractmethod
    def get_account(self, code: str) -> ErpAccount | None:
        """The customer account with this code, or None."""

    @abstractmethod
    def contact_exists(self, account_code: str, email: str) -> bool:
        """True when the account exists, is active, and has an active contact with this e-mail (case-insensitive)."""

    @abstractmethod
    def list_invoices(self, code: str, since: date | None = None) -> list[ErpInvoice]:
        """The account's invoices issued on or after `since` (all when None), oldest first."""

    @abstractmethod
    def list_statements(self, code: str) -> list[ErpStatement]:
        """The account's monthly statements, oldest first (empty for an unknown account)."""

    @abstractmethod
    def create_customer(self, customer: NewCustomer, idempotency_key: str) -> str:
        """Create the customer and return its ERP code; a repeat with the same key returns the same code."""

    @abstractmethod
    def health(self) -> bool:
        """True when the ERP answers; never raises."""

    def close(self) -> None:  # noqa: B027 (an optional hook: an adapter without connections keeps this no-op)
        """Release connections or sessions (no-op unless the adapter holds any)."""


def statement_lines_total(lines: Iterable[ErpStatementLine]) -> Decimal:
    return sum((line.amount for line in lines), Decimal("0"))


def monthly_statements(account_code: str, currency: str, balance: Decimal, movements: Iterable[ErpStatementLine],
                       today: date, months: int = 12) -> list[ErpStatement]:
    """Statements for each month of the last `months` (this one included) that has movements.

    Balances are anchored on the account's current balance: the opening balance of the window is the balance
    minus every movement in it, so the newest statement closes on the balance the ERP reports.
    """
    first = statement_period_start(today, months)
    window = sorted((m for m in movements if first <= m.on <= today), key=lambda m: (m.on, m.reference))
    running = balance - statement_lines_total(window)
    by_month: dict[date, list[ErpStatementLine]] = {}
    for line in window:
        by_month.setdefault(line.on.replace(day=1), []).append(line)
    statements = []
    for start, lines in sorted(by_month.items()):
        closing = running + statement_lines_total(lines)
        end = _add_months(start, 1) - timedelta(days=1)
        statements.append(ErpStatement(account_code, start, end, currency, running, closing, tuple(lines)))
        running = closing
    return statements


def statement_period_start(today: date, months: int = 12) -> date:
    """The first day of the oldest month a statement window of `months` (this month included) covers."""
    return _add_months(today.replace(day=1), 1 - months)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


class CachedGateway(ErpGateway):
    """Keeps read answers for `seconds`; create_customer and health always go to the ERP.

    Failures are not cached. A create clears the cache, so a customer just pushed is found at once.
    """

    def __init__(self, inner: ErpGateway, seconds: float = 60.0, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.seconds = seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _cached(self, key: Hashable, load: Callable[[], T]) -> T:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        with self._lock:
            self._entries[key] = (now + self.seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()

    def find_contacts_by_email(self, email: str) -> list[ErpContact]:
        email = email.strip().lower()
        return list(self._cached(("contacts", email), lambda: tuple(self.inner.find_contacts_by_email(email))))

    def get_account(self, code: str) -> ErpAccount | None:
        return self._cached(("account", code), lambda: self.inner.get_account(code))

    def contact_exists(self, account_code: str, email: str) -> bool:
        email = email.strip().lower()
        return self._cached(("exists", account_code, email), lambda: self.inner.contact_exists(account_code, email))

    def list_invoices(self, code: str, since: date | None = None) -> list[ErpInvoice]:
        return list(self._cached(("invoices", code, since), lambda: tuple(self.inner.list_invoices(code, since))))

    def list_statements(self, code: str) -> list[ErpStatement]:
        return list(self._cached(("statements", code), lambda: tuple(self.inner.list_statements(code))))

    def create_customer(self, customer: NewCustomer, idempotency_key: str) -> str:
        try:
            return self.inner.create_customer(customer, idempotency_key)
        finally:
            self.invalidate()

    def health(self) -> bool:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()


def gateway_from_settings(settings: Settings) -> ErpGateway:
    """The configured adapter (ACCOUNTDESK_ERP_ADAPTER), cached for ACCOUNTDESK_ERP_CACHE_SECONDS when above 0.

    Build it once per process and share it: the SAP adapter keeps its Service Layer session between calls.
    """
    gateway: ErpGateway
    if settings.erp_adapter == "sap":
        from accountdesk.erp.sap_adapter import SapGateway

        gateway = SapGateway.from_settings(settings)
    elif settings.erp_adapter == "file":
        from accountdesk.erp.file_adapter import FileGateway

        gateway = FileGateway(settings.erp_file_dir, timeout=settings.erp_timeout_seconds)
    else:
        raise ValueError(f"Unknown ERP adapter {settings.erp_adapter!r}: use 'file' or 'sap'.")
    if settings.erp_cache_seconds > 0:
        gateway = CachedGateway(gateway, settings.erp_cache_seconds)
    return gateway
