"""Who may call what, generated from /openapi.json: every operation × every kind of caller (anonymous, the three
operator roles, the reseller_admin of tenant A and of tenant B, a buyer of A and a buyer of B) answers the status the
table below says, with valid ids and bodies so that the status is about access and not about input; no 2xx answer
to a tenant's caller holds another tenant's (or the operator's customers') names, e-mails or numbers, nor another
tenant's or the operator's staff e-mails (a history may name the operator's staff who acted on the caller's own
records). An operation without a row fails the test. Then every id a request can name (path, body, query) is swapped
for the other tenant's and for the operator's: it must answer exactly as an id that does not exist, show nothing and
change nothing.

To add routes: give each operation a row in TABLE (a rule from RULES, its success status, and how to make a valid
request: body, query, fresh ids); add a rule when a new kind of access appears (as staff administration did), and
`aliases` where a path's name means another id than elsewhere (a staff user's {user_id} is not a login's)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from accountdesk.app import create_app
from accountdesk.core.db import Database
from tests import factories as f
from tests.access_world import (
    CREDENTIALS,
    INSTANT_CODE,
    INSTANT_EMAIL,
    STAFF_INSTANT_CODE,
    STAFF_INSTANT_EMAIL,
    AccessWorld,
    Fresh,
    Tenant,
    build,
    snapshot,
)
from tests.dns_server import dns_server  # noqa: F401 — the fixture
from tests.erp_world import file_world
from tests.reseller_world import BUYER_LINES, LINES, NEW_CUSTOMER, NEW_USER

OK = "ok"  # the operation's own success status


def rule(row: str) -> dict[str, int | str]:
    statuses = row.split()
    assert len(statuses) == len(CREDENTIALS), row
    return {who: status if status == OK else int(status) for who, status in zip(CREDENTIALS, statuses, strict=True)}


# A's records are named in every path (B's callers reach across); "own" rules create or list in the caller's scope.
RULES = {  #                anon admin csr  appr res_a res_b buy_a buy_b
    "public":          rule("ok   ok    ok   ok   ok    ok    ok    ok"),
    "staff":           rule("401  ok    ok   ok   ok    ok    401   401"),  # any staff user, in its own scope
    "read":            rule("401  ok    ok   ok   ok    404   401   401"),  # READ roles, on A's records
    "manage":          rule("401  ok    ok   403  ok    404   401   401"),  # MANAGE_CUSTOMERS, on A's records
    "manage_own":      rule("401  ok    ok   403  ok    ok    401   401"),  # MANAGE_CUSTOMERS, in its own scope
    "operator":        rule("401  ok    ok   ok   403   403   401   401"),  # operator staff only
    "operator_manage": rule("401  ok    ok   403  403   403   401   401"),  # admin and csr (ERP instant, remapping)
    "approve":         rule("401  ok    403  ok   403   403   401   401"),  # the approvals queue
    "admin":           rule("401  ok    403  403  403   403   401   401"),
    "staff_admin":     rule("401  ok    403  403  ok    404   401   401"),  # STAFF_ADMINS, on A's staff users
    "staff_admin_own": rule("401  ok    403  403  ok    ok    401   401"),  # STAFF_ADMINS, in its own scope
    "buyer":           rule("401  401   401  401  401   401   ok    401"),  # signed in on A's storefront
    "backend":         rule("401  401   401  401  401   401   401   401"),  # a storefront backend credential only
}

Ids = dict[str, Any]
Body = Callable[[AccessWorld, Ids, int], Any]


@dataclass(frozen=True)
class Op:
    rule: str
    ok: int
    body: Body | None = None
    query: Callable[[AccessWorld, Ids], dict[str, Any]] | None = None
    fresh: Callable[[AccessWorld, Tenant], Ids] | None = None  # ids of objects a call uses up, made per call
    own_scope: bool = False  # the caller's own tenant's ids (else A's)
    ends_sessions: bool = False  # a success ends the caller's token: sign everyone in again afterwards
    tenant_bound: bool = True  # False: the route works on the operator's objects only (no foreign tenant ids)
    names_operator_staff: bool = False  # a history: it names the operator's staff who changed the caller's records
    aliases: tuple[tuple[str, str], ...] = ()  # (the request's name, the world's name) where a name means another id


def named(op: Op, ids: Ids) -> Ids:
    """The ids under the names the operation's request uses (a staff user's user_id is not a login's)."""
    return {**ids, **{name: ids[source] for name, source in op.aliases if source in ids}}


