"""Joining a company by e-mail domain: a company account claims a domain and proves it with a TXT record that a real
DNS server on loopback serves (or staff verify it); a registrant on that domain gets the same registration answer
as anyone, and only the page of their verification link offers the company's account — joining waits for the
account admin's approval, or is immediate where the account allows it; their own new account is withdrawn."""

from __future__ import annotations

import re
import socket

import pytest
from sqlalchemy import select

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.models import AuditEvent, OutboxMessage
from accountdesk.core.settings import Settings
from accountdesk.domains.models import AccountDomain
from tests import factories as f
from tests.dns_server import DnsServer, dns_server  # noqa: F401 — the fixture
from tests.page_world import storefront_sign_in
from tests.reseller_world import csrf_of

DOMAIN = "brightwater.example"
ADDRESS = {"line1": "1 Main Street", "city": "Springfield", "region": "US-IL", "postcode": "62701", "country": "US"}


@pytest.fixture
def settings(settings: Settings, dns_server: DnsServer) -> Settings:  # noqa: F811
    return settings.model_copy(update={"dns_nameserver": dns_server.address, "dns_timeout_seconds": 2.0})


def company(db, **fields):
    store = f.storefront(db, name="Trade Shop", registration_mode="open", anonymous_access=True)
    account = f.account(db, name="Brightwater Trading", storefront_id=store.id, **fields)
    admin = f.contact(db, account, store, first_name="Ada", last_name="Admin", email=f"ada@{DOMAIN}",
                      role="account_admin")
    return store, account, admin


def verified_domain(client, db, account) -> None:
    headers = f.token(client, f.staff(db, "admin"))
    claimed = client.post(f"/api/v1/accounts/{account.id}/domains", json={"domain": DOMAIN}, headers=headers)
    assert client.post(f"/api/v1/accounts/{account.id}/domains/{claimed.json()['id']}/verify",
                       headers=headers).json()["verified_by"] == "staff"


def register(client, store, email: str) -> dict:
    response = client.post(f"/api/v1/storefronts/{store.slug}/registrations", json={
        "first_name": "Nia", "last_name": "Newcomer", "email": email, "phone": "+12175550123",
        "password": f.PASSWORD, "company_name": "Nia's Own Ltd", "billing_address": ADDRESS})
    assert response.status_code == 202, response.text
    return response.json()


def verification_page(client, db, store, email: str):
    with db.transaction() as session:
        payload = session.scalars(select(OutboxMessage.payload).where(OutboxMessage.kind == "email")).all()
    [link] = [p["context"]["link"] for p in payload if p["template"] == "email_verification" and p["to"] == [email]]
    return client.get(link.replace("http://127.0.0.1:8000", ""))


def mails(db, template: str) -> list[list[str]]:
    with db.transaction() as session:
        return [p["to"] for p in session.scalars(select(OutboxMessage.payload)) if p["template"] == template]


def test_a_domain_is_verified_by_its_txt_record_on_a_real_dns_server(db, client, dns_server):  # noqa: F811
    store, account, _ = company(db)
    headers = f.token(client, f.staff(db, "csr"))
    claimed = client.post(f"/api/v1/accounts/{account.id}/domains", json={"domain": " Brightwater.EXAMPLE "},
                          headers=headers)
    assert claimed.status_code == 201, claimed.text
    domain = claimed.json()
    assert domain["domain"] == DOMAIN and domain["txt_record"].startswith("accountdesk-verification=")
    url = f"/api/v1/accounts/{account.id}/domains/{domain['id']}/dns-check"
    missing = client.post(url, headers=headers).json()
    assert (missing["verified"], "No TXT record" in missing["problem"]) == (False, True)
    dns_server.publish(DOMAIN, "v=spf1 -all")
    dns_server.publish(DOMAIN, domain["txt_record"])
    found = client.post(url, headers=headers).json()
    assert (found["verified"], found["verified_by"], found["problem"]) == (True, "dns", "")
    assert DOMAIN in dns_server.queries
    with db.transaction() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == account.id,
                                                                  AuditEvent.subject_type == "account")).all()
    assert {"domain.claimed", "domain.verified"} <= set(actions)

    rival = f.account(db, name="Rival Ltd", storefront_id=store.id)
    other = client.post(f"/api/v1/accounts/{rival.id}/domains", json={"domain": DOMAIN}, headers=headers).json()
    taken = client.post(f"/api/v1/accounts/{rival.id}/domains/{other['id']}/verify", headers=headers)
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "domain_taken")
    public = client.post(f"/api/v1/accounts/{rival.id}/domains", json={"domain": "gmail.com"}, headers=headers)
    assert (public.status_code, public.json()["error"]["code"]) == (422, "public_mail_domain")
    private = f.account(db, name="Pat Private", kind="b2c", storefront_id=store.id)
    refused = client.post(f"/api/v1/accounts/{private.id}/domains", json={"domain": "pat.example"}, headers=headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "not_a_company")


def test_the_dns_check_says_when_the_dns_does_not_answer(db, client):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a port that takes queries and never answers
    silent.bind(("127.0.0.1", 0))
    client.app.state.settings = client.app.state.settings.model_copy(update={
        "dns_nameserver": f"127.0.0.1:{silent.getsockname()[1]}", "dns_timeout_seconds": 0.3})
    _, account, _ = company(db)
    headers = f.token(client, f.staff(db, "csr"))
    domain = client.post(f"/api/v1/accounts/{account.id}/domains", json={"domain": DOMAIN}, headers=headers).json()
    check = client.post(f"/api/v1/accounts/{account.id}/domains/{domain['id']}/dns-check", headers=headers)
    assert check.status_code == 200 and check.json()["verified"] is False
    assert "did not answer" in check.json()["problem"]
    silent.close()


