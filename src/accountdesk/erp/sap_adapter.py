"""The SAP Business One Service Layer adapter: OData v3-style JSON under `/b1s/v1/`, over HTTPS (or HTTP).

Session: `POST Login` with CompanyDB/UserName/Password; the B1SESSION (and, behind SAP's load balancer, ROUTEID)
cookies go with every later request. A 401 means the session expired: the adapter logs in again once and repeats
the request; a second 401, or a refused login, is ErpUnavailable (nothing a caller can fix by retrying the call).

Timeouts: every HTTP request (Login included) must connect, send and receive within `timeout` seconds
(ACCOUNTDESK_ERP_TIMEOUT_SECONDS, default 2 s); a timeout, a refused or dropped connection, a 5xx, 408 or 429 is
ErpUnavailable. Other 4xx answers are ErpError carrying SAP's error code and message text.

Paging: collection reads send `Prefer: odata.maxpagesize=<page_size>` and follow `odata.nextLink` (relative to
`/b1s/v1/`) until the last page.

Finding contacts by e-mail: the e-mails live on the partners' ContactEmployees, which a v1 `$filter` on
BusinessPartners cannot reach, and the partner's own EmailAddress is a different address (and its case-sensitivity
depends on the database collation: HANA compares case-sensitively). So the adapter filters server-side on what the
partner carries (`CardType eq 'cCustomer'`), selects only CardCode and ContactEmployees, pages through all customer
partners, and matches E_Mail client-side case-insensitively. That is one scan per look-up; `CachedGateway` keeps
answers briefly. Where a merchant allows saved SQL queries, a `SQLQueries('…')/List` on OCPR would be cheaper.

Idempotent create: the adapter writes the idempotency key into a user-defined field on the partner (default
`U_WebKey`; the merchant adds an alphanumeric UDF "WebKey" of 100 characters to OCRD, business partners). Before
creating, it looks the key up (`U_WebKey eq '<key>'`) and returns the existing CardCode when found, so a push that
timed out after SAP created the partner is not made twice. The CardCode comes from SAP's numbering series (the
adapter sends `Series` when configured, else the default series applies), never from accountdesk.
"""

from __future__ import annotations

import ssl
import threading
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

import httpx

from accountdesk.erp.gateway import (
    ErpAccount,
    ErpContact,
    ErpError,
    ErpGateway,
    ErpInvoice,
    ErpStatement,
    ErpStatementLine,
    ErpUnavailable,
    NewCustomer,
    monthly_statements,
    statement_period_start,
)

if TYPE_CHECKING:
    from accountdesk.core.settings import Settings

API = "/b1s/v1/"
YES = "tYES"
ACCOUNT_FIELDS = ("CardCode,CardName,CardType,GroupCode,Address,ZipCode,City,Country,Phone1,EmailAddress,CreditLimit,"
                  "CurrentAccountBalance,PayTermsGrpCode,PriceListNum,Currency,Valid,Frozen")
INVOICE_FIELDS = "DocNum,CardCode,DocDate,DocTotal,DocCurrency,DocumentStatus"
PAYMENT_FIELDS = "DocNum,CardCode,DocDate,CashSum,TransferSum,Cancelled"
UNAVAILABLE_STATUS = {408, 429}
STATEMENT_MONTHS = 12
QUERY_SAFE = "'(),:/"

Entity = dict[str, Any]


def literal(value: str) -> str:
    """An OData string literal: quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def query_url(resource: str, params: dict[str, str]) -> str:
    """resource?$name=value&… with spaces as %20: OData servers need not read "+" as a space."""
    return resource + "?" + "&".join(f"{name}={quote(value, safe=QUERY_SAFE)}" for name, value in params.items())


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


def _day(value: Any) -> date:
    return date.fromisoformat(str(value)[:10])


def _sap_message(response: httpx.Response) -> tuple[str | int | None, str]:
    """SAP's error code and text from {"error": {"code": .., "message": {"lang": .., "value": ..}}}."""
    try:
        error = response.json()["error"]
        message = error.get("message")
        text = message.get("value") if isinstance(message, dict) else message
        return error.get("code"), str(text or f"HTTP {response.status_code}")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, f"HTTP {response.status_code}: {response.text[:200]}".strip()