ADDRESS = {"line1": "1 Main Street", "city": "Springfield", "region": "US-IL", "postcode": "62701", "country": "US"}
PERSON = {"first_name": "Pat", "last_name": "Visitor", "phone": "+12175550100", "password": f.PASSWORD}
EXPORT = {"format": "csv"}  # readable text, so that the answer can be searched for foreign data


def body(value: Any) -> Body:
    return lambda w, ids, n: value


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {**PERSON, "email": f"visitor{n}@example.org", **extra}


def fresh_slug(w: AccessWorld, t: Tenant) -> Ids:
    return {"slug": w.erp_store.slug}


def fresh_twin(w: AccessWorld, t: Tenant) -> Ids:
    return {"contact_id": t.twin.id}


def staff_op(rule: str, ok: int, body: Body | None = None, **options: Any) -> Op:
    """A staff administration operation: its {user_id} is a staff user."""
    return Op(rule, ok, body, aliases=(("user_id", "staff_user_id"),), **options)


A = "/api/v1/accounts/{account_id}"
C = A + "/contacts/{contact_id}"
S = "/api/v1/storefronts/{slug}"
U = "/api/v1/staff/users"
R = "/api/v1/resellers/{reseller_id}"
RC = R + "/customers/{customer_id}"
W = "/api/v1/webhooks/endpoints"
WE = W + "/{endpoint_id}"
WD = "/api/v1/webhooks/deliveries/{delivery_id}"
TABLE: dict[tuple[str, str], Op] = {
    ("POST", "/api/v1/staff/tokens"): Op("public", 201, lambda w, ids, n: {"email": w.staff["csr"].email,
                                                                           "password": f.PASSWORD}),
    ("DELETE", "/api/v1/staff/tokens/current"): Op("staff", 204, ends_sessions=True),
    ("GET", U): staff_op("staff_admin_own", 200, own_scope=True),
    ("POST", U): staff_op("staff_admin", 201, lambda w, ids, n: {"email": f"invited{n}@example.org",
                                                                 "role": "reseller_admin",
                                                                 "reseller_account_id": ids["reseller_account_id"]}),
    ("GET", U + "/{user_id}"): staff_op("staff_admin", 200),
    ("PATCH", U + "/{user_id}"): staff_op("staff_admin", 200, lambda w, ids, n: {"name": f"Colleague {n}"}),
    ("POST", U + "/{user_id}/invitation"): staff_op("staff_admin", 202),
    ("DELETE", U + "/{user_id}/totp"): staff_op("admin", 204, fresh=Fresh.staff_with_second_factor),
    ("GET", "/api/v1/accounts"): Op("staff", 200, query=lambda w, ids: {"q": "customer"}),
    ("POST", "/api/v1/accounts"): Op("manage_own", 201, lambda w, ids, n: {
        "name": f"New Account {n}", "storefront_id": ids["storefront_id"],
        "parent_reseller_id": ids["parent_reseller_id"]}, own_scope=True),
    ("GET", A): Op("read", 200),
    ("PATCH", A): Op("manage", 200, lambda w, ids, n: {"rep_code": f"R{n}", "storefront_id": ids["storefront_id"]}),
    ("GET", A + "/events"): Op("read", 200, names_operator_staff=True),
    ("POST", A + "/addresses"): Op("manage", 201, body(ADDRESS)),
    ("PUT", A + "/addresses/{address_id}"): Op("manage", 200, body({**ADDRESS, "is_billing": True})),
    ("DELETE", A + "/addresses/{address_id}"): Op("manage", 204, fresh=Fresh.address),
    ("GET", A + "/invoices"): Op("read", 200),
    ("POST", A + "/invoices"): Op("manage", 201, lambda w, ids, n: {"number": f"INV-{n}",
                                                                   "issued_on": date.today().isoformat()}),
    ("GET", A + "/payment-methods"): Op("read", 200),
    ("POST", A + "/payment-methods"): Op("manage", 201, lambda w, ids, n: {
        "provider": "stripe", "provider_token_id": f"pm_{n}", "brand": "visa", "last4": "4242", "expiry_month": 12,
        "expiry_year": 2099, "contact_id": ids["contact_id"]}),
    ("DELETE", A + "/payment-methods/{method_id}"): Op("manage", 204, fresh=Fresh.payment_method),
    ("PUT", A + "/erp-code"): Op("operator_manage", 200, body({"erp_code": "C20000"})),
    ("GET", "/api/v1/custom-attributes"): Op("staff", 200),
    ("POST", "/api/v1/custom-attributes"): Op("admin", 201, lambda w, ids, n: {"key": f"note_{n}", "label": "Note",
                                                                              "type": "text"}),
    ("GET", A + "/contacts"): Op("read", 200),
    ("POST", A + "/contacts"): Op("manage", 201, lambda w, ids, n: {
        **person(n, last_name="Added"), "storefront_id": ids["storefront_id"]}),
    ("GET", C): Op("read", 200),
    ("PATCH", C): Op("manage", 200, body({"language": "fr"})),
    ("POST", C + "/activate"): Op("manage", 200),
    ("POST", C + "/deactivate"): Op("manage", 200),
    ("POST", C + "/password-reset"): Op("manage", 202),
    ("PUT", C + "/password"): Op("manage", 204, body({"password": "staff-chosen-battery-staple"})),
    ("GET", C + "/personal-data"): Op("manage", 200, names_operator_staff=True),
    ("POST", C + "/erasure"): Op("admin", 200, body({"reason": "On request."}), fresh=Fresh.erasable),
    ("PUT", C + "/legal-hold"): Op("admin", 200, body({"legal_hold": False})),
    ("PUT", A + "/legal-hold"): Op("admin", 200, body({"legal_hold": False})),
    ("GET", A + "/domains"): Op("read", 200),
    ("POST", A + "/domains"): Op("manage", 201, lambda w, ids, n: {"domain": f"claimed-by-{n}.example"}),
    ("POST", A + "/domains/{domain_id}/dns-check"): Op("manage", 200, fresh=Fresh.domain),
    ("POST", A + "/domains/{domain_id}/verify"): Op("operator_manage", 200, fresh=Fresh.domain),
    ("DELETE", A + "/domains/{domain_id}"): Op("manage", 204, fresh=Fresh.domain),
    ("PUT", A + "/domain-join"): Op("manage", 200, body({"mode": "approval"})),
    ("GET", "/api/v1/storefronts"): Op("operator", 200),
    ("POST", "/api/v1/storefronts"): Op("admin", 201, lambda w, ids, n: {"slug": f"new-shop-{n}",
                                                                        "name": f"New Shop {n}"}),
    ("GET", S + "/policy"): Op("operator", 200),
    ("PATCH", S + "/policy"): Op("admin", 200, body({"sign_in_text": "Welcome back."})),
    ("GET", S): Op("public", 200),
    ("POST", S + "/sessions"): Op("public", 201, lambda w, ids, n: {"email": w.a.buyer.email,
                                                                    "password": f.PASSWORD}),
    ("DELETE", S + "/sessions"): Op("buyer", 204, ends_sessions=True),
    ("POST", S + "/sessions/choice"): Op("public", 201, lambda w, ids, n: {
        "choice_token": ids["choice_token"], "contact_id": ids["contact_id"]}, fresh=Fresh.choice),
    ("GET", S + "/sessions/current"): Op("buyer", 200),
    ("DELETE", S + "/sessions/current"): Op("buyer", 204, ends_sessions=True),
    ("POST", S + "/password-resets"): Op("public", 202, lambda w, ids, n: {"email": w.a.buyer.email}),
    ("POST", S + "/password-resets/complete"): Op("public", 200, lambda w, ids, n: {
        "token": ids["token"], "password": "reset-chosen-battery-staple"}, fresh=Fresh.reset),
    ("POST", S + "/activations"): Op("public", 200, lambda w, ids, n: {
        "token": ids["token"], "password": "first-chosen-battery-staple"}, fresh=Fresh.activation),
    ("PUT", S + "/account/password"): Op("buyer", 204, body({"current_password": f.PASSWORD,
                                                             "new_password": f.PASSWORD})),
    ("GET", "/api/v1/countries/{code}/subdivisions"): Op("public", 200),
    ("POST", S + "/registrations"): Op("public", 202, lambda w, ids, n: {
        **person(n), "company_name": f"Registered {n} Ltd", "billing_address": ADDRESS}),
    ("POST", S + "/email-verifications"): Op("public", 200, lambda w, ids, n: {"token": ids["token"]},
                                             fresh=Fresh.verification),
    ("POST", S + "/account-claims"): Op("public", 200, lambda w, ids, n: {
        "account_number": w.a.customer.number, "postcode": "62701", "invoice_number": "INV-ALPHA"}),
    ("POST", S + "/account-claims/{token}/contacts"): Op("public", 202, lambda w, ids, n: person(n),
                                                         fresh=Fresh.claim),
    ("POST", S + "/instant-registrations"): Op("public", 202, body({"email": INSTANT_EMAIL}), fresh=fresh_slug,
                                               tenant_bound=False),
    ("GET", S + "/instant-registrations/{token}"): Op("public", 200, fresh=Fresh.instant_link, tenant_bound=False),
    ("POST", S + "/instant-registrations/{token}"): Op("public", 201, body({"account_code": INSTANT_CODE,
                                                                            "password": f.PASSWORD}),
                                                       fresh=Fresh.instant_link, tenant_bound=False),
    ("POST", S + "/reverifications"): Op("public", 200, lambda w, ids, n: {"token": ids["token"]},
                                         fresh=Fresh.reverification),
    ("GET", "/api/v1/registrations"): Op("approve", 200, query=lambda w, ids: {"storefront": ids["storefront"]}),
    ("GET", "/api/v1/registrations/{account_id}"): Op("approve", 200, fresh=Fresh.pending_registration),
    ("POST", "/api/v1/registrations/{account_id}/approve"): Op("approve", 200, fresh=Fresh.pending_registration),
    ("POST", "/api/v1/registrations/{account_id}/reject"): Op("approve", 200, body({"reason": "Not a customer."}),
                                                              fresh=Fresh.pending_registration),
    ("GET", "/api/v1/contact-requests"): Op("approve", 200, query=lambda w, ids: {"storefront": ids["storefront"]}),
    ("POST", "/api/v1/contact-requests/{contact_id}/approve"): Op("approve", 200, fresh=Fresh.pending_contact),
    ("POST", "/api/v1/contact-requests/{contact_id}/reject"): Op("approve", 200, body({"reason": "Unknown."}),
                                                                 fresh=Fresh.pending_contact),
    ("GET", R): Op("read", 200),
    ("PUT", R + "/markup"): Op("manage", 200, body({"markup_percent": "5"})),
    ("GET", R + "/customers"): Op("read", 200),
    ("POST", R + "/customers"): Op("manage", 201, lambda w, ids, n: {**NEW_CUSTOMER, "name": f"New Customer {n}"}),
    ("GET", R + "/customers/statistics"): Op("read", 200),
    ("GET", R + "/customers/export"): Op("read", 200, query=lambda w, ids: EXPORT),
    ("GET", RC): Op("read", 200),
    ("PATCH", RC): Op("manage", 200, body({"phone": "+12175550142"})),
    ("PUT", RC + "/order-approval"): Op("manage", 200, body({"required": True})),
    ("GET", RC + "/subscriptions"): Op("read", 200),
    ("POST", RC + "/subscriptions"): Op("manage", 201, body({"sku": "SEAT", "name": "Seat", "monthly_amount": "1",
                                                             "starts_on": "2026-01-01"})),
    ("PATCH", RC + "/subscriptions/{subscription_id}"): Op("manage", 200, body({"quantity": 2})),
    ("GET", RC + "/users"): Op("read", 200),
    ("POST", RC + "/users"): Op("manage", 201, lambda w, ids, n: {**NEW_USER, "email": f"user{n}@example.org"}),
    ("POST", RC + "/users/{user_id}/{action}"): Op("manage", 200),
    ("POST", S + "/orders"): Op("buyer", 201, body({"lines": BUYER_LINES})),
    ("GET", S + "/orders"): Op("buyer", 200),
    ("GET", RC + "/orders"): Op("read", 200),
    ("POST", RC + "/orders"): Op("manage", 201, body({"lines": LINES})),
    ("GET", RC + "/orders/export"): Op("read", 200, query=lambda w, ids: EXPORT),
    ("GET", R + "/orders/{order_id}"): Op("read", 200),
    ("POST", R + "/orders/{order_id}/accept"): Op("manage", 200, fresh=Fresh.pending_order),
    ("POST", R + "/orders/{order_id}/cancel"): Op("manage", 200, fresh=Fresh.pending_order),
    ("GET", S + "/switchable-accounts"): Op("buyer", 200),
    ("POST", S + "/switch"): Op("buyer", 201, lambda w, ids, n: {"contact_id": ids["contact_id"]}, fresh=fresh_twin,
                                ends_sessions=True),
    ("GET", S + "/account/erp-summary"): Op("buyer", 200),
    ("GET", "/api/v1/erp/pushes"): Op("operator", 200),
    ("POST", "/api/v1/erp/pushes/{message_id}/retry"): Op("operator", 200, fresh=Fresh.failed_push,
                                                          tenant_bound=False),
    ("GET", "/api/v1/erp/contacts"): Op("operator_manage", 200, query=lambda w, ids: {
        "storefront_id": w.erp_store.id, "email": STAFF_INSTANT_EMAIL}, tenant_bound=False),
    ("POST", "/api/v1/erp/instant-accounts"): Op("operator_manage", 201, lambda w, ids, n: {
        "email": STAFF_INSTANT_EMAIL, "account_code": STAFF_INSTANT_CODE, "storefront_id": w.erp_store.id},
                                                 tenant_bound=False),
    ("GET", "/api/v1/webhooks/event-types"): Op("admin", 200, tenant_bound=False),
    ("GET", W): Op("admin", 200, tenant_bound=False),
    ("POST", W): Op("admin", 201, lambda w, ids, n: {"url": f"https://hooks.example.com/{n}",
                                                     "event_types": ["account.created"]}, tenant_bound=False),
    ("GET", WE): Op("admin", 200, fresh=Fresh.webhook_endpoint, tenant_bound=False),
    ("PATCH", WE): Op("admin", 200, body({"description": "Changed"}), fresh=Fresh.webhook_endpoint,
                      tenant_bound=False),
    ("DELETE", WE): Op("admin", 204, fresh=Fresh.webhook_endpoint, tenant_bound=False),
    ("POST", WE + "/secret"): Op("admin", 200, body({}), fresh=Fresh.webhook_endpoint, tenant_bound=False),
    ("GET", WE + "/deliveries"): Op("admin", 200, fresh=Fresh.webhook_endpoint, tenant_bound=False),
    ("GET", WD): Op("admin", 200, fresh=Fresh.webhook_endpoint, tenant_bound=False),
    ("POST", WD + "/replay"): Op("admin", 202, fresh=Fresh.webhook_endpoint, tenant_bound=False),
    ("GET", S + "/cart"): Op("buyer", 200),
    ("PUT", S + "/cart"): Op("buyer", 200, body({"lines": [{"sku": "CART-1", "quantity": 1, "unit_price": "1.00"}]})),
    ("POST", S + "/cart/lines"): Op("buyer", 201, lambda w, ids, n: {"sku": f"CART-{n}", "quantity": 1,
                                                                     "unit_price": "2.00"}),
    ("DELETE", S + "/cart/lines/{line_id}"): Op("buyer", 204, fresh=Fresh.cart_line),
    ("GET", S + "/favourites"): Op("buyer", 200),
    ("POST", S + "/favourites"): Op("buyer", 201, lambda w, ids, n: {"sku": f"FAV-NEW-{n}"}),
    ("DELETE", S + "/favourites/{favourite_id}"): Op("buyer", 204, fresh=Fresh.favourite),
    ("GET", "/healthz"): Op("public", 200),
    ("GET", S + "/oidc-clients"): Op("operator", 200),
    ("POST", S + "/oidc-clients"): Op("admin", 201, lambda w, ids, n: {"name": f"Shop {n}",
                                                                       "redirect_uris": ["https://shop.example/cb"]}),
    ("POST", S + "/oidc-clients/{client_id}/secret"): Op("admin", 200, fresh=Fresh.oidc_client),
    ("DELETE", S + "/oidc-clients/{client_id}"): Op("admin", 204, fresh=Fresh.oidc_client),
    ("GET", S + "/buyers/{subject}"): Op("backend", 200, fresh=Fresh.subject),
}