def test_a_registrant_on_the_domain_joins_after_the_account_admins_approval(db, client, mail_dir):
    store, account, admin = company(db)
    verified_domain(client, db, account)
    email = f"nia@{DOMAIN}"
    answer = register(client, store, email)
    assert answer == register(client, store, "nia@elsewhere.example")  # the same answer: nothing revealed
    assert "Brightwater" not in str(answer)

    page = verification_page(client, db, store, email)
    assert page.status_code == 200 and "Join Brightwater Trading" in page.text
    assert "join-offer" not in verification_page(client, db, store, "nia@elsewhere.example").text
    offer = re.search(r'name="offer_token" value="([^"]+)"', page.text).group(1)
    joined = client.post(f"/s/{store.slug}/join", data={"csrf_token": csrf_of(page.text), "offer_token": offer})
    assert joined.status_code == 200 and "Request sent" in joined.text
    again = client.post(f"/s/{store.slug}/join", data={"csrf_token": csrf_of(page.text), "offer_token": offer})
    assert again.status_code == 422  # the offer is used up
    with db.transaction() as session:
        logins = session.scalars(select(Contact).where(Contact.email == email).order_by(Contact.id)).all()
        own, new = logins
        assert (own.status, session.get(Account, own.account_id).status) == ("deactivated", "inactive")
        assert (new.account_id, new.status, new.role, new.email_verified_at is not None) == (
            account.id, "pending_approval", "buyer", True)
    assert [admin.email] in mails(db, "domain_join_request")

    storefront_sign_in(client, store, admin.email)
    requests = client.get(f"/s/{store.slug}/account/domains")
    assert "nia@brightwater.example" in requests.text
    approved = client.post(f"/s/{store.slug}/account/join-requests/{new.id}/approve",
                           data={"csrf_token": csrf_of(requests.text)}, follow_redirects=False)
    assert approved.status_code == 303, approved.text
    with db.transaction() as session:
        assert session.get(Contact, new.id).status == "active"
    assert [email] in mails(db, "contact_request_approved")  # told they may now sign in to the account they joined
    client.cookies.clear()
    signed_in = client.post(f"/api/v1/storefronts/{store.slug}/sessions", json={"email": email,
                                                                                "password": f.PASSWORD})
    assert signed_in.status_code == 201 and signed_in.json()["account"]["id"] == account.id


def test_where_the_account_allows_it_the_registrant_joins_at_once(db, client):
    store, account, admin = company(db)
    verified_domain(client, db, account)
    headers = f.token(client, f.staff(db, "admin"))
    assert client.put(f"/api/v1/accounts/{account.id}/domain-join", json={"mode": "direct"},
                      headers=headers).json()["domain_join"] == "direct"
    email = f"omar@{DOMAIN}"
    register(client, store, email)
    page = verification_page(client, db, store, email)
    offer = re.search(r'name="offer_token" value="([^"]+)"', page.text).group(1)
    joined = client.post(f"/s/{store.slug}/join", data={"csrf_token": csrf_of(page.text), "offer_token": offer})
    assert "Welcome to Brightwater Trading" in joined.text
    with db.transaction() as session:
        [new] = session.scalars(select(Contact).where(Contact.email == email, Contact.account_id == account.id))
        assert new.status == "active"
    assert mails(db, "domain_join_request") == []
    assert mails(db, "contact_request_approved") == [[email]]  # a login on that account, not an account request


def test_no_offer_for_a_domain_that_is_not_verified(db, client):
    store, account, _ = company(db)
    headers = f.token(client, f.staff(db, "admin"))
    client.post(f"/api/v1/accounts/{account.id}/domains", json={"domain": DOMAIN}, headers=headers)
    register(client, store, f"una@{DOMAIN}")
    assert "join-offer" not in verification_page(client, db, store, f"una@{DOMAIN}").text


def test_the_account_admin_claims_and_verifies_a_domain_on_the_storefront(db, client, dns_server):  # noqa: F811
    store, account, admin = company(db)
    storefront_sign_in(client, store, admin.email)
    page = client.get(f"/s/{store.slug}/account/domains")
    assert page.status_code == 200
    added = client.post(f"/s/{store.slug}/account/domains", data={"csrf_token": csrf_of(page.text),
                                                                 "domain": DOMAIN})
    record = re.search(r"<code>(accountdesk-verification=[^<]+)</code>", added.text).group(1)
    with db.transaction() as session:
        domain_id = session.scalar(select(AccountDomain.id).where(AccountDomain.account_id == account.id))
    url = f"/s/{store.slug}/account/domains/{domain_id}/dns-check"
    refused = client.post(url, data={"csrf_token": csrf_of(added.text)})
    assert refused.status_code == 422 and "No TXT record" in refused.text
    dns_server.publish(DOMAIN, record)
    done = client.post(url, data={"csrf_token": csrf_of(added.text)})
    assert done.status_code == 200 and ">verified<" in done.text
    buyer = f.contact(db, account, store, email=f"bo@{DOMAIN}")
    client.cookies.clear()
    storefront_sign_in(client, store, buyer.email)
    assert client.get(f"/s/{store.slug}/account/domains").status_code == 403  # admins only
