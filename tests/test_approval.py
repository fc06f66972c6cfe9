"""Approval workflow: a waiting registration, staff notices (to, cc, bcc), the queue, approve and reject with the
e-mails they send, one decision only, and who may decide."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from accountdesk.accounts.models import Account
from accountdesk.app import create_app
from accountdesk.contacts.models import Contact
from accountdesk.core.models import AuditEvent, OutboxMessage
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.conftest import free_port
from tests.mailbox import SmtpSink, deliver_and_read, links, start_smtp, text_of, wait_for
from tests.test_registration_api import PASSWORD, body, url


@pytest.fixture
def smtp(settings, db) -> Iterator[tuple[TestClient, SmtpSink]]:
    """The app delivering its mail through its outbox worker to an SMTP server on loopback."""
    port = free_port()
    controller, sink = start_smtp(port)
    smtp_settings = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}", "outbox_poll_seconds": 0.1,
                                                "base_url": "http://testserver"})
    try:
        with TestClient(create_app(smtp_settings, db, run_worker=True), base_url="http://testserver") as client:
            yield client, sink
    finally:
        controller.stop()


def pending(db, client, store, **over) -> Account:
    assert client.post(url(store), json=body(**over)).status_code == 202
    with db.transaction() as session:
        return session.scalars(select(Account).order_by(Account.id.desc())).first()


def emails(db) -> list[tuple[str, list[str]]]:
    with db.transaction() as session:
        return [(m.payload["template"], m.payload["to"]) for m in session.scalars(select(OutboxMessage)
                                                                                   .order_by(OutboxMessage.id))]


def test_approval_registration_waits_and_tells_registrant_and_staff(db, smtp):
    client, sink = smtp
    store = f.storefront(db, name="Trade Shop", registration_mode="approval", staff_notification_to="sales@shop.test",
                         staff_notification_cc="boss@shop.test; manager@shop.test",
                         staff_notification_bcc="audit@shop.test")
    response = client.post(url(store), json=body())
    assert response.status_code == 202 and response.json()["registration_mode"] == "approval"
    assert f"accountdesk_sf_{store.slug}" not in response.cookies
    with db.transaction() as session:
        account, contact = session.scalar(select(Account)), session.scalar(select(Contact))
        assert account.status == "pending_approval" and contact.status == "pending_approval"
    refused = client.post(f"/api/v1/storefronts/{store.slug}/sessions",
                          json={"email": "ada@example.com", "password": PASSWORD})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "approval_pending"
    [notice] = wait_for(lambda: sink.to("audit@shop.test"))
    assert notice["To"] == "sales@shop.test" and notice["Cc"] == "boss@shop.test, manager@shop.test"
    assert notice["Bcc"] is None and sink.to("manager@shop.test") and sink.to("sales@shop.test")
    assert notice["Subject"] == "New account request on Trade Shop: Acme Widgets Ltd"
    assert f"http://testserver/console/approvals/{account.id}" in links(notice)
    assert "Ada Lovelace <ada@example.com>" in text_of(notice) and account.number in text_of(notice)
    received = wait_for(lambda: len(sink.to("ada@example.com")) == 2 and sink.to("ada@example.com"))
    subjects = sorted(m["Subject"] for m in received)
    assert subjects == ["Confirm your e-mail address for Trade Shop", "We received your account request for Trade Shop"]


def test_staff_notices_speak_each_staff_readers_language(db, smtp):
    """A staff user among the notice's addresses reads it in their own language, greeting included; an address of
    no staff user (a shared inbox) reads it in the storefront's language; each keeps its To, Cc or Bcc place."""
    client, sink = smtp
    judge = f.staff(db, "approver", email="judith@shop.test")
    with db.transaction() as session:
        session.execute(update(StaffUser).where(StaffUser.id == judge.id).values(language="de"))
    store = f.storefront(db, name="Trade Shop", registration_mode="approval", staff_notification_to="sales@shop.test",
                         staff_notification_cc="Judith@shop.test", staff_notification_bcc="audit@shop.test")
    assert client.post(url(store), json=body()).status_code == 202
    [german] = wait_for(lambda: sink.to("Judith@shop.test"))
    [english] = wait_for(lambda: sink.to("sales@shop.test"))
    assert german["Subject"] == "Neue Kontoanfrage bei Trade Shop: Acme Widgets Ltd"
    assert german["Content-Language"] == "de" and german["Cc"] == "Judith@shop.test"
    assert german["To"] == "undisclosed-recipients:;" and german["Bcc"] is None
    assert text_of(german).startswith("Hallo Team von Trade Shop,") and "team" not in text_of(german)
    assert "Hallo Team von Trade Shop," in german.get_body(preferencelist=("html",)).get_content()
    assert english["Content-Language"] == "en" and text_of(english).startswith("Hello Trade Shop team,")
    assert sink.to("audit@shop.test") == [english]