PARAM = re.compile(r"{(\w+)}")
MISSING_ID = 999_999_999  # an id no row has (within the bounds of every path id)
MISSING = {"slug": "no-such-storefront", "token": "no-such-token", "choice_token": "no-such-token"}


def operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_the_table_has_a_row_for_every_operation_of_the_api():
    spec = create_app(db=Database("sqlite://")).openapi()
    assert operations(spec) - set(TABLE) == set(), "operations without a row in TABLE"
    assert set(TABLE) - operations(spec) == set(), "rows for operations the API no longer has"


@pytest.fixture
def access(settings, db, tmp_path, dns_server) -> Iterator[AccessWorld]:
    """The world on a live app with the demo ERP behind it and a DNS server for domain checks; rate limits off (they
    are not what is measured here)."""
    app = create_app(settings.model_copy(update={"rate_limits_enabled": False,
                                                 "dns_nameserver": dns_server.address}), db)
    app.state.erp = file_world(tmp_path).gateway
    with TestClient(app, base_url="http://testserver") as client:
        yield build(db, client)


def ids_for(w: AccessWorld, op: Op, t: Tenant) -> Ids:
    return named(op, {**t.ids(), **(op.fresh(w, t) if op.fresh else {})})


def send(w: AccessWorld, method: str, path: str, op: Op, ids: Ids, caller: str,
         swap: Ids | None = None) -> httpx.Response:
    """The operation's request with `ids`; `swap` replaces ids wherever they appear (path, body or query)."""
    swap = swap or {}
    url = PARAM.sub(lambda m: str({**ids, **swap}[m.group(1)]), path)
    n = next(w.counter)
    payload = op.body(w, ids, n) if op.body else None
    query = op.query(w, ids) if op.query else None
    for name, value in swap.items():
        if name not in PARAM.findall(path):
            target = query if query is not None and name in query else payload
            if target is None:
                payload = target = {}
            target[name] = value
    w.client.cookies.clear()  # a cookie from an earlier answer (a registration's sign-in) must not sign anyone in
    return w.client.request(method, url, params=query, json=payload, headers=w.headers[caller])


