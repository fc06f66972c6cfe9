"""The password lifecycle: forgot password, reset and activation links delivered by real mail and followed,
single use, expiry, the storefront's policy, sessions ended and "password changed" told."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from accountdesk.app import create_app
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.core.db import utcnow
from accountdesk.core.models import SingleUseToken
from accountdesk.core.settings import Settings
from tests import factories as f
from tests.conftest import free_port
from tests.mailbox import SmtpSink, deliver_and_read, links, start_smtp, text_of, wait_for
from tests.test_storefront_sign_in import CSRF, api_sign_in, bearer, form_token

NEW_PASSWORD = "a-brand-new-passphrase-77"


@pytest.fixture
def smtp(settings, db) -> Iterator[tuple[TestClient, SmtpSink]]:
    """The app sending its mail over SMTP to an aiosmtpd server on loopback, through its own outbox worker."""
    port = free_port()
    controller, sink = start_smtp(port)
    smtp_settings = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}", "base_url": "http://testserver",
                                                "outbox_poll_seconds": 0.1})
    try:
        with TestClient(create_app(smtp_settings, db, run_worker=True), base_url="http://testserver") as client:
            yield client, sink
    finally:
        controller.stop()


def at_testserver(settings: Settings) -> Settings:
    """The settings with the TestClient's address in the links that e-mails carry."""
    return settings.model_copy(update={"base_url": "http://testserver"})


def link_in_mail(sink: SmtpSink, address: str, path: str) -> str:
    """A link to `path` in the mail delivered to `address`, waiting for the outbox worker to send it."""
    return wait_for(lambda: [link for m in sink.to(address) for link in links(m) if path in link])[-1]


