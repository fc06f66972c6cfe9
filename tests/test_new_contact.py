"""A new contact for an existing account: the proof (number + billing postcode + recent invoice), one generic
refusal, failure limits, the login created active or waiting for approval, and a known e-mail on that account."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from tests import factories as f
from tests.mailbox import deliver_and_read, links, text_of
from tests.test_registration_api import PASSWORD, signed_in

NOT_MATCHED = {"error": {"code": "account_not_matched", "message": "We could not match these details to an account."}}


def invoice(db, account: Account, number: str, days_ago: int) -> None:
    with db.transaction() as session:
        accounts.record_invoice(session, Actor.system(), session.get(Account, account.id),
                                {"number": number, "issued_on": date.today() - timedelta(days=days_ago)})


def customer(db, store, **fields: Any) -> Account:
    account = f.account(db, billing={"line1": "742 Evergreen Terrace", "city": "Springfield", "region": "US-IL",
                                     "postcode": "62701", "country": "US"},
                        **{"name": "Springfield Hardware", "storefront_id": store.id, **fields})
    invoice(db, account, "INV-1001", days_ago=30)
    invoice(db, account, "INV-0001", days_ago=400)
    return account


def claim(client, store, **over: str):
    return client.post(f"/api/v1/storefronts/{store.slug}/account-claims", json=over)


def person(**over: Any) -> dict[str, Any]:
    return {"first_name": "Homer", "last_name": "Simpson", "email": "homer@example.com", "phone": "217 555 0199",
            "password": PASSWORD, **over}


def add(client, store, token: str, **over: Any):
    return client.post(f"/api/v1/storefronts/{store.slug}/account-claims/{token}/contacts", json=person(**over))


def test_claim_shows_the_account_then_creates_an_active_signed_in_buyer(db, client, mail_dir):
    store = f.storefront(db, sign_in_after_registration=True)
    account = customer(db, store)
    proof = claim(client, store, account_number=account.number.lower(), postcode=" 62701 ", invoice_number="inv-1001")
    assert proof.status_code == 200, proof.text
    assert proof.json()["account"] == {"name": "Springfield Hardware", "number": account.number, "city": "Springfield",
                                       "country": "US"}
    assert proof.json()["expires_in"] == 1800
    token = proof.json()["claim_token"]
    weak = add(client, store, token, password="short", phone="12")
    assert weak.status_code == 422 and {"password", "phone"} <= set(weak.json()["error"]["fields"])
    created = add(client, store, token)
    assert created.status_code == 202, created.text
    assert created.json()["account_name"] == "Springfield Hardware"
    assert signed_in(client, store)["account"]["id"] == account.id
    with db.transaction() as session:
        contact = session.scalar(select(Contact))
        assert (contact.account_id, contact.role, contact.status, contact.phone) == (
            account.id, "buyer", "active", "+12175550199")
    used = add(client, store, token, email="marge@example.com")
    assert used.status_code == 422 and used.json()["error"]["code"] == "claim_expired"
    [message] = deliver_and_read(db, mail_dir)
    assert message["To"] == "homer@example.com" and any("/verify-email?token=" in link for link in links(message))


def test_every_wrong_detail_gets_the_same_answer(db, client):
    store, other_store = f.storefront(db), f.storefront(db)
    account = customer(db, store)
    foreign = customer(db, other_store)
    good = {"account_number": account.number, "postcode": "62701", "invoice_number": "INV-1001"}
    wrong = [
        {**good, "account_number": "W999999"},
        {**good, "postcode": "62702"},
        {**good, "invoice_number": "INV-9999"},
        {**good, "account_number": foreign.number},  # an account of another storefront
    ]
    answers = [claim(client, store, **details) for details in wrong]
    assert {a.status_code for a in answers} == {422}
    assert all(a.json() == NOT_MATCHED for a in answers)
    other_client = TestClient(client.app, client=("203.0.113.9", 4000))
    assert claim(other_client, store, **good).status_code == 200


def test_old_invoices_and_inactive_accounts_are_refused(db, client):
    store = f.storefront(db, invoice_window_days=90)
    account = customer(db, store)
    old = claim(client, store, account_number=account.number, postcode="62701", invoice_number="INV-0001")
    assert old.json() == NOT_MATCHED
    unbound = customer(db, store, storefront_id=None)
    assert claim(client, store, account_number=unbound.number, postcode="62701",
                 invoice_number="INV-1001").status_code == 200
    inactive = customer(db, store, status="inactive")
    assert claim(client, store, account_number=inactive.number, postcode="62701",
                 invoice_number="INV-1001").json() == NOT_MATCHED


def test_an_account_without_storefront_is_claimed_only_on_its_own_tenants_storefronts(db, client):
    reseller, other = f.account(db, kind="reseller"), f.account(db, kind="reseller")
    shop, other_shop, operator_shop = (f.storefront(db, reseller_account_id=reseller.id),
                                       f.storefront(db, reseller_account_id=other.id), f.storefront(db))
    theirs = customer(db, shop, storefront_id=None, parent_reseller_id=reseller.id)
    ours = customer(db, operator_shop, storefront_id=None)
    proof = {"postcode": "62701", "invoice_number": "INV-1001"}
    visitors = (TestClient(client.app, client=(f"198.51.100.{n}", 4000)) for n in range(1, 7))  # under the limits
    for store, account in ((other_shop, theirs), (operator_shop, theirs), (shop, ours), (other_shop, ours)):
        assert claim(next(visitors), store, account_number=account.number, **proof).json() == NOT_MATCHED, store.slug
    assert claim(next(visitors), shop, account_number=theirs.number, **proof).status_code == 200
    assert claim(next(visitors), operator_shop, account_number=ours.number, **proof).status_code == 200


def test_five_failures_per_address_or_per_account_number_give_429(db, client):
    store = f.storefront(db)
    account = customer(db, store)
    good = {"account_number": account.number, "postcode": "62701", "invoice_number": "INV-1001"}
    for n in range(5):
        assert claim(client, store, **{**good, "invoice_number": f"X{n}"}).status_code == 422
    limited = claim(client, store, **good)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    # the account number is locked for everybody, even with the right details from another address
    elsewhere = TestClient(client.app, client=("198.51.100.7", 4000))
    assert claim(elsewhere, store, **good).status_code == 429
    second = customer(db, store)
    assert claim(elsewhere, store, account_number=second.number, postcode="62701",
                 invoice_number="INV-1001").status_code == 200


def test_contact_waiting_for_approval_is_notified_and_decided_once(db, client, mail_dir):
    store = f.storefront(db, name="Trade Shop", new_contact_requires_approval=True,
                         staff_notification_to="sales@shop.test")
    account = customer(db, store)
    token = claim(client, store, account_number=account.number, postcode="62701",
                  invoice_number="INV-1001").json()["claim_token"]
    created = add(client, store, token)
    assert created.status_code == 202 and "waiting for approval" in created.json()["message"]
    assert signed_in(client, store) is None
    with db.transaction() as session:
        contact = session.scalar(select(Contact))
        assert contact.status == "pending_approval"
    messages = {m["Subject"]: m for m in deliver_and_read(db, mail_dir)}
    # announced as what it is: a login on an existing account, not a new account
    notice = messages[f"New login request for account {account.number} on Trade Shop"]
    assert notice["To"] == "sales@shop.test"
    assert f"http://127.0.0.1:8000/console/approvals/contacts/{contact.id}" in links(notice)
    said = " ".join(text_of(notice).split())
    assert (f"Homer Simpson (homer@example.com) asks for a login on the existing account Springfield Hardware "
            f"({account.number}) on Trade Shop. No new account is opened") in said
    assert not any("New account request" in subject for subject in messages)
    assert messages["Your request to join Springfield Hardware on Trade Shop"]["To"] == "homer@example.com"
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    headers = f.token(client, f.staff(db, "approver"))
    queue = client.get("/api/v1/contact-requests", headers=headers).json()
    assert [(r["contact"]["id"], r["account_number"]) for r in queue] == [(contact.id, account.number)]
    assert client.post(f"/api/v1/contact-requests/{contact.id}/approve", headers=headers).status_code == 200
    again = client.post(f"/api/v1/contact-requests/{contact.id}/reject", json={"reason": "no"}, headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"
    [approved] = deliver_and_read(db, mail_dir)
    assert approved["To"] == "homer@example.com"
    assert approved["Subject"] == "Your login for Springfield Hardware on Trade Shop is approved"
    told = " ".join(text_of(approved).split())
    assert "your request to join the account Springfield Hardware has been approved" in told
    assert "work for Springfield Hardware" in told and "account request" not in told
    assert f"http://127.0.0.1:8000/s/{store.slug}/sign-in" in links(approved)
    assert client.get("/api/v1/contact-requests", headers=headers).json() == []


def test_rejected_contact_request_gets_the_reason(db, client, mail_dir):
    store = f.storefront(db, new_contact_requires_approval=True)
    account = customer(db, store)
    token = claim(client, store, account_number=account.number, postcode="62701",
                  invoice_number="INV-1001").json()["claim_token"]
    add(client, store, token)
    deliver_and_read(db, mail_dir)
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    with db.transaction() as session:
        contact_id = session.scalar(select(Contact.id))
    headers = f.token(client, f.staff(db, "admin"))
    rejected = client.post(f"/api/v1/contact-requests/{contact_id}/reject",
                           json={"reason": "Please ask your account administrator."}, headers=headers)
    assert rejected.status_code == 200 and rejected.json()["contact"]["status"] == "deactivated"
    [message] = deliver_and_read(db, mail_dir)
    assert "Reason: Please ask your account administrator." in text_of(message)
    assert "your request for a login on the account Springfield Hardware" in " ".join(text_of(message).split())
    assert "account request" not in text_of(message)


def test_known_email_on_the_account_gets_the_same_answer(db, client, mail_dir):
    store = f.storefront(db)
    account = customer(db, store)
    f.contact(db, account, store, email="homer@example.com", password="a-different-secret-55")

    def token() -> str:
        return claim(client, store, account_number=account.number, postcode="62701",
                     invoice_number="INV-1001").json()["claim_token"]

    known = add(client, store, token())
    fresh = add(client, store, token(), email="bart@example.com")
    assert known.status_code == fresh.status_code == 202
    assert known.json()["message"] == fresh.json()["message"]
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Contact).where(
            Contact.email == "homer@example.com")) == 1
    subjects = {m["To"]: m["Subject"] for m in deliver_and_read(db, mail_dir)}
    assert subjects["homer@example.com"].startswith("Registration attempt with your e-mail address")


def test_switched_off(db, client):
    store = f.storefront(db, new_contact_for_existing_account=False)
    account = customer(db, store)
    refused = claim(client, store, account_number=account.number, postcode="62701", invoice_number="INV-1001")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "new_contact_disabled"