def leaks(w: AccessWorld, op: Op, caller: str, response: httpx.Response) -> list[str]:
    text = response.text.lower()
    return [s for s in w.foreign_secrets(caller, operator_staff=not op.names_operator_staff) if s.lower() in text]


def test_every_operation_answers_every_caller_as_the_table_says(access: AccessWorld):
    w = access
    assert operations(w.client.get("/openapi.json").json()) == set(TABLE)
    failures: list[str] = []
    for (method, path), op in TABLE.items():
        for caller in CREDENTIALS:
            expected = RULES[op.rule][caller]
            expected = op.ok if expected == OK else expected
            target = w.tenant_of(caller) if op.own_scope else w.a
            response = send(w, method, path, op, ids_for(w, op, target), caller)
            if response.status_code != expected:
                failures.append(f"{method} {path} as {caller}: {response.status_code}, expected {expected}: "
                                f"{response.text[:200]}")
            # a public operation answers what the request itself proves (a password, a link's token), to anyone
            elif response.is_success and op.rule != "public" and caller[-2:] in ("_a", "_b"):
                if found := leaks(w, op, caller, response):
                    failures.append(f"{method} {path} as {caller} shows another tenant's data: {found}")
        if op.ends_sessions:
            w.sign_in_all()
    assert not failures, "\n".join(failures)
    print(f"\naccess matrix: {len(TABLE)} operations x {len(CREDENTIALS)} callers = "
          f"{len(TABLE) * len(CREDENTIALS)} requests")


