"""Statement budgets: how many SQL statements a storefront sign-in, a registration, a page of the approvals queue,
a page of a reseller's My Customers grid and the console's account record send to the database, on each backend.
A change that adds one fails here; one that saves some lowers the budget.

What is counted: every statement the request under test sends through the app's engine (the `db` fixture's),
seen by SQLAlchemy's `before_cursor_execute` event (the BEGIN of a transaction, on SQLite issued by core.db at
its first write, and every COMMIT are the driver's own and not counted). Rate limits are counted where they share
that engine (PostgreSQL); SQLite keeps them in a sidecar file with an engine of its own, which is not counted.
Setting up the data, signing staff in and the like happen before counting starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from accountdesk.carts.models import Cart, CartLine, Favourite
from accountdesk.core.db import Database
from tests import factories as f
from tests.reseller_world import World, console_sign_in, customer, world
from tests.test_registration_api import body, url

ROWS = 25  # one full page of the approvals queue and of the grid

# Statements per request and backend; lower a budget when a change saves statements, never raise it lightly.
BUDGETS: dict[str, dict[str, int]] = {
    # PostgreSQL: 7 of them the rate limits'; one (both) looks for webhook endpoints that want login.signed_in (5 and
    # 12 when the storefront and its contacts with the e-mail were read in two statements)
    "storefront sign-in": {"sqlite": 4, "postgresql": 11},
    # PostgreSQL: 4 of them the rate limits'; one (both) reads the webhook endpoints (19 and 23 when the storefront's
    # defaults were read again and the search text was written a second time, from the contacts' e-mails read back;
    # PostgreSQL 19 when the account's creation was written in the contact's flush, not with the other audit rows)
    "registration (approval)": {"sqlite": 16, "postgresql": 18},
    "approvals queue (API)": {"sqlite": 7, "postgresql": 7},  # 56 and 55 when each row read its contacts
    "approvals queue (console)": {"sqlite": 10, "postgresql": 10},  # 83 and 82 with 25 new contacts as well
    "My Customers grid (API)": {"sqlite": 5, "postgresql": 5},
    "My Customers grid (console)": {"sqlite": 6, "postgresql": 6},
    # the console's account record: details, address book, saved payment methods, attributes, storefronts, contacts,
    # orders (and their lines), the logins' carts (and their lines) and favourites, e-mail domains and history,
    # whatever their number
    "account record (console)": {"sqlite": 18, "postgresql": 18},
}


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements sent through the app's engine while the block runs."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def counted(db: Database, request: Callable[[], Any]) -> list[str]:
    """The statements one request sends (it must succeed)."""
    with statements(db) as seen:
        response = request()
    assert response.status_code < 400, response.text
    return seen


def within_budget(db: Database, path: str, seen: list[str]) -> None:
    backend = db.engine.dialect.name
    budget = BUDGETS[path][backend]
    print(f"\n{path} on {backend}: {len(seen)} statements (budget {budget})")
    assert len(seen) <= budget, f"{path} on {backend} sends {len(seen)} statements, its budget is {budget}:\n" + \
        "\n".join(" ".join(statement.split())[:160] for statement in seen)


def test_storefront_sign_in(db, client):
    store = f.storefront(db)
    buyer = f.contact(db, f.account(db, storefront_id=store.id), store)
    within_budget(db, "storefront sign-in", counted(db, lambda: client.post(
        f"/api/v1/storefronts/{store.slug}/sessions", json={"email": buyer.email, "password": f.PASSWORD})))


def test_registration_in_approval_mode(db, client):
    store = f.storefront(db, registration_mode="approval")
    f.staff(db, "approver")  # told of the request, as the storefront names no addresses of its own
    assert client.post(url(store), json=body(email="first@example.com")).status_code == 202  # numbering has begun
    within_budget(db, "registration (approval)", counted(db, lambda: client.post(url(store), json=body())))


def _requests(db: Database, stores: list, first: int, last: int) -> None:
    """Registrations waiting for approval, and as many new contacts of active accounts, over the storefronts."""
    for n in range(first, last):
        store = stores[n % len(stores)]
        waiting = f.account(db, storefront_id=store.id, status="pending_approval", name=f"Request {n:02d}")
        f.contact(db, waiting, store, status="pending_approval")
        f.contact(db, f.account(db, storefront_id=store.id), store, status="pending_approval")


def _queue_does_not_grow(db: Database, path: str, get: Callable[[], Any]) -> None:
    stores = [f.storefront(db, registration_mode="approval") for _ in range(3)]
    _requests(db, stores, 0, 1)
    one = len(counted(db, get))
    _requests(db, stores, 1, ROWS)
    assert get().text.count("Request ") >= ROWS
    full = counted(db, get)
    assert len(full) == one, f"{path}: {one} statements for one request but {len(full)} for {ROWS}"
    within_budget(db, path, full)


def test_approvals_queue_api(db, client):
    headers = f.token(client, f.staff(db, "approver"))
    _queue_does_not_grow(db, "approvals queue (API)",
                         lambda: client.get("/api/v1/registrations", params={"per_page": ROWS}, headers=headers))


def test_approvals_queue_console(db, client):
    console_sign_in(client, f.staff(db, "approver"))
    _queue_does_not_grow(db, "approvals queue (console)", lambda: client.get("/console/approvals"))


def _grid_does_not_grow(db: Database, w: World, path: str, get: Callable[[], Any]) -> None:
    customer(db, w, name="Customer 00")
    one = len(counted(db, get))
    for n in range(1, ROWS):
        f.contact(db, customer(db, w, name=f"Customer {n:02d}"), w.storefront)
    assert get().text.count("Customer ") >= ROWS
    full = counted(db, get)
    assert len(full) == one, f"{path}: {one} statements for one customer but {len(full)} for {ROWS}"
    within_budget(db, path, full)


def test_my_customers_grid_api(db, client):
    w = world(db, client)
    _grid_does_not_grow(db, w, "My Customers grid (API)",
                        lambda: client.get(f"{w.base}/customers", params={"per_page": ROWS}, headers=w.headers))


def test_my_customers_grid_console(db, client):
    w = world(db)
    console_sign_in(client, w.staff)
    _grid_does_not_grow(db, w, "My Customers grid (console)",
                        lambda: client.get(f"/console/resellers/{w.reseller.id}/customers"))


def _shopping_login(db: Database, account: Any, store: Any, n: int) -> None:
    """A login of the account with a cart line and a favourite, and an order of the account."""
    login = f.contact(db, account, store)
    with db.transaction() as session:
        session.add_all([Cart(contact_id=login.id, lines=[CartLine(sku=f"CART-{n}", name="In the cart", quantity=1,
                                                                   unit_price=Decimal("1"))]),
                         Favourite(contact_id=login.id, sku=f"FAV-{n}", name="Kept")])
    f.order(db, account)


def test_account_record_console(db, client):
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    _shopping_login(db, account, store, 0)
    console_sign_in(client, f.staff(db, "csr"))
    get = lambda: client.get(f"/console/accounts/{account.id}")  # noqa: E731
    one = len(counted(db, get))
    for n in range(1, ROWS):
        _shopping_login(db, account, store, n)
    assert get().text.count("CART-") >= ROWS
    full = counted(db, get)
    assert len(full) == one, f"account record: {one} statements for one login and order but {len(full)} for {ROWS}"
    within_budget(db, "account record (console)", full)