def set_password_by_page(client: TestClient, link: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    form = client.get(link)
    assert form.status_code == 200, form.text
    token = link.split("token=", 1)[1]
    action = "/activate" if "/activate" in link else "/password/reset"
    slug = link.split("/s/", 1)[1].split("/", 1)[0]
    return client.post(f"/s/{slug}{action}", data={"csrf_token": CSRF.search(form.text).group(1), "token": token,
                                                   "password": password, "password_confirm": confirm or password})


def test_forgot_password_answers_the_same_for_known_and_unknown_emails(db, client, mail_dir):
    store = f.storefront(db, name="Parts Depot")
    first = f.contact(db, f.account(db, storefront_id=store.id, name="First Co"), store, email="lee@example.com")
    second = f.contact(db, f.account(db, storefront_id=store.id, name="Second Co"), store, email="lee@example.com")
    f.contact(db, f.account(db, storefront_id=store.id), store, email="lee@example.com", status="deactivated")
    elsewhere = f.storefront(db)
    f.contact(db, f.account(db, storefront_id=elsewhere.id), elsewhere, email="lee@example.com")
    url = f"/api/v1/storefronts/{store.slug}/password-resets"
    known = client.post(url, json={"email": "LEE@example.com"})
    unknown = client.post(url, json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202 and known.json() == unknown.json() == {"status": "sent"}
    pages = []
    for email in ("lee@example.com", "nobody@example.com"):
        token = form_token(client, f"/s/{store.slug}/password/forgot")
        pages.append(client.post(f"/s/{store.slug}/password/forgot", data={"csrf_token": token, "email": email}))
    assert pages[0].status_code == pages[1].status_code == 200
    assert CSRF.sub("", pages[0].text) == CSRF.sub("", pages[1].text) and "Check your e-mail" in pages[0].text
    messages = deliver_and_read(db, mail_dir)
    assert [m["To"] for m in messages] == ["lee@example.com"] * 4  # two contacts, asked twice; not the others
    assert {"First Co", "Second Co"} <= {c for m in messages for c in ("First Co", "Second Co") if c in text_of(m)}
    with db.transaction() as session:
        owners = session.scalars(select(SingleUseToken.contact_id).where(SingleUseToken.used_at.is_(None))).all()
    assert set(owners) == {first.id, second.id}


def test_forgot_password_is_rate_limited_per_email(db, client):
    store = f.storefront(db)
    url = f"/api/v1/storefronts/{store.slug}/password-resets"
    for _ in range(5):
        assert client.post(url, json={"email": "flood@example.com"}).status_code == 202
    limited = client.post(url, json={"email": "flood@example.com"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    token = form_token(client, f"/s/{store.slug}/password/forgot")
    page = client.post(f"/s/{store.slug}/password/forgot", data={"csrf_token": token, "email": "flood@example.com"})
    assert page.status_code == 429 and "Too many attempts" in page.text


def test_staff_reset_mail_over_smtp_sets_a_new_password(db, smtp):
    """Issue 2: the reset mail sent by staff reaches a real SMTP server and its link sets a new password."""
    client, sink = smtp
    store = f.storefront(db, name="Kiosk")
    account = f.account(db, storefront_id=store.id)
    contact = f.contact(db, account, store, email="dana@example.com")
    headers = f.token(client, f.staff(db, "csr"))
    sent = client.post(f"/api/v1/accounts/{account.id}/contacts/{contact.id}/password-reset", headers=headers)
    assert sent.status_code == 202
    link = link_in_mail(sink, "dana@example.com", "/password/reset")
    assert link.startswith(f"http://testserver/s/{store.slug}/password/reset?token=")
    done = set_password_by_page(client, link)
    assert done.status_code == 200 and done.url.path == f"/s/{store.slug}/sign-in"
    assert "Your password was changed" in done.text
    assert api_sign_in(client, store, "dana@example.com", NEW_PASSWORD).status_code == 201
    assert api_sign_in(client, store, "dana@example.com", f.PASSWORD).status_code == 401


def test_forgot_password_link_over_smtp_is_single_use_and_ends_other_sessions(db, smtp):
    client, sink = smtp
    store = f.storefront(db)
    contact = f.contact(db, f.account(db, storefront_id=store.id), store, email="kim@example.com")
    old_session = api_sign_in(client, store, "kim@example.com")
    assert client.post(f"/api/v1/storefronts/{store.slug}/password-resets",
                       json={"email": "kim@example.com"}).status_code == 202
    link = link_in_mail(sink, "kim@example.com", "/password/reset")
    form = client.get(link)
    assert form.headers["referrer-policy"] == "no-referrer" and "kim@example.com" in form.text
    weak = set_password_by_page(client, link, "short")
    assert weak.status_code == 422 and "Use at least 12 characters." in weak.text
    differ = set_password_by_page(client, link, NEW_PASSWORD, confirm=NEW_PASSWORD + "x")
    assert differ.status_code == 422 and "The two passwords differ." in differ.text
    assert set_password_by_page(client, link).status_code == 200  # the link survived the refusals, once
    used = client.get(link)
    assert used.status_code == 422 and "This link has expired or was already used." in used.text
    again = client.post(f"/api/v1/storefronts/{store.slug}/password-resets/complete",
                        json={"token": link.split("token=")[1], "password": "yet-another-passphrase-9"})
    assert again.status_code == 422 and again.json()["error"]["code"] == "invalid_token"
    assert client.get(f"/api/v1/storefronts/{store.slug}/sessions/current",
                      headers=bearer(old_session)).status_code == 401
    changed = wait_for(lambda: [m for m in sink.to("kim@example.com") if "was changed" in m["Subject"]])
    assert f"/s/{store.slug}/password/forgot" in text_of(changed[0])
    with db.transaction() as session:
        assert session.get(Contact, contact.id).password_hash != contact.password_hash


def test_expired_or_foreign_reset_links_are_refused(db, client, mail_dir, settings):
    store, other = f.storefront(db), f.storefront(db)
    contact = f.contact(db, f.account(db, storefront_id=store.id), store)
    with db.transaction() as session:
        contacts.send_password_reset(session, Actor.system(), session.get(Contact, contact.id), at_testserver(settings))
    [message] = deliver_and_read(db, mail_dir)
    token = next(link for link in links(message) if "/password/reset" in link).split("token=")[1]
    foreign = client.post(f"/api/v1/storefronts/{other.slug}/password-resets/complete",
                          json={"token": token, "password": NEW_PASSWORD})
    assert foreign.status_code == 422 and foreign.json()["error"]["code"] == "invalid_token"
    assert client.get(f"/s/{other.slug}/password/reset", params={"token": token}).status_code == 422
    with db.transaction() as session:
        session.execute(update(SingleUseToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = client.get(f"/s/{store.slug}/password/reset", params={"token": token})
    assert expired.status_code == 422 and "Ask for a new link" in expired.text
    refused = client.post(f"/api/v1/storefronts/{store.slug}/password-resets/complete",
                          json={"token": token, "password": NEW_PASSWORD})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_token"
    assert api_sign_in(client, store, contact.email).status_code == 201  # the old password still works


def test_activation_link_sets_the_first_password_and_signs_in(db, client, mail_dir, settings):
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id, name="Fresh Start Ltd")
    invited = f.contact(db, account, store, password=None, status="invited", email="ivy@example.com")
    by_api = f.contact(db, f.account(db, storefront_id=store.id), store, password=None, status="invited")
    with db.transaction() as session:
        for contact in (invited, by_api):
            contacts.send_activation(session, Actor.system(), session.get(Contact, contact.id), at_testserver(settings))
    messages = deliver_and_read(db, mail_dir)
    link_of = {m["To"]: next(link for link in links(m) if "/activate" in link) for m in messages}
    assert api_sign_in(client, store, "ivy@example.com").status_code == 401  # no password yet
    home = set_password_by_page(client, link_of["ivy@example.com"])
    assert home.url.path == f"/s/{store.slug}" and "Your password is set. Welcome!" in home.text
    assert "Signed in as <strong>" in home.text and "Fresh Start Ltd" in home.text
    assert client.get(link_of["ivy@example.com"]).status_code == 422  # used
    url = f"/api/v1/storefronts/{store.slug}/activations"
    token = link_of[by_api.email].split("token=")[1]
    weak = client.post(url, json={"token": token, "password": "password1234"})
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "weak_password"
    assert client.post(url, json={"token": token, "password": NEW_PASSWORD}).json() == {"status": "activated"}
    assert api_sign_in(client, store, by_api.email, NEW_PASSWORD).status_code == 201
    with db.transaction() as session:
        assert session.get(Contact, invited.id).status == "active"
        assert session.get(Contact, invited.id).email_verified_at is not None


def test_change_password_keeps_this_session_and_ends_the_others(db, client, mail_dir):
    store = f.storefront(db)
    contact = f.contact(db, f.account(db, storefront_id=store.id), store)
    elsewhere = api_sign_in(client, store, contact.email)
    token = form_token(client, f"/s/{store.slug}/sign-in")
    client.post(f"/s/{store.slug}/sign-in", data={"csrf_token": token, "email": contact.email, "password": f.PASSWORD})
    url = f"/s/{store.slug}/account/password"
    token = form_token(client, url)
    wrong = client.post(url, data={"csrf_token": token, "current_password": "not-it-at-all",
                                   "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert wrong.status_code == 422 and "Your current password is not right." in wrong.text
    done = client.post(url, data={"csrf_token": token, "current_password": f.PASSWORD, "password": NEW_PASSWORD,
                                  "password_confirm": NEW_PASSWORD})
    assert done.status_code == 200 and "Your other devices were signed out." in done.text
    assert "Signed in as" in client.get(f"/s/{store.slug}").text
    assert client.get(f"/api/v1/storefronts/{store.slug}/sessions/current",
                      headers=bearer(elsewhere)).status_code == 401
    [message] = deliver_and_read(db, mail_dir)
    assert "was changed" in message["Subject"] and message["To"] == contact.email
    by_api = api_sign_in(client, store, contact.email, NEW_PASSWORD)
    change = client.put(f"/api/v1/storefronts/{store.slug}/account/password", headers=bearer(by_api),
                        json={"current_password": NEW_PASSWORD, "new_password": "third-passphrase-of-the-day"})
    assert change.status_code == 204
    assert client.get(f"/api/v1/storefronts/{store.slug}/sessions/current", headers=bearer(by_api)).status_code == 200
    assert client.get(url, follow_redirects=False).status_code == 303  # the page session ended with the API change
