"""Statuses in the reader's words (issue 11, language): an order's, an account's, a contact's or a staff user's status
is shown in the reader's language wherever a person sees it (console record and order page, a reseller's customer
record and its export, the storefront's account page), from one source of words (core.history)."""

from __future__ import annotations

import csv
import html
import io
import re

from sqlalchemy import update

from accountdesk.accounts.models import Account
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.page_world import storefront_sign_in
from tests.reseller_world import customer, world
from tests.test_console_pages import sign_in


def _speaking(db, staff: StaffUser, language: str) -> StaffUser:
    with db.transaction() as session:
        session.execute(update(StaffUser).where(StaffUser.id == staff.id).values(language=language))
    return staff


def _badges(text: str) -> list[str]:
    return [html.unescape(b) for b in re.findall(r'<span class="badge [a-z_]+"[^>]*>([^<]+)</span>', text)]


def test_a_french_clerk_reads_order_account_and_contact_statuses_in_french(db, client):
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    f.contact(db, account, store, status="pending_approval")
    order = f.order(db, account, status="pending_approval")
    f.order(db, account, status="canceled")
    with db.transaction() as session:  # a waiting account cannot order: it waits once its orders are in
        session.execute(update(Account).where(Account.id == account.id).values(status="pending_approval"))
    sign_in(client, _speaking(db, f.staff(db, "admin"), "fr"))
    record = client.get(f"/console/accounts/{account.id}").text
    badges = _badges(record)
    assert "annulée" in badges and "en attente d'approbation" in badges
    assert not {"pending approval", "pending_approval", "canceled", "Canceled"} & set(badges)
    assert "Ce compte est en attente d'approbation" in html.unescape(record)
    order_page = client.get(f"/console/accounts/{account.id}/orders/{order.id}").text
    assert _badges(order_page) == ["en attente d'approbation"]
    accounts = html.unescape(client.get("/console/accounts").text)
    assert ">en attente d'approbation</option>" in accounts and "Les plus récents d'abord" in accounts


def test_a_german_reseller_reads_its_customers_order_statuses_and_exports_them_in_german(db, client):
    w = world(db)
    buyer = customer(db, w)
    f.order(db, buyer, status="pending_approval")
    f.order(db, buyer, status="executed")
    sign_in(client, _speaking(db, w.staff, "de"))
    record = client.get(f"/console/resellers/{w.reseller.id}/customers/{buyer.id}").text
    statuses = [html.unescape(s) for s in re.findall(r'data-testid="order-status">([^<]+)<', record)]
    assert statuses == ["ausgeführt", "wartet auf Freigabe"]
    export = client.get(f"/console/resellers/{w.reseller.id}/customers/{buyer.id}/orders/export",
                        params={"format": "csv"})
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert [row[2] for row in rows[1:]] == ["ausgeführt", "wartet auf Freigabe"]
    assert {row[1] for row in rows[1:]} == {"Wiederverkäufer"}
    searched = client.get(f"/console/resellers/{w.reseller.id}/customers/{buyer.id}",
                          params={"q_orders": "ausgeführt"}).text
    assert re.findall(r'data-testid="order-status">([^<]+)<', searched) == ["ausgeführt"]
    grid = client.get(f"/console/resellers/{w.reseller.id}/customers").text
    assert ">Ort</a>" in grid and ">Monatlicher Umsatz</a>" in grid  # the sortable column headers


def test_a_german_buyer_reads_the_order_status_on_the_storefront_account_page_in_german(db, client):
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    f.contact(db, account, store, email="jonas@example.com", language="de")
    f.order(db, account, status="in_progress")
    storefront_sign_in(client, store, "jonas@example.com")
    orders = client.get(f"/s/{store.slug}/account").text.split('data-testid="orders"')[1].split("</table>")[0]
    assert "<td>in Bearbeitung</td>" in orders and "in progress" not in orders


def test_a_german_admin_reads_why_a_webhook_endpoint_is_disabled_in_german(db, client, settings):
    from accountdesk.core.audit import Actor
    from accountdesk.webhooks import service as webhooks

    with db.transaction() as session:
        endpoint, _ = webhooks.create_endpoint(session, Actor.system(), settings, url="https://hooks.example/in",
                                               event_types=["account.created"], storefront_id=None)
        webhooks.update_endpoint(session, Actor.system(), settings, endpoint, {"enabled": False})
    sign_in(client, _speaking(db, f.staff(db, "admin"), "de"))
    state = re.search(r'data-testid="webhook-state">([^<]+)<', client.get(f"/console/webhooks/{endpoint.id}").text)
    assert html.unescape(state.group(1)) == "deaktiviert (vom Team)"