def test_without_configured_addresses_the_approvers_are_told(db, client):
    store = f.storefront(db, registration_mode="approval")
    approver, _csr = f.staff(db, "approver"), f.staff(db, "csr")
    admin = f.staff(db, "admin")
    pending(db, client, store)
    [(_, to)] = [m for m in emails(db) if m[0] == "new_account_request"]
    assert sorted(to) == sorted([approver.email, admin.email])


def test_approvers_told_without_configured_addresses_read_the_notice_in_their_language(db, client):
    store = f.storefront(db, registration_mode="approval", default_language="de")
    french, english = f.staff(db, "approver"), f.staff(db, "admin")
    with db.transaction() as session:
        session.execute(update(StaffUser).where(StaffUser.id == french.id).values(language="fr"))
    pending(db, client, store)
    with db.transaction() as session:
        notices = {tuple(m.payload["to"]): m.payload["language"] for m in session.scalars(
            select(OutboxMessage)) if m.payload["template"] == "new_account_request"}
    assert notices == {(french.email,): "fr", (english.email,): "en"}


def test_approve_activates_and_mails_the_sign_in_link_once(db, client, mail_dir):
    store = f.storefront(db, name="Trade Shop", registration_mode="approval")
    headers = f.token(client, f.staff(db, "approver", email="judy@staff.example"))
    account = pending(db, client, store)
    deliver_and_read(db, mail_dir)
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    queue = client.get("/api/v1/registrations", headers=headers).json()
    assert [item["account_id"] for item in queue["items"]] == [account.id] and queue["total"] == 1
    item = queue["items"][0]
    assert item["storefront_name"] == "Trade Shop" and item["billing_address"]["postcode"] == "62701"
    assert item["contacts"][0]["email"] == "ada@example.com" and item["contacts"][0]["status"] == "pending_approval"
    approved = client.post(f"/api/v1/registrations/{account.id}/approve", headers=headers)
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    assert approved.json()["contacts"][0]["status"] == "active"
    again = client.post(f"/api/v1/registrations/{account.id}/approve", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"
    late_reject = client.post(f"/api/v1/registrations/{account.id}/reject", json={"reason": "x"}, headers=headers)
    assert late_reject.status_code == 409
    [message] = deliver_and_read(db, mail_dir)
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your Trade Shop account has been approved"
    assert f"http://127.0.0.1:8000/s/{store.slug}/sign-in" in links(message)
    signed_in = client.post(f"/api/v1/storefronts/{store.slug}/sessions",
                            json={"email": "ada@example.com", "password": PASSWORD})
    assert signed_in.status_code == 201, signed_in.text
    assert client.get("/api/v1/registrations", headers=headers).json()["items"] == []
    with db.transaction() as session:
        events = {(e.action, e.actor_label) for e in session.scalars(select(AuditEvent))}
        assert {("registration.approved", "judy@staff.example"), ("contact.approved", "judy@staff.example")} <= events


def test_reject_deactivates_and_mails_the_reason(db, client, mail_dir):
    store = f.storefront(db, registration_mode="approval")
    headers = f.token(client, f.staff(db, "admin"))
    account = pending(db, client, store)
    deliver_and_read(db, mail_dir)
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    no_reason = client.post(f"/api/v1/registrations/{account.id}/reject", json={"reason": "  "}, headers=headers)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["error"]["fields"]
    reason = "We only sell to registered pharmacies."
    rejected = client.post(f"/api/v1/registrations/{account.id}/reject", json={"reason": reason}, headers=headers)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["contacts"][0]["status"] == "deactivated"
    assert client.post(f"/api/v1/registrations/{account.id}/approve", headers=headers).status_code == 409
    [message] = deliver_and_read(db, mail_dir)
    assert message["To"] == "ada@example.com" and f"Reason: {reason}" in text_of(message)
    listed = client.get("/api/v1/registrations", params={"status": "rejected"}, headers=headers).json()
    assert [i["account_id"] for i in listed["items"]] == [account.id]
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "registration.rejected"))
        assert event.note == reason and event.changes == {"status": ["pending_approval", "rejected"]}


