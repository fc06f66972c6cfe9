"""What the e-mails say is what happened: a request to join an existing account is announced and decided as that; a
registrant who was refused and tries again is told so, with every account of the address; a first password chosen
at activation is no "password changed"; a password staff set says staff set it; a new contact's first e-mail is a
welcome with its activation link. Read from the delivered mail (the mail folder, or a real SMTP server)."""

from __future__ import annotations

import re
from email.message import EmailMessage

from fastapi.testclient import TestClient
from sqlalchemy import select

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.models import AuditEvent
from tests import factories as f
from tests.mailbox import deliver_and_read, links, text_of, wait_for
from tests.test_approval import smtp  # noqa: F401 (fixture)
from tests.test_console_pages import post, sign_in
from tests.test_new_contact import add, claim, customer
from tests.test_registration_api import PASSWORD, body, url

NEW_PASSWORD = "Quiet-Harbour-Lamp-42"


def said(message: EmailMessage) -> str:
    """The plain text of a message on one line (the templates wrap long sentences)."""
    return " ".join(text_of(message).split())


def delivered(db, mail_dir) -> list[EmailMessage]:
    """The messages the outbox delivers now (older ones in the folder are removed first)."""
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    return deliver_and_read(db, mail_dir)


def token_of(message: EmailMessage, path: str) -> str:
    [link] = [u for u in links(message) if path in u]
    return link.split("token=", 1)[1]


# --- 1. a login on an existing account, announced and decided as that ------------------------------------------------

def test_a_request_to_join_an_account_is_approved_in_the_console_as_a_login_on_that_account(db, client, mail_dir):
    store = f.storefront(db, name="Trade Shop", new_contact_requires_approval=True,
                         staff_notification_to="sales@shop.test")
    account = customer(db, store)
    token = claim(client, store, account_number=account.number, postcode="62701",
                  invoice_number="INV-1001").json()["claim_token"]
    assert add(client, store, token).status_code == 202
    [notice] = [m for m in delivered(db, mail_dir) if m["To"] == "sales@shop.test"]
    assert notice["Subject"] == f"New login request for account {account.number} on Trade Shop"
    with db.transaction() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.email == "homer@example.com"))

    sign_in(client, f.staff(db, "approver"))
    done = post(client, f"/console/approvals/contacts/{contact_id}/approve", {"confirmed": "yes"})
    assert done.status_code == 303
    shown = client.get(done.headers["location"]).text
    assert (f"Approved Homer Simpson for the account Springfield Hardware ({account.number}); they were told they "
            "may sign in to it.") in shown
    [approved] = delivered(db, mail_dir)
    assert approved["Subject"] == "Your login for Springfield Hardware on Trade Shop is approved"
    assert "You can now sign in to Trade Shop" in said(approved) and "account request" not in said(approved)
    signed = client.post(f"/api/v1/storefronts/{store.slug}/sessions",
                         json={"email": "homer@example.com", "password": PASSWORD})
    assert signed.status_code == 201 and signed.json()["account"]["id"] == account.id


# --- 2. a known e-mail registering again -----------------------------------------------------------------------------

def test_a_rejected_registrant_who_registers_again_is_told_the_truth(db, client, mail_dir):
    store = f.storefront(db, name="Trade Shop", registration_mode="approval")
    assert client.post(url(store), json=body()).status_code == 202
    with db.transaction() as session:
        refused = session.scalar(select(Account))
    headers = f.token(client, f.staff(db, "approver"))
    assert client.post(f"/api/v1/registrations/{refused.id}/reject", json={"reason": "Trade only."},
                       headers=headers).status_code == 200
    delivered(db, mail_dir)

    again = client.post(url(store), json=body(company_name="Acme Widgets Again"))
    stranger = client.post(url(store), json=body(email="grace@example.com"))
    assert again.status_code == stranger.status_code == 202 and again.json() == stranger.json()  # no enumeration
    [told] = [m for m in delivered(db, mail_dir) if m["To"] == "ada@example.com"]
    assert told["Subject"] == "Registration attempt with your e-mail address on Trade Shop"
    text = said(told)
    assert f"- Acme Widgets Ltd ({refused.number}): your request was not approved" in text
    assert "cannot change a decision" in text
    assert "simply sign in" not in text and "You already have a login" not in text
    assert not [u for u in links(told) if u.endswith("/sign-in")]


def test_the_registration_attempt_lists_every_account_of_the_address(db, client, mail_dir):
    store = f.storefront(db, name="Trade Shop", registration_mode="approval")
    active = f.account(db, name="Harbour Tools", storefront_id=store.id)
    f.contact(db, active, store, email="ada@example.com", first_name="Ada", last_name="Lovelace")
    waiting = f.account(db, name="Lovelace Labs", storefront_id=store.id, status="pending_approval")
    f.contact(db, waiting, store, email="ada@example.com", status="pending_approval")
    closed = f.account(db, name="Old Mill", storefront_id=store.id, status="inactive")
    f.contact(db, closed, store, email="ada@example.com")
    elsewhere = f.storefront(db)  # another storefront's login is not this storefront's business
    f.contact(db, f.account(db, name="Other Shop Ltd", storefront_id=elsewhere.id), elsewhere, email="ada@example.com")

    assert client.post(url(store), json=body()).status_code == 202
    [told] = delivered(db, mail_dir)
    text = said(told)
    assert f"- Harbour Tools ({active.number}): you can sign in to it" in text
    assert f"- Lovelace Labs ({waiting.number}): your request is waiting for approval" in text
    assert f"- Old Mill ({closed.number}): this account is closed" in text
    assert "Other Shop Ltd" not in text
    assert "If it was you, simply sign in:" in text
    assert any(u.endswith(f"/s/{store.slug}/sign-in") for u in links(told))
    with db.transaction() as session:
        assert session.scalar(select(Account.id).where(Account.name == "Acme Widgets Ltd")) is None


