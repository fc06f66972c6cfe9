"""Saved payment methods: references to what the payment provider keeps (never a card number or security code),
listed, added once per Idempotency-Key, deleted with a confirmation in the console, expired ones flagged, every
change in the history, and a reseller's staff reach only their own customers'."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from accountdesk.accounts.models import SavedPaymentMethod
from accountdesk.core.models import AuditEvent
from tests import factories as f
from tests.reseller_world import customer, world
from tests.test_console_pages import post, sign_in

THIS_YEAR = date.today().year
CARD = {"provider": "stripe", "provider_token_id": "pm_1NqLZx2eZvKYlo2C", "brand": "visa", "last4": "4242",
        "expiry_month": 12, "expiry_year": THIS_YEAR + 2, "holder_name": "Ada Lovelace"}


def url(account) -> str:
    return f"/api/v1/accounts/{account.id}/payment-methods"


def saved(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(SavedPaymentMethod))


def test_add_list_and_delete_with_history(db, client):
    account = f.account(db)
    buyer = f.contact(db, account, f.storefront(db), first_name="Ada", last_name="Lovelace")
    headers = f.token(client, f.staff(db, "csr"))
    added = client.post(url(account), json={**CARD, "contact_id": buyer.id},
                        headers={**headers, "Idempotency-Key": "card-1"})
    assert added.status_code == 201, added.text
    method = added.json()
    assert {k: method[k] for k in CARD} == CARD and method["contact_id"] == buyer.id and method["expired"] is False
    again = client.post(url(account), json={**CARD, "contact_id": buyer.id},
                        headers={**headers, "Idempotency-Key": "card-1"})
    assert again.status_code == 201 and again.json() == method and saved(db) == 1  # a retry saves nothing twice
    duplicate = client.post(url(account), json=CARD, headers=headers)
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "duplicate"
    assert client.get(url(account), headers=headers).json() == [method]

    stranger = f.contact(db, f.account(db), f.storefront(db))
    foreign = client.post(url(account), json={**CARD, "provider_token_id": "pm_other", "contact_id": stranger.id},
                          headers=headers)
    assert foreign.status_code == 422 and list(foreign.json()["error"]["fields"]) == ["contact_id"]

    assert client.delete(f"{url(account)}/{method['id']}", headers=headers).status_code == 204
    gone = client.delete(f"{url(account)}/{method['id']}", headers=headers)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "payment_method_not_found"
    assert client.get(url(account), headers=headers).json() == []
    events = client.get(f"/api/v1/accounts/{account.id}/events", headers=headers).json()
    assert [e["action"] for e in events[:2]] == ["payment_method.deleted", "payment_method.added"]
    assert events[1]["changes"]["last4"] == [None, "4242"]
    assert "pm_1NqLZx2eZvKYlo2C" not in str(events)  # the history recognises the card, it keeps no token


def test_card_numbers_and_security_codes_are_refused_wherever_they_are_sent(db, client):
    account = f.account(db)
    headers = f.token(client, f.staff(db, "admin"))
    for sent in ({"provider_token_id": "4111 1111 1111 1111"}, {"holder_name": "5555-5555-5555-4444"},
                 {"card_number": "378282246310005"}, {"cvc": "123"}, {"provider_token_id": 4242424242424242}):
        refused = client.post(url(account), json={**CARD, **sent}, headers=headers)
        assert refused.status_code == 422, (sent, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "card_data_refused" and list(error["fields"]) == list(sent), sent
        assert "4111" not in refused.text and "123" not in error["fields"][next(iter(sent))]
    # a provider's numeric id is not a card number (Adyen's storedPaymentMethodId), nor a Luhn-failing one
    for token in ("8415718415172200", "4111111111111112"):
        assert client.post(url(account), json={**CARD, "provider_token_id": token}, headers=headers).status_code == 201
    wrong = client.post(url(account), json={**CARD, "last4": "42", "expiry_month": 13, "provider": "Stripe Inc."},
                        headers=headers)
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "validation_failed"
    assert wrong.json()["error"]["fields"] == {
        "provider": "Name the provider in letters, digits, - or _, for example stripe.",
        "last4": "Give the card's last four digits.", "expiry_month": "Enter 12 or less."}
    assert saved(db) == 2


def test_expired_methods_are_flagged(db, client):
    account = f.account(db)
    headers = f.token(client, f.staff(db, "admin"))
    today = date.today()
    last_month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    cards = {"this month": (today.year, today.month), "last month": last_month, "next year": (today.year + 1, 1)}
    for n, (year, month) in enumerate(cards.values()):
        sent = {**CARD, "provider_token_id": f"pm_{n}", "expiry_year": year, "expiry_month": month}
        assert client.post(url(account), json=sent, headers=headers).status_code == 201
    listed = client.get(url(account), headers=headers).json()
    assert dict(zip(cards, [m["expired"] for m in listed], strict=True)) == {
        "this month": False, "last month": True, "next year": False}
    sign_in(client, f.staff(db, "csr"))
    record = client.get(f"/console/accounts/{account.id}").text
    assert record.count('data-testid="expired"') == 1
    assert f'data-testid="payment-method-{listed[1]["id"]}"' in record and "Visa ending 4242" in record


def test_console_deletes_after_a_confirmation(db, client):
    account = f.account(db)
    headers = f.token(client, f.staff(db, "admin"))
    method = client.post(url(account), json=CARD, headers=headers).json()
    sign_in(client, f.staff(db, "csr"))
    record = f"/console/accounts/{account.id}"
    asked = client.get(f"{record}?delete_payment_method={method['id']}")
    assert 'role="alertdialog"' in asked.text and "Delete this saved payment method?" in asked.text
    assert saved(db) == 1  # asking deletes nothing
    done = post(client, f"{record}/payment-methods/{method['id']}/delete")
    assert done.status_code == 303 and done.headers["location"] == f"{record}#payment-methods"
    assert "Saved payment method deleted." in client.get(record).text and saved(db) == 0
    with db.transaction() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "payment_method.deleted"))
        assert event.account_id == account.id and event.actor_type == "staff"


def test_a_resellers_staff_reach_only_their_own_customers_methods(db, client):
    ours, theirs = world(db, client), world(db, client, name="Other Reseller")
    own, foreign, operators = customer(db, ours), customer(db, theirs), f.account(db)
    admin = f.token(client, f.staff(db, "admin"))
    foreign_card = client.post(url(foreign), json=CARD, headers=admin).json()
    client.post(url(operators), json=CARD, headers=admin)
    assert client.post(url(own), json=CARD, headers=ours.headers).status_code == 201
    assert len(client.get(url(own), headers=ours.headers).json()) == 1
    for account in (foreign, operators):
        for response in (client.get(url(account), headers=ours.headers),
                         client.post(url(account), json={**CARD, "provider_token_id": "pm_x"}, headers=ours.headers),
                         client.delete(f"{url(account)}/{foreign_card['id']}", headers=ours.headers)):
            assert response.status_code == 404 and response.json()["error"]["code"] == "account_not_found"
    assert client.delete(f"{url(own)}/{foreign_card['id']}", headers=ours.headers).status_code == 404
    sign_in(client, ours.staff)
    page = client.get(f"/console/accounts/{foreign.id}?delete_payment_method={foreign_card['id']}")
    assert page.status_code == 404
    assert post(client, f"/console/accounts/{foreign.id}/payment-methods/{foreign_card['id']}/delete").status_code \
        == 404
    assert saved(db) == 3


def test_the_api_documents_payment_methods(client):
    schema = client.get("/openapi.json").json()
    operations = schema["paths"]["/api/v1/accounts/{account_id}/payment-methods"]
    assert {"get", "post"} <= set(operations)
    assert "card_data_refused" in operations["post"]["description"]
    assert "delete" in schema["paths"]["/api/v1/accounts/{account_id}/payment-methods/{method_id}"]
    fields = schema["components"]["schemas"]["SavedPaymentMethodIn"]["properties"]
    assert {"provider", "provider_token_id", "brand", "last4", "expiry_month", "expiry_year"} <= set(fields)
    assert not {"number", "card_number", "cvc"} & set(fields)
