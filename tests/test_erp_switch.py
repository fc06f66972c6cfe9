"""One e-mail, several accounts (both adapters where the ERP is read): account admins of one customer group switch
between their logins without signing in again; each login has its own cart and favourites; statements, invoices,
credit limit and balance are read through the gateway (cached briefly) with a readable message when it is down."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.core.models import AuditEvent
from accountdesk.erp.demo_data import SHARED_EMAIL
from accountdesk.erp.gateway import CachedGateway
from accountdesk.orders import service as orders
from tests import factories as f
from tests.erp_world import DATA, TODAY, erp_login, erp_store, erp_world, file_erp, sap_world  # noqa: F401
from tests.test_storefront_sign_in import api_sign_in, bearer, form_token, page_sign_in


def choose(client, store, contact_id: int) -> dict[str, str]:
    """Sign in as Maria (one password, several logins) and pick the login `contact_id`; its bearer header."""
    offer = api_sign_in(client, store, SHARED_EMAIL)
    assert offer.status_code == 200, offer.text
    chosen = client.post(f"/api/v1/storefronts/{store.slug}/sessions/choice",
                         json={"choice_token": offer.json()["choice_token"], "contact_id": contact_id})
    assert chosen.status_code == 201, chosen.text
    return bearer(chosen)


def maria(db, store):
    """Maria is an account admin on C20000 and C20001 (customer group 100), a buyer on another group-100 account,
    and an admin on an account of another group."""
    ltd = erp_login(db, store, "C20000", SHARED_EMAIL, role="account_admin")
    north = erp_login(db, store, "C20001", SHARED_EMAIL, role="account_admin")
    buyer = f.contact(db, f.account(db, storefront_id=store.id, customer_group="100", name="Harbour Tools South"),
                      store, email=SHARED_EMAIL, role="buyer")
    other = f.contact(db, f.account(db, storefront_id=store.id, customer_group="110", name="Harbour Cafe"),
                      store, email=SHARED_EMAIL, role="account_admin")
    return ltd, north, buyer, other


def test_group_admin_switches_accounts_without_signing_in_again(db, app, client, erp_world):
    app.state.erp = erp_world.gateway
    store = erp_store(db)
    ltd, north, buyer, other = maria(db, store)
    headers = choose(client, store, ltd.id)
    base = f"/api/v1/storefronts/{store.slug}"

    listed = client.get(f"{base}/switchable-accounts", headers=headers).json()
    assert listed["current_contact_id"] == ltd.id
    assert [(a["account_number"], a["current"]) for a in listed["accounts"]] == [("C20000", True), ("C20001", False)]

    refused = client.post(f"{base}/switch", json={"contact_id": other.id}, headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "switch_not_allowed"
    assert client.post(f"{base}/switch", json={"contact_id": buyer.id}, headers=headers).status_code == 403

    switched = client.post(f"{base}/switch", json={"contact_id": north.id}, headers=headers)
    assert switched.status_code == 201, switched.text
    assert switched.json()["account"]["number"] == "C20001" and switched.json()["contact"]["id"] == north.id
    assert client.get(f"{base}/sessions/current", headers=headers).status_code == 401  # the old session is closed
    now = bearer(switched)
    assert client.get(f"{base}/sessions/current", headers=now).json()["account"]["name"] == "Harbour Tools North"
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.switched_account")).all()
        assert event.subject_id == north.id and event.actor_id == ltd.id and "C20000" in event.note

    summary = client.get(f"{base}/account/erp-summary", headers=now)
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert (body["account_number"], body["credit_limit"], body["currency"]) == ("C20001", "2500.00", "GBP")
    assert Decimal(body["balance"]) == Decimal("640.00") and Decimal(body["available_credit"]) == Decimal("1860.00")
    assert [i["number"] for i in body["invoices"]] == ["1004"]
    [statement] = body["statements"]
    assert Decimal(statement["closing_balance"]) == Decimal("640.00") and statement["lines"][0]["reference"] == "1004"

    back = client.post(f"{base}/switch", json={"contact_id": ltd.id}, headers=now)
    assert back.status_code == 201
    ltd_summary = client.get(f"{base}/account/erp-summary", headers=bearer(back)).json()
    assert ltd_summary["credit_limit"] == "5000.00" and Decimal(ltd_summary["balance"]) == Decimal("400.39")
    assert [s["closing_balance"] for s in ltd_summary["statements"]] == [
        str(s.closing_balance.quantize(Decimal("0.01"))) for s in reversed(DATA.statements("C20000", TODAY))]


def test_switching_asks_the_erp_about_the_login_switched_to(db, app, client, erp_world):
    app.state.erp = erp_world.gateway
    store = erp_store(db)
    ltd, north, _, _ = maria(db, store)
    headers = choose(client, store, ltd.id)
    erp_world.remove_contact("C20001", SHARED_EMAIL)

    refused = client.post(f"/api/v1/storefronts/{store.slug}/switch", json={"contact_id": north.id},
                          headers=headers)

    assert refused.status_code == 403 and refused.json()["error"]["code"] == "erp_contact_missing"
    assert client.get(f"/api/v1/storefronts/{store.slug}/sessions/current", headers=headers).status_code == 200
    listed = client.get(f"/api/v1/storefronts/{store.slug}/switchable-accounts", headers=headers).json()
    assert [a["account_number"] for a in listed["accounts"]] == ["C20000"]  # the removed login is deactivated


def test_summary_is_for_account_admins_of_linked_accounts(db, app, client, file_erp):
    app.state.erp = file_erp.gateway
    store = erp_store(db)
    _, _, _, other = maria(db, store)
    tom = erp_login(db, store, "C20000", "tom.reed@harbourtools.example", role="buyer")
    base = f"/api/v1/storefronts/{store.slug}"

    assert client.get(f"{base}/account/erp-summary").status_code == 401
    as_buyer = client.get(f"{base}/account/erp-summary", headers=bearer(api_sign_in(client, store, tom.email)))
    assert as_buyer.status_code == 403 and as_buyer.json()["error"]["code"] == "account_admins_only"
    unlinked = client.get(f"{base}/account/erp-summary", headers=choose(client, store, other.id))
    assert unlinked.status_code == 404 and unlinked.json()["error"]["code"] == "erp_not_linked"


def test_each_login_has_its_own_cart_and_favourites(db, client):
    store = f.storefront(db)
    first = f.contact(db, f.account(db, storefront_id=store.id, currency="GBP"), store, email="sam@example.com")
    second = f.contact(db, f.account(db, storefront_id=store.id), store, email="sam@example.com")
    one, two = choose_any(client, store, first.id), choose_any(client, store, second.id)
    cart = f"/api/v1/storefronts/{store.slug}/cart"
    line = {"sku": "DRILL-18V", "name": "Cordless drill", "quantity": 2, "unit_price": "89.99"}

    assert client.get(cart, headers=one).json() == {"contact_id": first.id, "currency": "GBP", "lines": [],
                                                     "total": "0.00"}
    added = client.post(f"{cart}/lines", json=line, headers=one)
    assert added.status_code == 201 and added.json()["total"] == "179.98"
    more = client.post(f"{cart}/lines", json={**line, "quantity": 1}, headers=one).json()
    assert [(x["sku"], x["quantity"], x["line_total"]) for x in more["lines"]] == [("DRILL-18V", 3, "269.97")]
    assert client.get(cart, headers=two).json()["lines"] == []  # the other login's cart is its own

    lines = [{**line, "sku": "SAW-1", "unit_price": "10"}, {**line, "sku": "BITS", "quantity": 5, "unit_price": "1.5"}]
    replaced = client.put(cart, headers=two, json={"lines": lines})
    assert replaced.status_code == 200 and replaced.json()["total"] == "27.50"
    assert [x["unit_price"] for x in replaced.json()["lines"]] == ["10.00", "1.50"]
    bits = next(x for x in replaced.json()["lines"] if x["sku"] == "BITS")
    assert client.delete(f"{cart}/lines/{bits['id']}", headers=one).status_code == 404  # not one's line
    assert client.delete(f"{cart}/lines/{bits['id']}", headers=two).status_code == 204
    assert [x["sku"] for x in client.get(cart, headers=two).json()["lines"]] == ["SAW-1"]
    assert client.get(cart, headers=one).json()["total"] == "269.97"

    duplicate = client.put(cart, headers=two, json={"lines": [line, line]})
    assert duplicate.status_code == 422 and "one line only" in duplicate.json()["error"]["fields"]["lines"]
    zero = client.post(f"{cart}/lines", json={**line, "quantity": 0}, headers=one)
    assert zero.status_code == 422 and "quantity" in zero.json()["error"]["fields"]
    assert client.get(cart).status_code == 401

    favourites = f"/api/v1/storefronts/{store.slug}/favourites"
    made = client.post(favourites, json={"sku": "DRILL-18V", "name": "Cordless drill"}, headers=one)
    assert made.status_code == 201
    assert client.post(favourites, json={"sku": "DRILL-18V"}, headers=one).status_code == 200
    assert [x["sku"] for x in client.get(favourites, headers=one).json()["items"]] == ["DRILL-18V"]
    assert client.get(favourites, headers=two).json()["items"] == []
    assert client.delete(f"{favourites}/{made.json()['id']}", headers=two).status_code == 404
    assert client.delete(f"{favourites}/{made.json()['id']}", headers=one).status_code == 204
    assert client.get(favourites, headers=one).json()["items"] == []


def choose_any(client, store, contact_id: int) -> dict[str, str]:
    offer = api_sign_in(client, store, "sam@example.com")
    chosen = client.post(f"/api/v1/storefronts/{store.slug}/sessions/choice",
                         json={"choice_token": offer.json()["choice_token"], "contact_id": contact_id})
    assert chosen.status_code == 201, chosen.text
    return bearer(chosen)


def test_account_page_reads_the_erp_through_a_short_cache(db, app, client, erp_world):
    cached = CachedGateway(erp_world.gateway, 60)
    app.state.erp = cached
    store = erp_store(db)
    ltd, north, _, _ = maria(db, store)
    signed_in = page_sign_in(client, store, SHARED_EMAIL)
    token = form_token(client, f"/s/{store.slug}/sign-in")
    chosen = client.post(f"/s/{store.slug}/sign-in/choose", data={
        "csrf_token": token, "choice_token": signed_in.text.split('name="choice_token" value="')[1].split('"')[0],
        "contact_id": ltd.id, "next": ""}, follow_redirects=False)
    assert chosen.status_code == 303

    with db.transaction() as session:
        order = orders.place_order(session, Actor.system(), session.get(Account, ltd.account_id), None,
                                   [{"sku": "DRILL-18V", "quantity": 2, "unit_cost": Decimal("89.99")}],
                                   may_price=True, contact=session.get(Contact, ltd.id))
    first = client.get(f"/s/{store.slug}/account")
    assert order.number in first.text and "£179.98" in first.text
    assert first.status_code == 200 and "£5,000.00" in first.text and "£400.39" in first.text
    assert 'data-testid="account-switch"' in first.text and "Harbour Tools North (C20001)" in first.text
    assert "Invoice" in first.text and "1003" in first.text
    if erp_world.sap is not None:
        asked = erp_world.sap.count("BusinessPartners")
        client.get(f"/s/{store.slug}/account")
        assert erp_world.sap.count("BusinessPartners") == asked  # answered from the cache

    erp_world.down()
    assert "£5,000.00" in client.get(f"/s/{store.slug}/account").text  # still within the cache's minute
    cached.invalidate()
    down = client.get(f"/s/{store.slug}/account")
    assert down.status_code == 200
    assert "Your statements and credit details cannot be read right now." in down.text
    assert "5,000.00" not in down.text

    home = client.get(f"/s/{store.slug}")  # the header's switcher is on every storefront page
    assert 'data-testid="account-switch"' in home.text

    switched = client.post(f"/s/{store.slug}/switch", data={"csrf_token": form_token(client, f"/s/{store.slug}"),
                                                           "contact_id": north.id}, follow_redirects=False)
    assert switched.status_code == 503 and "We cannot check your account right now." in switched.text
    erp_world.up()
    switched = client.post(f"/s/{store.slug}/switch", data={"csrf_token": form_token(client, f"/s/{store.slug}"),
                                                           "contact_id": north.id})
    assert switched.status_code == 200 and "You are now working for Harbour Tools North." in switched.text
    assert "£2,500.00" in switched.text


def test_account_pages_need_a_signed_in_login(db, client):
    store = f.storefront(db)
    page = client.get(f"/s/{store.slug}/account", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == f"/s/{store.slug}/sign-in?next=%2Fs%2F{store.slug}%2Faccount"
    switch = client.post(f"/s/{store.slug}/switch", data={"csrf_token": form_token(client, f"/s/{store.slug}/sign-in"),
                                                          "contact_id": "1"})
    assert switch.status_code == 401 and "Sign in to this storefront first." in switch.text
    assert client.get("/s/nowhere/account").status_code == 404
    api = client.post(f"/api/v1/storefronts/{store.slug}/switch", json={"contact_id": 1})
    assert api.status_code == 401 and api.json()["error"]["code"] == "not_signed_in"