# --- foreign ids anywhere in a request --------------------------------------------------------------------------------

def id_slots(spec: dict[str, Any], method: str, path: str) -> list[str]:
    """The names under which the operation takes an id: path parameters, and body or query fields that name a
    record (…_id, storefront, token; in a body a record's …_id is a number: a payment provider's token id is not
    one of ours)."""
    operation = spec["paths"][path][method.lower()]
    names = [p["name"] for p in operation.get("parameters", [])]
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    names += [name for name, field in schema.get("properties", {}).items()
              if not name.endswith("_id") or "integer" in {field.get("type"), *(t.get("type") for t in
                                                                                field.get("anyOf", []))}]
    path_names = PARAM.findall(path)
    return [n for n in names if n in path_names or n.endswith("_id") or n in ("storefront", "token", "choice_token")]


def tenant_caller(op: Op) -> str | None:
    """Who walks the operation with foreign ids: reseller A's admin where it may use it, else A's buyer."""
    if not op.tenant_bound:
        return None
    if op.rule != "public" and RULES[op.rule]["reseller_a"] == OK:
        return "reseller_a"
    return "buyer_a" if RULES[op.rule]["buyer_a"] == OK else None


def test_a_foreign_id_anywhere_in_a_request_answers_like_a_missing_one(access: AccessWorld):
    w = access
    spec = w.client.get("/openapi.json").json()
    failures: list[str] = []
    walked = 0
    for (method, path), op in TABLE.items():
        caller = tenant_caller(op)
        if caller is None:
            continue
        for slot in id_slots(spec, method, path):
            made = named(op, op.fresh(w, w.a)) if op.fresh else {}
            own = named(op, {**w.a.ids(), **made})
            assert slot in own, f"{method} {path}: the world has no {slot}"
            others = [("the other tenant's", ids_for(w, op, w.b), w.b.world.reseller.id)]
            if slot not in made:  # the operator has no fresh objects of its own (orders, tokens, cart lines)
                others.append(("the operator's", named(op, w.operator_ids()), None))
            for whose, foreign, owner in others:
                if slot not in foreign or foreign[slot] == own[slot] or (slot == "slug" and op.rule == "public"):
                    continue  # not a tenant's record; a storefront's public pages are public
                walked += 1
                failures += walk(w, method, path, op, caller, slot, foreign[slot], owner,
                                 f"{method} {path} as {caller} with {whose} {slot}")
    assert not failures, "\n".join(failures)
    assert walked >= 100, walked
    print(f"\nforeign ids: {walked} (operation, id) pairs walked")