class SapGateway(ErpGateway):
    """ErpGateway over the SAP Business One Service Layer. Thread-safe; share one per process."""

    def __init__(self, url: str, company_db: str, username: str, password: str, *, timeout: float = 2.0,
                 verify: bool = True, ca_bundle: str | None = None, page_size: int = 100,
                 key_field: str = "U_WebKey", series: int | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = url.rstrip("/").removesuffix(API.rstrip("/")) + API
        self.company_db, self.username, self._password = company_db, username, password
        self.page_size = page_size
        self.key_field = key_field
        self.series = series
        self._cookies: dict[str, str] | None = None
        self._login_lock = threading.Lock()
        self._client = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(timeout),
                                    verify=_tls(verify, ca_bundle), transport=transport,
                                    headers={"Accept": "application/json"})

    @classmethod
    def from_settings(cls, settings: Settings) -> SapGateway:
        if not (settings.erp_sap_url and settings.erp_sap_company_db and settings.erp_sap_username):
            raise ValueError("ACCOUNTDESK_ERP_SAP_URL, _COMPANY_DB and _USERNAME must be set for the SAP adapter.")
        password = settings.erp_sap_password.get_secret_value() if settings.erp_sap_password else ""
        return cls(settings.erp_sap_url, settings.erp_sap_company_db, settings.erp_sap_username, password,
                   timeout=settings.erp_timeout_seconds, verify=settings.erp_sap_verify_tls,
                   ca_bundle=str(settings.erp_sap_ca_bundle) if settings.erp_sap_ca_bundle else None,
                   page_size=settings.erp_sap_page_size, series=settings.erp_sap_series)

    # -- transport -----------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, cookies: dict[str, str] | None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        try:
            return self._client.request(method, url, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise ErpUnavailable(f"SAP Business One did not answer in time ({type(exc).__name__}).") from exc
        except httpx.RequestError as exc:
            raise ErpUnavailable(f"SAP Business One cannot be reached: {exc or type(exc).__name__}.") from exc

    def _login(self) -> dict[str, str]:
        response = self._send("POST", "Login", None, json={
            "CompanyDB": self.company_db, "UserName": self.username, "Password": self._password})
        if response.status_code != 200:
            code, message = _sap_message(response)
            raise ErpUnavailable(f"SAP Business One refused the login: {message} (code {code}).")
        cookies = {name: value for name, value in response.cookies.items() if name in ("B1SESSION", "ROUTEID")}
        if "B1SESSION" not in cookies:
            cookies["B1SESSION"] = str(self._json(response).get("SessionId", ""))
        self._client.cookies.clear()  # the session travels in our own Cookie header
        return cookies

    def _session(self) -> dict[str, str]:
        with self._login_lock:
            if self._cookies is None:
                self._cookies = self._login()
            return self._cookies

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One Service Layer call: logs in when needed, once more on a 401; raises on any error status."""
        for _ in range(2):
            cookies = self._session()
            response = self._send(method, url, cookies, **kwargs)
            if response.status_code != 401:
                break
            with self._login_lock:
                if self._cookies is cookies:  # another thread may already have logged in again
                    self._cookies = None
        else:
            code, message = _sap_message(response)
            raise ErpUnavailable(f"SAP Business One keeps refusing the session: {message} (code {code}).")
        if response.is_success:
            return response
        code, message = _sap_message(response)
        if response.status_code >= 500 or response.status_code in UNAVAILABLE_STATUS:
            raise ErpUnavailable(f"SAP Business One failed: {message} (HTTP {response.status_code}, code {code}).")
        raise ErpError(message, code=code, status=response.status_code)

    def _json(self, response: httpx.Response) -> Entity:
        try:
            return response.json(parse_float=Decimal)
        except ValueError as exc:
            raise ErpUnavailable("SAP Business One answered something that is not JSON.") from exc

    def _collection(self, resource: str, params: dict[str, str]) -> list[Entity]:
        """Every row of a query, following odata.nextLink page by page."""
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        body = self._json(self._request("GET", query_url(resource, params), headers=headers))
        rows = list(body.get("value", []))
        while link := body.get("odata.nextLink") or body.get("@odata.nextLink"):
            body = self._json(self._request("GET", urljoin(self.base_url, link), headers=headers))
            rows.extend(body.get("value", []))
        return rows

    def _partner(self, code: str, select: str) -> Entity | None:
        try:
            response = self._request("GET", query_url(f"BusinessPartners({quote(literal(code), safe=chr(39))})",
                                                      {"$select": select}))
        except ErpError as exc:
            if exc.status == 404:
                return None
            raise
        partner = self._json(response)
        return partner if partner.get("CardType") == "cCustomer" else None

    # -- the gateway ---------------------------------------------------------------------------------------

    def find_contacts_by_email(self, email: str) -> list[ErpContact]:
        wanted = email.strip().lower()
        partners = self._collection("BusinessPartners", {"$filter": "CardType eq 'cCustomer'",
                                                         "$select": "CardCode,ContactEmployees"})
        found = [_contact(p["CardCode"], c) for p in partners for c in p.get("ContactEmployees") or []
                 if _text(c.get("E_Mail")).strip().lower() == wanted]
        return sorted(found, key=lambda c: (c.account_code, c.code))

    def get_account(self, code: str) -> ErpAccount | None:
        partner = self._partner(code, ACCOUNT_FIELDS)
        return _account(partner) if partner else None

    def contact_exists(self, account_code: str, email: str) -> bool:
        partner = self._partner(account_code, "CardCode,CardType,Valid,Frozen,ContactEmployees")
        if partner is None or not _active(partner):
            return False
        wanted = email.strip().lower()
        return any(_text(c.get("E_Mail")).strip().lower() == wanted and c.get("Active") == YES
                   for c in partner.get("ContactEmployees") or [])

    def list_invoices(self, code: str, since: date | None = None) -> list[ErpInvoice]:
        where = f"CardCode eq {literal(code)}" + (f" and DocDate ge '{since.isoformat()}'" if since else "")
        rows = self._collection("Invoices", {"$filter": where, "$select": INVOICE_FIELDS,
                                             "$orderby": "DocDate,DocNum"})
        return [ErpInvoice(number=_text(r["DocNum"]), account_code=r["CardCode"], issued_on=_day(r["DocDate"]),
                           total=_amount(r.get("DocTotal")), currency=_text(r.get("DocCurrency")),
                           open=r.get("DocumentStatus") == "bost_Open") for r in rows]

    def list_statements(self, code: str, today: date | None = None) -> list[ErpStatement]:
        """Monthly statements of the last 12 months computed from Invoices and IncomingPayments, anchored on
        CurrentAccountBalance (see `gateway.monthly_statements`). Credit notes are not read (yet)."""
        account = self.get_account(code)
        if account is None:
            return []
        today = today or date.today()
        first = statement_period_start(today, STATEMENT_MONTHS)
        movements = [ErpStatementLine(i.issued_on, i.number, "Invoice", i.total)
                     for i in self.list_invoices(code, first)]
        payments = self._collection("IncomingPayments", {
            "$filter": f"CardCode eq {literal(code)} and DocDate ge '{first.isoformat()}'", "$select": PAYMENT_FIELDS})
        movements += [ErpStatementLine(_day(p["DocDate"]), _text(p["DocNum"]), "Payment",
                                       -(_amount(p.get("CashSum")) + _amount(p.get("TransferSum"))))
                      for p in payments if p.get("Cancelled") != YES]
        return monthly_statements(code, account.currency, account.balance, movements, today, STATEMENT_MONTHS)

    def create_customer(self, customer: NewCustomer, idempotency_key: str) -> str:
        existing = self._collection("BusinessPartners", {
            "$filter": f"{self.key_field} eq {literal(idempotency_key)}", "$select": "CardCode"})
        if existing:
            return existing[0]["CardCode"]
        response = self._request("POST", "BusinessPartners", json=self._new_partner(customer, idempotency_key))
        return self._json(response)["CardCode"]

    def _new_partner(self, customer: NewCustomer, idempotency_key: str) -> Entity:
        region = customer.region.split("-", 1)[-1]
        partner: Entity = {
            "CardName": customer.name, "CardType": "cCustomer", "EmailAddress": customer.email.strip().lower(),
            "Phone1": customer.phone, "Address": customer.address_line1, "ZipCode": customer.postcode,
            "City": customer.city, "Country": customer.country, self.key_field: idempotency_key,
            "BPAddresses": [{"AddressName": "Bill to", "AddressType": "bo_BillTo", "Street": customer.address_line1,
                             "Block": customer.address_line2, "ZipCode": customer.postcode, "City": customer.city,
                             "State": region, "Country": customer.country}],
            "ContactEmployees": [{"Name": f"{c.first_name} {c.last_name}".strip() or c.email,
                                  "FirstName": c.first_name, "LastName": c.last_name,
                                  "E_Mail": c.email.strip().lower(), "Phone1": c.phone} for c in customer.contacts],
        }
        if customer.currency:
            partner["Currency"] = customer.currency
        for field, value in (("GroupCode", customer.group), ("PayTermsGrpCode", customer.payment_terms)):
            if value:
                partner[field] = _code(field, value)
        if self.series is not None:
            partner["Series"] = self.series
        return partner

    def health(self) -> bool:
        try:
            self._request("GET", query_url("BusinessPartners", {"$select": "CardCode", "$top": "1"}))
        except (ErpUnavailable, ErpError):
            return False
        return True

    def close(self) -> None:
        """Log out (best effort) and close the connections."""
        cookies, self._cookies = self._cookies, None
        if cookies:
            try:
                self._send("POST", "Logout", cookies)
            except ErpUnavailable:
                pass
        self._client.close()


def _tls(verify: bool, ca_bundle: str | None) -> bool | ssl.SSLContext:
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    return verify


def _code(field: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ErpError(f"{field} must be a numeric SAP code, not {value!r}.", code="invalid_code") from None


def _active(partner: Entity) -> bool:
    return partner.get("Valid", YES) == YES and partner.get("Frozen") != YES


def _contact(card_code: str, c: Entity) -> ErpContact:
    return ErpContact(code=_text(c.get("InternalCode")), account_code=card_code, first_name=_text(c.get("FirstName")),
                      last_name=_text(c.get("LastName")), email=_text(c.get("E_Mail")), phone=_text(c.get("Phone1")),
                      active=c.get("Active", YES) == YES)


def _account(p: Entity) -> ErpAccount:
    return ErpAccount(code=p["CardCode"], name=_text(p.get("CardName")), group=_text(p.get("GroupCode")),
                      billing_postcode=_text(p.get("ZipCode")), city=_text(p.get("City")),
                      country=_text(p.get("Country")), phone=_text(p.get("Phone1")),
                      email=_text(p.get("EmailAddress")).lower(), payment_terms=_text(p.get("PayTermsGrpCode")),
                      price_list=_text(p.get("PriceListNum")), currency=_text(p.get("Currency")),
                      credit_limit=_amount(p.get("CreditLimit")), balance=_amount(p.get("CurrentAccountBalance")),
                      active=_active(p), street=_text(p.get("Address")).strip())