def test_queue_filters_by_storefront_and_search(db, client):
    north = f.storefront(db, registration_mode="approval")
    south = f.storefront(db, registration_mode="approval")
    headers = f.token(client, f.staff(db, "approver"))
    a = pending(db, client, north, company_name="Alpha Pharmacy", email="alpha@example.com")
    b = pending(db, client, south, company_name="Beta Bakery", email="beta@example.com")
    c = pending(db, client, south, company_name="Gamma Pharmacy", email="gamma@example.com")
    f.account(db, storefront_id=south.id, name="Delta Pharmacy")  # active: not a request

    def ids(**params) -> list[int]:
        return [i["account_id"] for i in client.get("/api/v1/registrations", params=params, headers=headers)
                .json()["items"]]

    assert ids() == [a.id, b.id, c.id]
    assert ids(storefront=south.id) == [b.id, c.id]
    assert ids(q="pharmacy") == [a.id, c.id]
    assert ids(q="pharmacy", storefront=south.id) == [c.id]
    assert ids(q="beta@example") == [b.id]
    assert ids(per_page=1, page=2) == [b.id]
    assert client.get(f"/api/v1/registrations/{b.id}", headers=headers).json()["name"] == "Beta Bakery"


def test_only_approvers_and_admins_decide(db, client):
    store = f.storefront(db, registration_mode="approval")
    account = pending(db, client, store)
    csr = f.token(client, f.staff(db, "csr"))
    reseller = f.account(db, kind="reseller")
    reseller_staff = f.token(client, f.staff(db, "reseller_admin", reseller_account_id=reseller.id))
    approve = f"/api/v1/registrations/{account.id}/approve"
    assert client.post(approve).status_code == 401
    for headers in (csr, reseller_staff):
        refused = client.post(approve, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_forbidden"
        assert client.get("/api/v1/registrations", headers=headers).status_code == 403
    with db.transaction() as session:
        assert session.get(Account, account.id).status == "pending_approval"
    approver = f.token(client, f.staff(db, "approver"))
    assert client.post("/api/v1/registrations/999999/approve", headers=approver).status_code == 404
    assert client.post(approve, headers=approver).status_code == 200


def test_console_queue_is_for_approvers_and_admins(db, client):
    store = f.storefront(db, registration_mode="approval")
    account = pending(db, client, store)

    def console_as(role: str) -> TestClient:
        user = f.staff(db, role)
        browser = TestClient(client.app)
        form = browser.get("/console/sign-in").text
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed = browser.post("/console/sign-in", data={"csrf_token": token, "email": user.email,
                                                        "password": f.PASSWORD})
        assert signed.status_code == 200, signed.text
        return browser

    csr = console_as("csr")
    assert csr.get("/console/approvals").status_code == 403
    assert csr.get(f"/console/approvals/{account.id}").status_code == 403
    assert "/console/approvals" not in csr.get("/console/accounts").text
    approver = console_as("approver")
    queue = approver.get("/console/approvals")
    assert queue.status_code == 200 and 'href="/console/approvals"' in queue.text and account.number in queue.text
    detail = approver.get(f"/console/approvals/{account.id}").text
    token = detail.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert approver.post(f"/console/approvals/{account.id}/approve", data={"csrf_token": "x"}).status_code == 403
    done = approver.post(f"/console/approvals/{account.id}/approve", data={"csrf_token": token, "confirmed": "yes"})
    assert done.status_code == 200 and "Approved Acme Widgets Ltd" in done.text
    twice = approver.post(f"/console/approvals/{account.id}/approve", data={"csrf_token": token, "confirmed": "yes"})
    assert "This request has already been decided." in twice.text
    assert [t for t, _ in emails(db)].count("registration_approved") == 1
