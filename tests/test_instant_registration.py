"""Instant registration (registration mode erp_verified, seed 002), both databases and both ERP adapters (the SAP one
against its loopback Service Layer): the e-mail must match an active ERP contact of an active customer that is
neither the cash account nor excluded; the same answer for every address; the link proves the mailbox, offers the
e-mail's accounts (one login each) and stays usable until every account has its login or it expires; an ERP
outage answers 503 and makes nothing; approval in `on_approval` sync mode queues exactly one ERP push."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from accountdesk.accounts.models import Account
from accountdesk.app import outbox_handlers
from accountdesk.contacts.models import Contact
from accountdesk.core.db import utcnow
from accountdesk.core.models import AuditEvent, OutboxMessage, SingleUseToken
from accountdesk.core.outbox import deliver_due
from accountdesk.erp.demo_data import SHARED_EMAIL, write_demo_folder
from accountdesk.registration import erp as erp_service
from accountdesk.registration.instant import PURPOSE
from accountdesk.storefronts.models import Storefront
from tests import factories as f
from tests.erp_world import erp_store, erp_world, file_erp, sap_world  # noqa: F401 (fixtures)
from tests.mailbox import deliver_and_read, links, read_folder, text_of, wait_for
from tests.test_console_pages import CSRF
from tests.test_registration_api import body as registration_body
from tests.test_registration_concurrency import at_once
from tests.test_storefront_sign_in import api_sign_in

PASSWORD = "Plum-Tiger-Cloud-9"
TOM = "tom.reed@harbourtools.example"
SAME_ANSWER = {"status": "received", "registration_mode": "erp_verified",
               "message": "If this address belongs to one of our trade customers, we have sent you a link. "
                          "Open it within 24 hours to create your login."}


@pytest.fixture
def settings(settings, tmp_path):
    """The live server's ERP (the other tests hand the app a gateway themselves): the demo CSV folder, no cache."""
    write_demo_folder(tmp_path / "live-erp")
    return settings.model_copy(update={"erp_file_dir": tmp_path / "live-erp", "erp_cache_seconds": 0})


def url(store: Storefront, token: str = "") -> str:
    return f"/api/v1/storefronts/{store.slug}/instant-registrations" + (f"/{token}" if token else "")


def ask(client, store: Storefront, email: str):
    return client.post(url(store), json={"email": email})


def link_token(db, mail_dir, email: str) -> str:
    """The token of the newest instant registration link delivered to `email`."""
    found = [link for m in deliver_and_read(db, mail_dir) if m["To"] == email for link in links(m)
             if "/register/instant?token=" in link]
    assert found, f"no instant registration link for {email}"
    return found[-1].split("token=", 1)[1]


def offered(client, store: Storefront, token: str) -> list[str]:
    response = client.get(url(store, token))
    assert response.status_code == 200, response.text
    return [a["code"] for a in response.json()["accounts"]]


def create(client, store: Storefront, token: str, code: str, **over: Any):
    return client.post(url(store, token), json={"account_code": code, "password": PASSWORD, **over})


