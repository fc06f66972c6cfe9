"""A loopback SAP Business One Service Layer (`/b1s/v1/`, OData v3-style JSON) for tests, benchmarks and demos.

It speaks exactly the subset `sap_adapter.SapGateway` uses, with SAP's shapes: `POST Login` (B1SESSION and ROUTEID
cookies, idle session timeout), `POST Logout`, `BusinessPartners` (collection with `$filter`, `$select`,
`$orderby`, `$top`, `$skip` and `Prefer: odata.maxpagesize=N` paging through `odata.nextLink`; one entity as
`BusinessPartners('C20000')`; `POST` creates, 201), `Invoices` and `IncomingPayments` (collections), and errors as
`{"error": {"code": .., "message": {"lang": "en-us", "value": ..}}}`. Error codes and texts are the loopback's own,
modelled on SAP's; do not rely on them being SAP's exact words.

`$filter` understands eq, ne, gt, ge, lt, le, and, or, not, parentheses, contains(F,'x'), startswith(F,'x'),
endswith(F,'x') and substringof('x',F) on top-level fields; an unknown field is a 400, as in SAP.

Knobs for tests: `latency` (seconds added to every answer, after the work is done, so a client that gives up on
a slow create may still have created), `slow[(method, resource)]` (extra seconds for one kind of request),
`hold(method, resource)` (its answers wait, after the work, until the returned event is set: no clock involved),
`down` (None, "503" or "drop": close the connection without an answer), `fail_next(...)` (the next matching
request gets an SAP error body), `expire_sessions()`, `session_timeout` (seconds of idleness before 401),
`requests` (what was asked, in order) and `count(resource)`. `settings_fields()` / `environ()` point the app here.

Run one by hand from the repository root: `python -m tests.fakes.sap_service_layer --port 50000 --latency 0.05`
(demo data).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import socketserver
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from accountdesk.erp.demo_data import ErpDataset, demo_dataset

PREFIX = "/b1s/v1/"
HOLD_LIMIT = 30.0  # seconds a held answer waits at most for its event
YES, NO = "tYES", "tNO"
PARTNER_FIELDS = {"CardCode", "CardName", "CardType", "GroupCode", "Address", "ZipCode", "City", "County", "Country",
                  "Phone1", "Phone2", "Cellular", "EmailAddress", "CreditLimit", "CurrentAccountBalance",
                  "PayTermsGrpCode", "PriceListNum", "Currency", "Valid", "Frozen", "Notes", "FederalTaxID", "Series",
                  "BPAddresses", "ContactEmployees"}
INVOICE_FIELDS = {"DocEntry", "DocNum", "CardCode", "CardName", "DocDate", "DocDueDate", "DocTotal", "DocCurrency",
                  "DocumentStatus", "Cancelled"}
PAYMENT_FIELDS = {"DocEntry", "DocNum", "CardCode", "CardName", "DocDate", "DocCurrency", "CashSum", "TransferSum",
                  "Cancelled"}
ENTITY = re.compile(r"^BusinessPartners\('((?:[^']|'')*)'\)$")


class ODataError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def _invalid_property(name: str, entity: str) -> ODataError:
    return ODataError(400, -1000, f"Property '{name}' of '{entity}' is invalid")


# -- $filter ---------------------------------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_/]*)"
                   r"|(?P<punct>[(),]))")
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b, "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b}
FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda field, text: text in field, "startswith": lambda field, text: field.startswith(text),
    "endswith": lambda field, text: field.endswith(text), "substringof": lambda text, field: text in field}
Row = dict[str, Any]
Predicate = Callable[[Row], bool]


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            if text[pos:].strip():
                raise ODataError(400, -1000, f"Syntax error in $filter at position {pos}")
            break
        pos = match.end()
        if match["str"] is not None:
            tokens.append(("lit", match["str"][1:-1].replace("''", "'")))
        elif match["num"] is not None:
            tokens.append(("lit", float(match["num"]) if "." in match["num"] else int(match["num"])))
        elif match["name"] is not None:
            tokens.append(("name", match["name"]))
        else:
            tokens.append((match["punct"], match["punct"]))
    return tokens


class _FilterParser:
    """Recursive descent over the tokens: or > and > not > comparison / function call / parentheses."""

    def __init__(self, text: str, fields: set[str], entity: str) -> None:
        self.tokens, self.pos, self.fields, self.entity = _tokens(text), 0, fields, entity

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise ODataError(400, -1000, "Syntax error in $filter: unexpected text at the end")
        return predicate

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, kind: str | None = None) -> tuple[str, Any]:
        token = self._peek()
        if token is None or (kind and token[0] != kind):
            raise ODataError(400, -1000, "Syntax error in $filter")
        self.pos += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "name" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._not()]
        while self._keyword("and"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def _not(self) -> Predicate:
        if self._keyword("not"):
            inner = self._not()
            return lambda row: not inner(row)
        return self._primary()

    def _primary(self) -> Predicate:
        token = self._peek()
        if token and token[0] == "(":
            self._take("(")
            inner = self._or()
            self._take(")")
            return inner
        if token and token[0] == "name" and token[1] in FUNCTIONS:
            return self._function(self._take()[1])
        left = self._operand()
        operator = self._take("name")[1].lower()
        if operator not in COMPARE:
            raise ODataError(400, -1000, f"Unknown operator '{operator}' in $filter")
        right = self._operand()
        return lambda row: COMPARE[operator](left(row), right(row))

    def _function(self, name: str) -> Predicate:
        self._take("(")
        first = self._operand()
        self._take(",")
        second = self._operand()
        self._take(")")
        test = FUNCTIONS[name]
        return lambda row: test(str(first(row) or ""), str(second(row) or ""))

    def _operand(self) -> Callable[[Row], Any]:
        kind, value = self._take()
        if kind == "lit":
            return lambda row: value
        if kind == "name" and value == "null":
            return lambda row: None
        if kind == "name":
            if value not in self.fields:
                raise _invalid_property(value, self.entity)
            return lambda row: row.get(value)
        raise ODataError(400, -1000, "Syntax error in $filter")


# -- the server ------------------------------------------------------------------------------------------------

@dataclass
class _Failure:
    status: int
    code: int
    message: str
    resource: str | None


class SapLoopback:
    """The loopback Service Layer: `with SapLoopback() as sap: SapGateway(sap.url, ...)`."""

    def __init__(self, data: ErpDataset | None = None, *, company_db: str = "SBODEMOGB", username: str = "manager",
                 password: str = "loopback", session_timeout: float = 1800.0, page_size: int = 20,
                 user_fields: tuple[str, ...] = ("U_WebKey",), latency: float = 0.0,
                 ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.company_db, self.username, self.password = company_db, username, password
        self.session_timeout, self.page_size, self.latency = session_timeout, page_size, latency
        self.user_fields = set(user_fields)
        self.down: str | None = None
        self.slow: dict[tuple[str, str], float] = {}  # extra seconds for one (method, resource), e.g. a slow create
        self.held: dict[tuple[str, str], threading.Event] = {}  # see hold()
        self.requests: list[tuple[str, str]] = []
        self.partners: dict[str, Row] = {}
        self.invoices: list[Row] = []
        self.payments: list[Row] = []
        self.lock = threading.RLock()
        self._sessions: dict[str, float] = {}
        self._failures: list[_Failure] = []
        self._ssl_context = ssl_context
        self._server = _Server((host, port), _Handler)
        self._server.loopback = self
        self._thread: threading.Thread | None = None
        self.seed(data if data is not None else demo_dataset())

    # -- data --------------------------------------------------------------------------------------------------

    def seed(self, data: ErpDataset) -> None:
        """Replace the data with a data set (ERP records turned into Service Layer entities)."""
        with self.lock:
            self.partners = {a.code: self._partner(a) for a in data.accounts}
            for c in data.contacts:
                self.partners[c.account_code]["ContactEmployees"].append({
                    "CardCode": c.account_code, "InternalCode": int(c.code), "Name": f"{c.first_name} {c.last_name}",
                    "FirstName": c.first_name, "LastName": c.last_name, "E_Mail": c.email, "Phone1": c.phone,
                    "Active": YES if c.active else NO})
            names = {a.code: a.name for a in data.accounts}
            self.invoices = [{"DocEntry": n, "DocNum": int(i.number), "CardCode": i.account_code,
                              "CardName": names[i.account_code], "DocDate": i.issued_on.isoformat(),
                              "DocTotal": float(i.total), "DocCurrency": i.currency,
                              "DocumentStatus": "bost_Open" if i.open else "bost_Close", "Cancelled": NO}
                             for n, i in enumerate(data.invoices, start=1)]
            self.payments = [{"DocEntry": n, "DocNum": int(p.number), "CardCode": p.account_code,
                              "CardName": names[p.account_code], "DocDate": p.paid_on.isoformat(),
                              "DocCurrency": p.currency, "CashSum": 0.0, "TransferSum": float(p.amount),
                              "Cancelled": NO} for n, p in enumerate(data.payments, start=1)]

    def _partner(self, a: Any) -> Row:
        row = {"CardCode": a.code, "CardName": a.name, "CardType": "cCustomer", "GroupCode": int(a.group),
               "Address": a.street, "ZipCode": a.billing_postcode, "City": a.city, "County": "", "Country": a.country,
               "Phone1": a.phone, "Phone2": "", "Cellular": "", "EmailAddress": a.email,
               "CreditLimit": float(a.credit_limit), "CurrentAccountBalance": float(a.balance),
               "PayTermsGrpCode": int(a.payment_terms), "PriceListNum": int(a.price_list), "Currency": a.currency,
               "Valid": YES if a.active else NO, "Frozen": NO if a.active else YES, "Notes": None,
               "FederalTaxID": None, "Series": 1, "BPAddresses": [], "ContactEmployees": []}
        row.update({name: None for name in self.user_fields})
        return row

    def add_partner(self, partner: Row) -> None:
        """Add a raw business partner (e.g. a supplier) with Service Layer field names."""
        with self.lock:
            full = self._partner_defaults()
            full.update(partner)
            self.partners[partner["CardCode"]] = full

    def _partner_defaults(self) -> Row:
        row: Row = {name: None for name in PARTNER_FIELDS | self.user_fields}
        row.update({"CardType": "cCustomer", "Valid": YES, "Frozen": NO, "CreditLimit": 0.0,
                    "CurrentAccountBalance": 0.0, "BPAddresses": [], "ContactEmployees": []})
        return row

    # -- knobs -------------------------------------------------------------------------------------------------

    def delay(self, method: str, target: str) -> float:
        resource = unquote(urlsplit(target).path).removeprefix(PREFIX)
        return self.latency + self.slow.get((method, resource), 0.0)

    def hold(self, method: str, resource: str) -> threading.Event:
        """Answers to (method, resource), e.g. ("GET", "BusinessPartners('C20000')"), wait after the work is done
        until the returned event is set (HOLD_LIMIT seconds at most, so a forgotten event cannot hang a run)."""
        gate = self.held[(method, resource)] = threading.Event()
        return gate

    def _wait_if_held(self, method: str, target: str) -> None:
        gate = self.held.get((method, unquote(urlsplit(target).path).removeprefix(PREFIX)))
        if gate is not None:
            gate.wait(HOLD_LIMIT)

    def expire_sessions(self) -> None:
        with self.lock:
            self._sessions.clear()

    def fail_next(self, status: int, code: int, message: str, resource: str | None = None) -> None:
        """The next request (for `resource`, e.g. "BusinessPartners", when given) answers this SAP error."""
        with self.lock:
            self._failures.append(_Failure(status, code, message, resource))

    def count(self, resource: str | None = None, method: str | None = None) -> int:
        """Requests received, optionally only those for a resource ("Login", "BusinessPartners", ...)."""
        with self.lock:
            return sum(1 for m, path in self.requests
                       if (resource is None or _resource(path).startswith(resource)) and (method in (None, m)))

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self._ssl_context else 'http'}://{host}:{port}"

    def settings_fields(self) -> dict[str, Any]:
        """Settings that point the app's SAP adapter here: `Settings(**loopback.settings_fields(), ...)`."""
        return {"erp_adapter": "sap", "erp_sap_url": self.url, "erp_sap_company_db": self.company_db,
                "erp_sap_username": self.username, "erp_sap_password": self.password}

    def environ(self) -> dict[str, str]:
        """The same as ACCOUNTDESK_* environment variables (for an app in a subprocess)."""
        return {f"ACCOUNTDESK_{name.upper()}": str(value) for name, value in self.settings_fields().items()}

    def start(self) -> SapLoopback:
        if self._ssl_context:
            self._server.socket = self._ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sap-loopback", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (a client then sees the server down)."""
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> SapLoopback:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests ----------------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        """Answer one request: (status, extra headers, JSON body or None)."""
        split = urlsplit(target)
        if not split.path.startswith(PREFIX):
            raise ODataError(404, -1, f"Resource not found for the segment '{split.path}'")
        resource = unquote(split.path[len(PREFIX):])
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        with self.lock:
            self.requests.append((method, resource + (f"?{split.query}" if split.query else "")))
            failure = next((f for f in self._failures if f.resource in (None, resource.split("(")[0])), None)
            if failure and resource != "Login":
                self._failures.remove(failure)
                raise ODataError(failure.status, failure.code, failure.message)
        if (method, resource) == ("POST", "Login"):
            return self._login(body)
        session = self._session(headers.get("cookie", ""))
        if (method, resource) == ("POST", "Logout"):
            with self.lock:
                self._sessions.pop(session, None)
            return 204, {}, None
        if (method, resource) == ("GET", "BusinessPartners"):
            return self._list("BusinessPartners", self._rows(self.partners.values()), PARTNER_FIELDS, query, headers)
        if (method, resource) == ("POST", "BusinessPartners"):
            return self._create_partner(body)
        if method == "GET" and (match := ENTITY.match(resource)):
            return self._one(match.group(1).replace("''", "'"), query)
        if (method, resource) == ("GET", "Invoices"):
            return self._list("Invoices", self._rows(self.invoices), INVOICE_FIELDS, query, headers)
        if (method, resource) == ("GET", "IncomingPayments"):
            return self._list("IncomingPayments", self._rows(self.payments), PAYMENT_FIELDS, query, headers)
        raise ODataError(404, -1, f"Resource not found for the segment '{resource}'")

    def _rows(self, rows: Any) -> list[Row]:
        with self.lock:
            return json.loads(json.dumps(list(rows)))  # a deep copy: answers never share state with the data

    def _login(self, body: bytes) -> tuple[int, dict[str, str], Any]:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise ODataError(400, -1000, "Invalid JSON in the request body") from None
        if payload.get("CompanyDB") != self.company_db:
            raise ODataError(401, -304, f"Fail to get DB Credentials from SLD for company {payload.get('CompanyDB')}")
        if (payload.get("UserName"), payload.get("Password")) != (self.username, self.password):
            raise ODataError(401, 100000027, "Login failed")
        session = str(uuid.uuid4())
        with self.lock:
            self._sessions[session] = time.monotonic()
        cookies = [f"B1SESSION={session}; path={PREFIX.rstrip('/')}; HttpOnly", "ROUTEID=.node1; path=/b1s"]
        return 200, {"set-cookie": cookies}, {  # type: ignore[dict-item]
            "odata.metadata": f"{self.url}{PREFIX}$metadata#B1Sessions/@Element", "SessionId": session,
            "Version": "1000190", "SessionTimeout": max(1, round(self.session_timeout / 60))}

    def _session(self, cookie_header: str) -> str:
        cookies = dict(part.strip().split("=", 1) for part in cookie_header.split(";") if "=" in part)
        session = cookies.get("B1SESSION", "")
        now = time.monotonic()
        with self.lock:
            last = self._sessions.get(session)
            if last is None or now - last > self.session_timeout:
                self._sessions.pop(session, None)
                raise ODataError(401, 301, "Invalid session or session already timeout.")
            self._sessions[session] = now
        return session

    def _list(self, entity: str, rows: list[Row], fields: set[str], query: dict[str, str],
              headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        fields = fields | self.user_fields if entity == "BusinessPartners" else fields
        if query.get("$filter"):
            predicate = _FilterParser(query["$filter"], fields, entity.rstrip("s")).parse()
            try:
                rows = [row for row in rows if predicate(row)]
            except TypeError:
                raise ODataError(400, -1000, "Incompatible operand types in $filter") from None
        rows = _order(rows, query.get("$orderby", ""), fields, entity)
        skip, top = _int(query, "$skip", 0), _int(query, "$top", None)
        rows = rows[skip:] if top is None else rows[skip:skip + top]
        page_size = self.page_size
        extra: dict[str, str] = {}
        if match := re.search(r"odata\.maxpagesize=(\d+)", headers.get("prefer", "")):
            page_size = max(1, int(match.group(1)))
            extra["preference-applied"] = f"odata.maxpagesize={page_size}"
        answer: Row = {"odata.metadata": f"{self.url}{PREFIX}$metadata#{entity}",
                       "value": [_select(row, query.get("$select"), fields, entity) for row in rows[:page_size]]}
        if len(rows) > page_size:
            answer["odata.nextLink"] = _next_link(entity, query, skip + page_size,
                                                  None if top is None else top - page_size)
        return 200, extra, answer

    def _one(self, code: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            row = self.partners.get(code)
            row = json.loads(json.dumps(row)) if row else None
        if row is None:
            raise ODataError(404, -2028, "No matching records found (ODBC -2028)")
        answer = {"odata.metadata": f"{self.url}{PREFIX}$metadata#BusinessPartners/@Element"}
        answer.update(_select(row, query.get("$select"), PARTNER_FIELDS | self.user_fields, "BusinessPartner"))
        return 200, {}, answer

    def _create_partner(self, body: bytes) -> tuple[int, dict[str, str], Any]:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise ODataError(400, -1000, "Invalid JSON in the request body") from None
        for name in payload:
            if name not in PARTNER_FIELDS | self.user_fields:
                raise _invalid_property(name, "BusinessPartner")
        if not str(payload.get("CardName") or "").strip():
            raise ODataError(400, -5002, "Enter a business partner name")
        with self.lock:
            code = payload.get("CardCode") or self._next_code()
            if code in self.partners:
                raise ODataError(400, -2035, "This entry already exists in the following tables (ODBC -2035)")
            row = self._partner_defaults()
            row.update(payload)
            row["CardCode"] = code
            internal = max((c["InternalCode"] for p in self.partners.values() for c in p["ContactEmployees"]),
                           default=0)
            for offset, contact in enumerate(row["ContactEmployees"], start=1):
                contact.update({"CardCode": code, "InternalCode": internal + offset,
                                "Active": contact.get("Active") or YES})
            self.partners[code] = row
            answer = json.loads(json.dumps(row))
        answer["odata.metadata"] = f"{self.url}{PREFIX}$metadata#BusinessPartners/@Element"
        return 201, {"location": f"{self.url}{PREFIX}BusinessPartners('{quote(code)}')"}, answer

    def _next_code(self) -> str:
        numbers = [int(code[1:]) for code in self.partners if re.fullmatch(r"C\d+", code)]
        return f"C{max(numbers, default=20000) + 1}"


def _resource(path: str) -> str:
    return path.split("?")[0]


def _int(query: dict[str, str], name: str, default: int | None) -> int | None:
    if name not in query:
        return default
    try:
        return max(0, int(query[name]))
    except ValueError:
        raise ODataError(400, -1000, f"Invalid value for {name}") from None


def _order(rows: list[Row], orderby: str, fields: set[str], entity: str) -> list[Row]:
    keys = [part.split() for part in orderby.split(",") if part.strip()] or [[next(iter(sorted(
        {"CardCode", "DocEntry"} & fields)))]]
    for key in reversed(keys):
        name, direction = key[0], (key[1].lower() if len(key) > 1 else "asc")
        if name not in fields:
            raise _invalid_property(name, entity.rstrip("s"))
        rows = sorted(rows, key=lambda row: (row.get(name) is None, 0 if row.get(name) is None else row.get(name)),
                      reverse=direction == "desc")
    return rows


def _select(row: Row, select: str | None, fields: set[str], entity: str) -> Row:
    if not select:
        return row
    names = [name.strip() for name in select.split(",") if name.strip()]
    for name in names:
        if name not in fields:
            raise _invalid_property(name, entity.rstrip("s"))
    return {name: row.get(name) for name in names}


def _next_link(entity: str, query: dict[str, str], skip: int, top: int | None) -> str:
    params = {k: v for k, v in query.items() if k not in ("$skip", "$top")}
    params["$skip"] = str(skip)
    if top is not None:
        params["$top"] = str(top)
    return entity + "?" + "&".join(f"{k}={quote(v, safe=chr(39) + ',()')}" for k, v in params.items())


def _error_body(code: int, message: str) -> Row:
    return {"error": {"code": code, "message": {"lang": "en-us", "value": message}}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    loopback: SapLoopback

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skips HTTPServer's reverse DNS look-up of the host
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and body leave in one write (no 40 ms delayed-ACK stall)
    server: _Server
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _serve(self) -> None:
        loopback = self.server.loopback
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if loopback.down == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            if loopback.down == "503":
                raise ODataError(503, -1, "Service Unavailable")
            status, headers, answer = loopback.handle(self.command, self.path,
                                                      {k.lower(): v for k, v in self.headers.items()}, body)
        except ODataError as exc:
            status, headers, answer = exc.status, {}, _error_body(exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - a loopback bug must still answer in SAP's shape
            status, headers, answer = 500, {}, _error_body(-1, f"Internal error: {exc}")
        time.sleep(loopback.delay(self.command, self.path))  # after the work: a slow answer may still have acted
        loopback._wait_if_held(self.command, self.path)
        self._answer(status, headers, answer)

    def _answer(self, status: int, headers: dict[str, Any], answer: Any) -> None:
        payload = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        for name, value in headers.items():
            for item in value if isinstance(value, list) else [value]:
                self.send_header(name, item)
        if payload:
            self.send_header("Content-Type", "application/json;odata=minimalmetadata;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


def main() -> None:
    parser = argparse.ArgumentParser(description="A loopback SAP Business One Service Layer with demo data.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--company-db", default="SBODEMOGB")
    parser.add_argument("--username", default="manager")
    parser.add_argument("--password", default="loopback")
    args = parser.parse_args()
    server = SapLoopback(demo_dataset(date.today()), company_db=args.company_db, username=args.username,
                         password=args.password, latency=args.latency, host=args.host, port=args.port).start()
    print(f"SAP Business One Service Layer loopback on {server.url}{PREFIX} (Ctrl-C stops it)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