# --- 3. passwords and the first e-mail of a new contact --------------------------------------------------------------

def test_a_new_contact_gets_a_welcome_and_choosing_the_first_password_is_no_change(db, client, mail_dir):
    store = f.storefront(db, name="Trade Shop")
    account = f.account(db, name="Harbour Tools", storefront_id=store.id)
    headers = f.token(client, f.staff(db, "csr"))
    made = client.post(f"/api/v1/accounts/{account.id}/contacts", headers=headers, json={
        "first_name": "Tom", "last_name": "Reed", "email": "tom@example.com", "phone": "+44 20 7946 0100"})
    assert made.status_code == 201 and made.json()["has_password"] is False
    contact = made.json()["id"]

    sent = client.post(f"/api/v1/accounts/{account.id}/contacts/{contact}/password-reset", headers=headers)
    assert sent.json() == {"status": "sent", "email": "activation"}
    [welcome] = delivered(db, mail_dir)
    assert welcome["Subject"] == "Welcome to Trade Shop: activate your login"
    assert "Someone asked to reset" not in said(welcome)
    activated = client.post(f"/api/v1/storefronts/{store.slug}/activations",
                            json={"token": token_of(welcome, "/activate?token="), "password": NEW_PASSWORD})
    assert activated.status_code == 200, activated.text
    assert delivered(db, mail_dir) == []  # setting the first password changed nothing anybody should be warned of

    # a later change is one: the owner hears of it
    assert client.post(f"/api/v1/storefronts/{store.slug}/password-resets",
                       json={"email": "tom@example.com"}).status_code == 202
    [reset] = delivered(db, mail_dir)
    assert reset["Subject"] == "Reset your password for Trade Shop"
    assert client.post(f"/api/v1/storefronts/{store.slug}/password-resets/complete", json={
        "token": token_of(reset, "/password/reset?token="), "password": "Another-Quiet-Lamp-43"}).status_code == 200
    [changed] = delivered(db, mail_dir)
    assert changed["Subject"] == "Your Trade Shop password was changed"
    with db.transaction() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "contact",
                                                                  AuditEvent.subject_id == contact)).all()
        assert actions.count("contact.password_set") == 1 and actions.count("contact.password_changed") == 1


def test_the_console_sends_a_new_contact_its_welcome_not_a_reset(db, client, mail_dir):
    store = f.storefront(db, name="Trade Shop")
    account = f.account(db, storefront_id=store.id)
    fresh = f.contact(db, account, store, email="new@example.com", password=None)
    known = f.contact(db, account, store, email="known@example.com")
    sign_in(client, f.staff(db, "csr"))
    for contact, flash, template in (
            (fresh, "Welcome e-mail with an activation link sent to new@example.com.", "/activate?token="),
            (known, "Reset link sent to known@example.com.", "/password/reset?token=")):
        done = post(client, f"/console/accounts/{account.id}/contacts/{contact.id}/reset", {"confirmed": "yes"})
        assert done.status_code == 303 and flash in client.get(done.headers["location"]).text
        [message] = delivered(db, mail_dir)
        assert message["To"] == contact.email and token_of(message, template)


def test_a_password_staff_set_tells_the_customer_staff_set_it(db, smtp):
    client, sink = smtp
    store = f.storefront(db, name="Trade Shop", allow_manual_password=True)
    account = f.account(db, name="Harbour Tools", storefront_id=store.id)
    contact = f.contact(db, account, store, email="tom@example.com", first_name="Tom", last_name="Reed")
    headers = f.token(client, f.staff(db, "csr"))

    entered = client.put(f"/api/v1/accounts/{account.id}/contacts/{contact.id}/password",
                         json={"password": NEW_PASSWORD}, headers=headers)

    assert entered.status_code == 204
    [message] = wait_for(lambda: sink.to("tom@example.com"))
    assert message["Subject"] == "Our team set a new password for your Trade Shop login"
    text = said(message)
    assert re.search(r"A member of the Trade Shop team set a new password for your login for Harbour Tools on "
                     r"\d\d/\d\d/\d{4} \d\d:\d\d UTC", text)
    assert "If you made this change" not in text
    assert any(u.endswith(f"/s/{store.slug}/password/forgot") for u in links(message))
    assert client.post(f"/api/v1/storefronts/{store.slug}/sessions", json={
        "email": "tom@example.com", "password": NEW_PASSWORD}).status_code == 201


def test_the_mails_speak_the_contacts_language(db, app, mail_dir):
    store = f.storefront(db, name="Boutique Pro", new_contact_requires_approval=True)
    account = customer(db, store)
    with TestClient(app) as visitor:
        token = claim(visitor, store, account_number=account.number, postcode="62701",
                      invoice_number="INV-1001").json()["claim_token"]
        assert add(visitor, store, token, language="fr").status_code == 202
        with db.transaction() as session:
            contact_id = session.scalar(select(Contact.id).where(Contact.email == "homer@example.com"))
        headers = f.token(visitor, f.staff(db, "approver"))
        delivered(db, mail_dir)
        assert visitor.post(f"/api/v1/contact-requests/{contact_id}/reject", json={"reason": "Non."},
                            headers=headers).status_code == 200
    [refused] = delivered(db, mail_dir)
    assert refused["Subject"] == "Votre demande pour rejoindre Springfield Hardware sur Boutique Pro"
    assert ("Malheureusement, votre demande d'accès au compte Springfield Hardware sur Boutique Pro n'a pas été "
            "acceptée.") in said(refused)