def current(client, store: Storefront, access_token: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/storefronts/{store.slug}/sessions/current",
                          headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    return response.json()


def count(db, model, *where) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_matching_email_makes_the_account_and_login_from_erp_data_and_signs_in(db, client, mail_dir, erp_world):
    client.app.state.erp = erp_world.gateway
    store = erp_store(db)

    asked = ask(client, store, "TOM.Reed@HarbourTools.example")
    assert asked.status_code == 202 and asked.json() == SAME_ANSWER
    [message] = [m for m in deliver_and_read(db, mail_dir) if m["To"] == TOM]
    assert message["Subject"] == f"Create your login for {store.name}" and "Hello Tom Reed" in text_of(message)
    [link] = [link for link in links(message) if "/register/instant?token=" in link]
    assert link.startswith(f"http://127.0.0.1:8000/s/{store.slug}/register/instant?token=")
    token = link.split("token=", 1)[1]
    with db.transaction() as session:
        row = session.scalar(select(SingleUseToken).where(SingleUseToken.purpose == PURPOSE))
        assert row.data == {"email": TOM, "storefront_id": store.id}
        assert timedelta(hours=23, minutes=59) < row.expires_at - utcnow() <= timedelta(hours=24)
    assert count(db, Account) == 0  # nothing is made before the link is used

    listed = client.get(url(store, token))
    assert listed.json() == {"email": TOM, "accounts": [
        {"code": "C20000", "name": "Harbour Tools Ltd", "first_name": "Tom", "last_name": "Reed"}]}
    made = create(client, store, token, "c20000")
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "signed_in" and made.json()["token_type"] == "bearer"
    me = current(client, store, made.json()["access_token"])
    assert (me["contact"]["email"], me["contact"]["role"], me["account"]["number"]) == (TOM, "account_admin", "C20000")

    with db.transaction() as session:
        account = session.scalar(select(Account))
        assert (account.number, account.erp_code, account.name, account.customer_group, account.payment_terms,
                account.currency, account.credit_limit, account.status, account.storefront_id) == (
            "C20000", "C20000", "Harbour Tools Ltd", "100", "1", "GBP", Decimal("5000.00"), "active", store.id)
        contact = session.scalar(select(Contact))
        assert (contact.first_name, contact.last_name, contact.status, contact.erp_contact_code,
                contact.account_id) == ("Tom", "Reed", "active", "3", account.id)
        assert contact.email_verified_at is not None and contact.erp_checked_at is not None
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {"registration.instant_link_sent", "account.created_from_erp", "contact.created",
                "registration.instant"} <= actions
    assert client.get(url(store, token)).status_code == 404  # every account of the link has its login now
    assert api_sign_in(client, store, "Tom.Reed@harbourtools.example", PASSWORD).status_code == 201


def test_cash_excluded_inactive_and_unknown_addresses_get_the_same_answer_and_no_link(db, client, mail_dir,
                                                                                     erp_world):
    client.app.state.erp = erp_world.gateway
    store = erp_store(db, erp_excluded_account_codes="c20009, C20004")
    refused = {"jo.walker@example.org": "cash account", "ravi@pineoak.example": "excluded code",
               "lee@kestrel-catering.example": "inactive contact", "ada@orchid-interiors.example": "frozen account",
               "nobody@example.com": "unknown"}
    for email in refused:
        answer = ask(client, store, email)
        assert answer.status_code == 202 and answer.json() == SAME_ANSWER, email
    assert deliver_and_read(db, mail_dir) == []
    assert count(db, SingleUseToken) == 0 and count(db, Account) == 0 and count(db, Contact) == 0


def test_one_email_on_two_accounts_chooses_and_gets_one_login_per_account(db, client, mail_dir, erp_world):
    client.app.state.erp = erp_world.gateway
    store = erp_store(db)
    assert ask(client, store, "Maria.Lopez@HarbourTools.EXAMPLE").status_code == 202
    token = link_token(db, mail_dir, SHARED_EMAIL)
    assert offered(client, store, token) == ["C20000", "C20001"]

    north = create(client, store, token, "C20001", first_name="María")
    assert north.status_code == 201, north.text
    assert offered(client, store, token) == ["C20000"]  # the link still works for the account left
    again = create(client, store, token, "C20001")
    assert again.status_code == 422 and again.json()["error"]["code"] == "account_not_offered"
    ltd = create(client, store, token, "C20000")
    assert ltd.status_code == 201, ltd.text
    assert client.get(url(store, token)).status_code == 404
    assert create(client, store, token, "C20000").status_code == 404

    first, second = current(client, store, north.json()["access_token"]), current(
        client, store, ltd.json()["access_token"])
    assert (first["account"]["number"], first["contact"]["first_name"]) == ("C20001", "María")
    assert (second["account"]["number"], second["contact"]["first_name"]) == ("C20000", "Maria")
    assert first["contact"]["id"] != second["contact"]["id"]
    assert {first["contact"]["role"], second["contact"]["role"]} == {"account_admin"}
    chooser = api_sign_in(client, store, SHARED_EMAIL, PASSWORD)
    assert chooser.status_code == 200 and sorted(a["account_number"] for a in chooser.json()["accounts"]) == [
        "C20000", "C20001"]

    # Every account of this address has a login now: a new request is told so, and gets no link.
    assert ask(client, store, SHARED_EMAIL).json() == SAME_ANSWER
    [told] = [m for m in deliver_and_read(db, mail_dir) if m["To"] == SHARED_EMAIL][-1:]
    assert "/register/instant" not in text_of(told) and any("/password/forgot" in link for link in links(told))
    # A colleague on an account that already has its administrator becomes a buyer.
    assert ask(client, store, TOM).status_code == 202
    tom = create(client, store, link_token(db, mail_dir, TOM), "C20000")
    assert tom.status_code == 201 and tom.json()["contact"]["role"] == "buyer"
    assert count(db, Account) == 2 and count(db, Contact) == 3


def test_a_new_link_offers_the_accounts_still_without_a_login(db, client, mail_dir, file_erp):
    client.app.state.erp = file_erp.gateway
    store = erp_store(db, erp_excluded_account_codes="C20001")
    ask(client, store, SHARED_EMAIL)
    token = link_token(db, mail_dir, SHARED_EMAIL)
    assert offered(client, store, token) == ["C20000"]  # the excluded account is never offered
    assert create(client, store, token, "C20001").json()["error"]["fields"] == {
        "account_code": "Choose one of the accounts offered."}
    with db.transaction() as session:
        session.get(Storefront, store.id).erp_excluded_account_codes = ""
    assert create(client, store, token, "C20000").status_code == 201
    assert client.get(url(store, token)).json()["accounts"][0]["code"] == "C20001"  # allowed again meanwhile
    ask(client, store, SHARED_EMAIL)
    later = link_token(db, mail_dir, SHARED_EMAIL)
    assert later != token and offered(client, store, later) == ["C20001"]
    assert create(client, store, later, "C20001").status_code == 201
    assert client.get(url(store, token)).status_code == 200  # the first link has nothing left to offer
    assert offered(client, store, token) == []


def test_erp_down_at_the_request_and_at_the_login_answers_503_and_makes_nothing(db, client, mail_dir, erp_world):
    client.app.state.erp = erp_world.gateway
    store = erp_store(db)
    erp_world.down()
    down = ask(client, store, TOM)
    assert down.status_code == 503 and down.headers["Retry-After"] == "60"
    assert down.json()["error"] == {"code": "erp_unavailable", "message": (
        "We cannot check your e-mail address with our customer records right now. Please try again in a few minutes.")}
    assert count(db, SingleUseToken) == 0 and deliver_and_read(db, mail_dir) == []

    erp_world.up()
    assert ask(client, store, TOM).status_code == 202
    token = link_token(db, mail_dir, TOM)
    erp_world.down()
    for response in (client.get(url(store, token)), create(client, store, token, "C20000")):
        assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert count(db, Account) == 0 and count(db, Contact) == 0

    erp_world.up()
    assert create(client, store, token, "C20000").status_code == 201
    assert count(db, Account) == 1 and count(db, Contact) == 1


def test_simultaneous_logins_from_one_link_make_each_login_once(db, live_server, mail_dir):
    store = erp_store(db)
    assert httpx.post(f"{live_server}{url(store)}", json={"email": SHARED_EMAIL}).status_code == 202
    token = wait_for(lambda: [link for m in read_folder(mail_dir) if m["To"] == SHARED_EMAIL for link in links(m)
                              if "/register/instant?token=" in link])[-1].split("token=", 1)[1]
    responses = at_once(12, lambda client, n: client.post(f"{live_server}{url(store, token)}", json={
        "account_code": ("C20000", "C20001")[n % 2], "password": PASSWORD}))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 2 and set(statuses) <= {201, 404, 409, 422}, statuses
    assert count(db, Account) == 2 and count(db, Contact) == 2
    with db.transaction() as session:
        assert session.scalar(select(SingleUseToken.used_at).where(SingleUseToken.purpose == PURPOSE)) is not None


def test_link_expiry_other_storefronts_and_refused_passwords(db, client, mail_dir, file_erp):
    client.app.state.erp = file_erp.gateway
    store, other = erp_store(db, password_require_character_classes=True), erp_store(db)
    ask(client, store, TOM)
    token = link_token(db, mail_dir, TOM)
    assert client.get(url(other, token)).status_code == 404
    assert client.get(url(store, "not-a-token")).json()["error"]["code"] == "invalid_token"

    weak = create(client, store, token, "C20000", password="tomreedharbour")
    assert weak.status_code == 422
    assert weak.json()["error"]["fields"]["password"] == (
        "Include a capital letter. Include a number. Include a special character such as ! or #. "
        "Do not use your name or e-mail address in the password.")
    assert create(client, store, token, "C20000", password="").status_code == 422
    assert count(db, Account) == 0 and count(db, Contact) == 0

    with db.transaction() as session:
        session.execute(update(SingleUseToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = create(client, store, token, "C20000")
    assert expired.status_code == 404 and expired.json()["error"]["message"] == (
        "This link has expired or was already used for every account. Ask for a new one.")
    assert client.get(url(store, token)).status_code == 404
    assert count(db, Account) == 0 and count(db, Contact) == 0


def test_policy_switches_and_rate_limits(db, client, file_erp):
    client.app.state.erp = file_erp.gateway
    store, plain, off = erp_store(db), f.storefront(db), erp_store(db, self_registration=False)
    refused = ask(client, plain, TOM)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "instant_registration_unavailable"
    assert ask(client, off, TOM).json()["error"]["code"] == "self_registration_disabled"
    form = client.post(f"/api/v1/storefronts/{store.slug}/registrations", json=registration_body())
    assert form.status_code == 403 and form.json()["error"]["code"] == "registration_mode_unavailable"
    assert ask(client, store, "not an address").status_code == 422

    for _ in range(5):
        assert ask(client, store, TOM).status_code == 202
    limited = ask(client, store, TOM)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    for n in range(5):  # 10 per client address and hour, whatever the e-mail
        assert ask(client, store, f"someone{n}@example.com").status_code == 202
    assert ask(client, store, "another@example.com").status_code == 429


def test_instant_pages_readable_errors(db, client, mail_dir, file_erp):
    client.app.state.erp = file_erp.gateway
    store = erp_store(db)
    form = client.get(f"/s/{store.slug}/register")
    assert form.status_code == 200 and 'data-testid="instant-form"' in form.text
    csrf = CSRF.search(form.text).group(1)

    def post(path: str, **data: str):
        return client.post(f"/s/{store.slug}{path}", data={"csrf_token": csrf, **data}, follow_redirects=False)

    assert "Enter a valid e-mail address" in post("/register", email="nope").text
    file_erp.down()
    down = post("/register", email=TOM)
    assert down.status_code == 503 and down.headers["Retry-After"] == "60"
    assert "cannot check your e-mail address with our customer records" in down.text
    file_erp.up()
    sent = post("/register", email=TOM)
    assert sent.status_code == 303 and sent.headers["location"] == f"/s/{store.slug}/register/received"

    token = link_token(db, mail_dir, TOM)
    chooser = client.get(f"/s/{store.slug}/register/instant", params={"token": token})
    assert chooser.status_code == 200 and "Harbour Tools Ltd" in chooser.text
    assert chooser.headers["Referrer-Policy"] == "no-referrer"
    login = client.get(f"/s/{store.slug}/register/instant", params={"token": token, "account": "C20000"})
    assert 'value="Tom"' in login.text and 'value="Reed"' in login.text
    differ = post("/register/instant", token=token, account_code="C20000", first_name="Tom", last_name="Reed",
                  password=PASSWORD, password_confirm="other")
    assert differ.status_code == 422 and "The two passwords differ." in differ.text
    file_erp.down()
    down = post("/register/instant", token=token, account_code="C20000", first_name="Tom", last_name="Reed",
                password=PASSWORD, password_confirm=PASSWORD)
    assert down.status_code == 503 and "Try again" in down.text and count(db, Contact) == 0
    file_erp.up()
    made = post("/register/instant", token=token, account_code="C20000", first_name="Thomas", last_name="Reed",
                password=PASSWORD, password_confirm=PASSWORD)
    assert made.status_code == 303 and made.headers["location"] == f"/s/{store.slug}"
    assert f"accountdesk_sf_{store.slug}" in made.cookies
    home = client.get(f"/s/{store.slug}")
    assert "Welcome, Thomas: your login for Harbour Tools Ltd is ready." in home.text
    spent = client.get(f"/s/{store.slug}/register/instant", params={"token": token})
    assert spent.status_code == 404 and "Ask for a new link" in spent.text


def test_approval_in_on_approval_mode_queues_exactly_one_erp_push(db, client, settings, erp_world):
    store = f.storefront(db, registration_mode="approval", erp_sync="on_approval")
    later = f.storefront(db, registration_mode="approval", erp_sync="on_first_order")
    headers = f.token(client, f.staff(db, "approver"))
    for shop, email in ((store, "ada@example.com"), (later, "grace@example.com")):
        assert client.post(f"/api/v1/storefronts/{shop.slug}/registrations",
                           json=registration_body(email=email)).status_code == 202
    with db.transaction() as session:
        pushed, waiting = (session.scalar(select(Account.id).where(Account.storefront_id == s.id))
                           for s in (store, later))

    assert client.post(f"/api/v1/registrations/{pushed}/approve", headers=headers).status_code == 200
    assert client.post(f"/api/v1/registrations/{pushed}/approve", headers=headers).status_code == 409
    assert client.post(f"/api/v1/registrations/{waiting}/approve", headers=headers).status_code == 200
    with db.transaction() as session:
        rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == erp_service.PUSH)))
        assert [row.payload for row in rows] == [{"account_id": pushed, "reason": "approved"}]

    handlers = {**outbox_handlers(settings, db), erp_service.PUSH: erp_service.PushHandler(db, settings,
                                                                                          erp_world.gateway)}
    deliver_due(db, handlers)
    assert erp_world.creates() == 1
    with db.transaction() as session:
        assert session.get(OutboxMessage, rows[0].id).status == "sent"
        code = session.get(Account, pushed).erp_code
        assert code and session.get(Account, waiting).erp_code is None
    assert erp_world.gateway.get_account(code).name == "Acme Widgets Ltd"
