"""Orders: placed on the storefront by a signed-in contact or by reseller staff, totals with the reseller's markup,
approval (forced for credit-card resellers), accept or cancel with exactly one winner, search and Orders.xlsx."""

from __future__ import annotations

import io
import threading
from decimal import Decimal

import httpx
import openpyxl

from tests import factories as f
from tests.reseller_world import BUYER_LINES, LINES, customer, signed_in_contact, world


def _order_url(slug: str) -> str:
    return f"/api/v1/storefronts/{slug}/orders"


def test_customer_order_waits_for_approval_then_is_accepted_once(db, client):
    w = world(db, client, payment_method="credit_card", markup="10")
    buyer = customer(db, w)
    contact, bearer = signed_in_contact(db, client, w, buyer)
    lines = [*BUYER_LINES, {"sku": "HW-DOCK", "name": "Docking station", "quantity": 1, "auto_provisioned": False}]
    placed = client.post(_order_url(w.storefront.slug), json={"lines": lines}, headers=bearer)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["status"] == "pending_approval" and order["placed_by"] == "customer"
    assert order["placed_by_contact_id"] == contact.id and order["number"] == "SO-000001"
    assert (order["total_cost"], order["markup_percent"], order["total_amount"]) == (None, "10.00", None)
    assert client.get(_order_url(w.storefront.slug), headers=bearer).json()["total"] == 1
    accepted = client.post(f"{w.base}/orders/{order['id']}/accept", headers=w.headers)
    assert accepted.status_code == 200 and accepted.json()["status"] == "in_progress"  # the dock is provisioned by hand
    assert accepted.json()["decided_by_staff_id"] == w.staff.id and accepted.json()["decided_at"]
    late = client.post(f"{w.base}/orders/{order['id']}/cancel", headers=w.headers)
    assert late.status_code == 409 and late.json()["error"]["code"] == "order_already_decided"
    assert client.get(f"{w.base}/orders/{order['id']}", headers=w.headers).json()["status"] == "in_progress"
    events = client.get(f"/api/v1/accounts/{buyer.id}/events", headers=w.headers).json()
    assert [e["action"] for e in events[:2]] == ["order.accepted", "order.placed"]


def test_a_buyers_token_never_prices_an_order_staff_still_do(db, client):
    w = world(db, client, markup="10")
    buyer = customer(db, w)
    _, bearer = signed_in_contact(db, client, w, buyer)
    url = _order_url(w.storefront.slug)
    for lines in (LINES, [*BUYER_LINES, {"sku": "CHEAP", "quantity": 5, "unit_cost": "0"}]):
        refused = client.post(url, json={"lines": lines}, headers=bearer)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "price_not_allowed" and list(error["fields"]) == [f"lines.{len(lines) - 1}.unit_cost"]
    assert client.get(url, headers=bearer).json()["total"] == 0  # nothing was recorded
    unpriced = client.post(url, json={"lines": BUYER_LINES}, headers=bearer)
    assert unpriced.status_code == 201, unpriced.text
    order = unpriced.json()
    assert (order["total_cost"], order["total_amount"], order["lines"][0]["unit_cost"]) == (None, None, None)
    staff_url = f"{w.base}/customers/{buyer.id}/orders"
    priced = client.post(staff_url, json={"lines": LINES}, headers=w.headers)
    assert priced.status_code == 201, priced.text
    assert (priced.json()["total_cost"], priced.json()["total_amount"]) == ("55.50", "61.05")
    assert client.post(staff_url, json={"lines": BUYER_LINES}, headers=w.headers).status_code == 422  # staff price