def walk(w: AccessWorld, method: str, path: str, op: Op, caller: str, slot: str, value: Any, owner: int | None,
         where: str) -> list[str]:
    """One foreign id in one request: it changes nothing of its owner's, shows none of its data, and answers as a
    missing id does (a storefront's address: the caller's token is not signed in there)."""
    failures = []
    before = snapshot(w.db, owner)
    answer = send(w, method, path, op, ids_for(w, op, w.a), caller, swap={slot: value})
    if snapshot(w.db, owner) != before:
        failures.append(f"{where} changed its data: {answer.status_code} {answer.text[:200]}")
    if found := leaks(w, op, caller, answer):
        failures.append(f"{where} shows its data: {found}")
    if slot == "slug":
        if answer.status_code != 401 or answer.json()["error"]["code"] != "not_signed_in":
            failures.append(f"{where}: {answer.status_code} {answer.text[:200]}")
        return failures
    missing = send(w, method, path, op, ids_for(w, op, w.a), caller, swap={slot: MISSING.get(slot, MISSING_ID)})
    if answer.is_success or (answer.status_code, answer.json()) != (missing.status_code, missing.json()):
        failures.append(f"{where}: {answer.status_code} {answer.text[:200]}; a missing {slot}: "
                        f"{missing.status_code} {missing.text[:200]}")
    return failures