def test_reseller_orders_skip_approval_and_statuses_follow_provisioning(db, client):
    w = world(db, client, payment_method="credit_card")
    buyer = customer(db, w)
    url = f"{w.base}/customers/{buyer.id}/orders"
    automatic = client.post(url, json={"lines": LINES}, headers=w.headers).json()
    assert automatic["status"] == "executed" and automatic["placed_by"] == "reseller"
    assert automatic["placed_by_staff_id"] == w.staff.id
    manual = client.post(url, json={"lines": [{**LINES[0], "auto_provisioned": False}]}, headers=w.headers).json()
    assert manual["status"] == "in_progress" and manual["number"] == "SO-000002"
    refused = client.post(f"{w.base}/orders/{manual['id']}/accept", headers=w.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "order_already_decided"


def test_cash_reseller_approval_follows_the_customer_flag(db, client):
    w = world(db, client, payment_method="cash")
    relaxed, careful = customer(db, w), customer(db, w, order_approval_required=True)
    _, relaxed_bearer = signed_in_contact(db, client, w, relaxed)
    _, careful_bearer = signed_in_contact(db, client, w, careful)
    body = {"lines": BUYER_LINES}
    assert client.post(_order_url(w.storefront.slug), json=body, headers=relaxed_bearer).json()["status"] == "executed"
    pending = client.post(_order_url(w.storefront.slug), json=body, headers=careful_bearer).json()
    assert pending["status"] == "pending_approval"
    canceled = client.post(f"{w.base}/orders/{pending['id']}/cancel", headers=w.headers)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"


def test_markup_override_and_half_up_rounding(db, client):
    w = world(db, client, markup="10")
    buyer = customer(db, w)
    url = f"{w.base}/customers/{buyer.id}/orders"
    line = {"sku": "X", "quantity": 3, "unit_cost": "0.335"}  # 1.005 -> 1.01 (half up, not to even)
    first = client.post(url, json={"lines": [line]}, headers=w.headers).json()
    assert (first["total_cost"], first["total_amount"]) == ("1.01", "1.11")  # 1.01 * 1.10 = 1.111
    assert first["lines"][0]["line_cost"] == "1.01"
    override = client.patch(f"{w.base}/customers/{buyer.id}", json={"markup_override_percent": "0.5"},
                            headers=w.headers)
    assert override.status_code == 200 and override.json()["markup_percent"] == "0.50"
    second = client.post(url, json={"lines": [{"sku": "Y", "quantity": 1, "unit_cost": "1.00"}]},
                         headers=w.headers).json()
    assert (second["markup_percent"], second["total_amount"]) == ("0.50", "1.01")  # 1.005 -> 1.01
    assert Decimal(second["total_cost"]) == Decimal("1.00")


def test_order_input_and_sign_in_are_checked(db, client):
    w = world(db, client, payment_method="credit_card")
    buyer = customer(db, w)
    contact, bearer = signed_in_contact(db, client, w, buyer)
    url = _order_url(w.storefront.slug)
    for lines in ([], [{**BUYER_LINES[0], "quantity": 0}], [{**BUYER_LINES[0], "sku": ""}]):
        response = client.post(url, json={"lines": lines}, headers=bearer)
        assert response.status_code == 422, lines
    assert client.post(url, json={"lines": BUYER_LINES}).status_code == 401
    other = world(db)
    elsewhere = client.post(_order_url(other.storefront.slug), json={"lines": BUYER_LINES}, headers=bearer)
    assert elsewhere.status_code == 401
    client.post(f"{w.base}/customers/{buyer.id}/users/{contact.id}/deactivate", headers=w.headers)
    assert client.post(url, json={"lines": BUYER_LINES}, headers=bearer).status_code == 401  # signed out everywhere
    strict = world(db, client)
    with db.transaction() as session:
        session.get(type(strict.storefront), strict.storefront.id).verification_required_before_ordering = True
    _, unverified = signed_in_contact(db, client, strict, customer(db, strict))
    refused = client.post(_order_url(strict.storefront.slug), json={"lines": BUYER_LINES}, headers=unverified)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "email_not_verified"
    assert client.get(f"{w.base}/customers/{buyer.id}/orders", headers=w.headers).json()["total"] == 0


def test_orders_search_and_export_hold_exactly_the_searched_orders(db, client):
    w = world(db, client, payment_method="credit_card")
    buyer = customer(db, w)
    _, bearer = signed_in_contact(db, client, w, buyer)
    url = f"{w.base}/customers/{buyer.id}/orders"
    pending = client.post(_order_url(w.storefront.slug), json={"lines": BUYER_LINES}, headers=bearer).json()
    other_sku = {"lines": [{"sku": "AZ-RESERVED", "quantity": 2, "unit_cost": "5"}]}
    executed = client.post(url, json=other_sku, headers=w.headers).json()
    customer(db, w)  # orders of another customer never show up here
    for q, expected in (("pending", [pending]), ("approval", [pending]), ("executed", [executed]),
                        ("az-res", [executed]), ("ms-365", [pending]), (executed["number"].lower(), [executed]),
                        ("", [executed, pending])):
        found = client.get(url, params={"q": q}, headers=w.headers).json()
        assert [o["number"] for o in found["items"]] == [o["number"] for o in expected], q
    export = client.get(f"{url}/export", params={"q": "pending"}, headers=w.headers)
    assert export.status_code == 200
    assert export.headers["content-disposition"] == 'attachment; filename="Orders.xlsx"'
    sheet = openpyxl.load_workbook(io.BytesIO(export.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Order #", "Placed by", "Status", "Order date", "Total cost", "Total amount", "Currency")
    assert [r[:3] for r in rows[1:]] == [(pending["number"], "Customer", "pending approval")]
    assert rows[1][4] is None and rows[1][3].year >= 2024  # a buyer's order is still to be priced
    csv = client.get(f"{url}/export", params={"format": "csv"}, headers=w.headers)
    assert csv.text.lstrip("\ufeff").splitlines()[1].startswith(executed["number"] + ",Reseller,executed,")


def test_accept_and_cancel_racing_on_one_order_exactly_one_wins(db, live_server):
    with httpx.Client(base_url=live_server, timeout=30) as http:
        w = world(db, payment_method="credit_card")
        headers = f.token(http, w.staff)
        buyer = customer(db, w)
        _, bearer = signed_in_contact(db, http, w, buyer)
        for _ in range(4):
            order = http.post(_order_url(w.storefront.slug), json={"lines": BUYER_LINES}, headers=bearer).json()
            barrier, answers = threading.Barrier(2), {}

            def decide(action: str, barrier: threading.Barrier = barrier, answers: dict = answers,
                       order: dict = order) -> None:
                barrier.wait()
                answers[action] = http.post(f"{w.base}/orders/{order['id']}/{action}", headers=headers)

            threads = [threading.Thread(target=decide, args=(a,)) for a in ("accept", "cancel")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            codes = sorted(r.status_code for r in answers.values())
            assert codes == [200, 409], {a: r.text for a, r in answers.items()}
            [winner] = [a for a, r in answers.items() if r.status_code == 200]
            [loser] = [r for r in answers.values() if r.status_code == 409]
            assert loser.json()["error"]["code"] == "order_already_decided"
            final = http.get(f"{w.base}/orders/{order['id']}", headers=headers).json()["status"]
            assert final == ("executed" if winner == "accept" else "canceled")


def test_first_order_pushes_a_new_web_account_to_the_erp_once(db, client):
    from sqlalchemy import select

    from accountdesk.core.models import OutboxMessage
    from accountdesk.registration.erp import PUSH

    w = world(db, client, payment_method="cash")
    buyer = customer(db, w)
    _, bearer = signed_in_contact(db, client, w, buyer)

    def pushes() -> list[dict]:
        with db.transaction() as session:
            return [m.payload for m in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == PUSH))]

    assert pushes() == []
    assert client.post(_order_url(w.storefront.slug), json={"lines": BUYER_LINES}, headers=bearer).status_code == 201
    assert [p["account_id"] for p in pushes()] == [buyer.id]
    assert client.post(_order_url(w.storefront.slug), json={"lines": BUYER_LINES}, headers=bearer).status_code == 201
    assert len(pushes()) == 1  # the push already waiting covers the second order


def test_an_order_reads_no_other_accounts_waiting_push(db, client):
    from sqlalchemy import event, select, update

    from accountdesk.accounts.models import Account
    from accountdesk.core.models import OutboxMessage
    from accountdesk.registration import erp

    w = world(db, client, payment_method="cash")
    buyer = customer(db, w)
    _, bearer = signed_in_contact(db, client, w, buyer)
    with db.transaction() as session:
        for other in [customer(db, w) for _ in range(20)]:
            erp.request_erp_push(session, session.get(Account, other.id), "approved")
    read: list[OutboxMessage] = []

    def note(message: OutboxMessage, _context) -> None:
        read.append(message)

    def order() -> int:
        event.listen(OutboxMessage, "load", note)
        try:
            return client.post(_order_url(w.storefront.slug), json={"lines": BUYER_LINES}, headers=bearer).status_code
        finally:
            event.remove(OutboxMessage, "load", note)

    def waiting() -> list[int]:
        with db.transaction() as session:
            return list(session.scalars(select(OutboxMessage.id).where(OutboxMessage.kind == erp.PUSH,
                                                                        OutboxMessage.status == "pending")
                                        .order_by(OutboxMessage.id)))

    others = waiting()
    assert order() == 201 and len(waiting()) == len(others) + 1  # the buyer's push, found among 20 others
    assert order() == 201 and len(waiting()) == len(others) + 1  # already waiting: not queued again
    buyers_push = waiting()[-1]
    with db.transaction() as session:  # given up on: the next order queues the push anew
        session.execute(update(OutboxMessage).where(OutboxMessage.id == buyers_push).values(status="failed"))
    assert order() == 201 and len(waiting()) == len(others) + 1
    assert read == []  # whether a push waits is asked of an index, not by reading the waiting pushes
