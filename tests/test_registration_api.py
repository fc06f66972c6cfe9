"""Self-registration API: the storefront's defaults and numbering, B2B/B2C/reseller, readable field errors, the same
answer for a known e-mail, the policy switches, e-mail verification and rate limits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.contacts.service import contact_may_order
from accountdesk.core.models import AuditEvent
from accountdesk.storefronts.models import Storefront
from tests import factories as f
from tests.mailbox import deliver_and_read, links, text_of

PASSWORD = "Plum-Tiger-Cloud-9"


def body(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "company_name": "Acme Widgets Ltd", "first_name": "Ada", "last_name": "Lovelace",
        "email": "Ada@Example.com", "phone": "(217) 555-0142", "password": PASSWORD,
        "billing_address": {"line1": "1 Main Street", "city": "Springfield", "region": "IL", "postcode": "62701",
                            "country": "us"}}
    return {**data, **over}


def url(store: Storefront) -> str:
    return f"/api/v1/storefronts/{store.slug}/registrations"


def count(db, model) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def signed_in(client, store) -> dict[str, Any] | None:
    response = client.get(f"/api/v1/storefronts/{store.slug}/sessions/current")
    return response.json() if response.status_code == 200 else None


def test_open_registration_takes_the_storefront_defaults_and_numbering(db, client):
    store = f.storefront(db, name="Widget Shop", sign_in_after_registration=True,
                         default_payment_method="invoice", default_payment_terms="NET30",
                         default_prorate_billing=True, default_billing_day=15,
                         default_partial_charges_invoicing="immediately", default_auto_invoice_email=False,
                         default_currency="GBP", default_customer_group="web", default_price_group="retail",
                         default_rep_code="R7", account_number_prefix="WEB", default_language="fr")
    response = client.post(url(store), json=body())
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "received" and response.json()["registration_mode"] == "open"
    assert f"accountdesk_sf_{store.slug}" in response.cookies
    me = signed_in(client, store)
    assert me["contact"]["email"] == "ada@example.com" and me["account"]["name"] == "Acme Widgets Ltd"
    with db.transaction() as session:
        account = session.scalar(select(Account))
        contact = session.scalar(select(Contact))
        assert account.number == "WEB000001" and account.kind == "b2b" and account.status == "active"
        assert (account.payment_method, account.payment_terms, account.prorate_billing, account.billing_day,
                account.partial_charges_invoicing, account.auto_invoice_email, account.currency,
                account.customer_group, account.price_group, account.rep_code, account.storefront_id) == (
            "invoice", "NET30", True, 15, "immediately", False, "GBP", "web", "retail", "R7", store.id)
        assert account.billing_address.region == "US-IL" and account.billing_address.country == "US"
        assert (contact.role, contact.status, contact.phone, contact.language) == (
            "account_admin", "active", "+12175550142", "fr")
        assert contact.email_verified_at is None
        actors = {(e.action, e.actor_type) for e in session.scalars(select(AuditEvent))}
        assert {("account.created", "visitor"), ("contact.created", "visitor")} <= actors
    second = client.post(url(store), json=body(email="grace@example.com", company_name="Hopper & Co"))
    assert second.status_code == 202
    with db.transaction() as session:
        assert sorted(session.scalars(select(Account.number))) == ["WEB000001", "WEB000002"]


def test_private_person_gets_a_b2c_account_and_companies_need_a_name(db, client):
    store = f.storefront(db)
    missing = client.post(url(store), json=body(company_name=" "))
    assert missing.status_code == 422
    assert "company_name" in missing.json()["error"]["fields"]
    response = client.post(url(store), json=body(company_name="", private_person=True))
    assert response.status_code == 202, response.text
    with db.transaction() as session:
        account = session.scalar(select(Account))
        assert (account.kind, account.name, account.number) == ("b2c", "Ada Lovelace", "W000001")


def test_reseller_registration_only_where_the_storefront_allows_it(db, client):
    closed, opened = f.storefront(db), f.storefront(db, allow_reseller_registration=True)
    refused = client.post(url(closed), json=body(reseller=True))
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"]["reseller"] == "This storefront does not take reseller registrations."
    assert count(db, Account) == 0
    assert client.post(url(opened), json=body(reseller=True)).status_code == 202
    with db.transaction() as session:
        assert session.scalar(select(Account.kind)) == "reseller"


def test_field_errors_are_readable_and_nothing_is_created(db, client):
    store = f.storefront(db, password_require_character_classes=True)
    address = {"line1": "1 Main Street", "city": "Springfield", "country": "US"}
    response = client.post(url(store), json=body(
        phone="12", password="password", billing_address={**address, "region": "US-XX", "postcode": "ABCDE"}))
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert fields["billing_address.postcode"] == "This postcode does not look right for the country."
    assert fields["billing_address.region"].startswith("Choose a state or province of United States")
    assert fields["phone"] == "This phone number is not valid."
    assert "too common" in fields["password"] and "Include a capital letter." in fields["password"]
    no_region = client.post(url(store), json=body(billing_address={**address, "postcode": "62701"}))
    assert no_region.json()["error"]["fields"] == {"billing_address.region": "Choose a state or province."}
    bad_country = client.post(url(store), json=body(billing_address={**address, "country": "XX"}))
    assert "billing_address.country" in bad_country.json()["error"]["fields"]
    german = client.post(url(store), json=body(
        phone="030 901820", password="Sturdy-Plum-2026!",
        billing_address={"line1": "Unter den Linden 1", "city": "Berlin", "postcode": "1011", "country": "DE"}))
    assert german.json()["error"]["fields"] == {
        "billing_address.postcode": "This postcode does not look right for the country."}
    assert count(db, Account) == 0 and count(db, Contact) == 0
    ok = client.post(url(store), json=body(
        phone="030 901820", password="Sturdy-Plum-2026!",
        billing_address={"line1": "Unter den Linden 1", "city": "Berlin", "postcode": "10117", "country": "DE"}))
    assert ok.status_code == 202, ok.text
    with db.transaction() as session:
        assert session.scalar(select(Contact.phone)) == "+4930901820"


def test_known_email_gets_the_same_answer_and_its_owner_an_email(db, app, mail_dir):
    from fastapi.testclient import TestClient

    store = f.storefront(db, name="Widget Shop", sign_in_after_registration=True)
    with TestClient(app) as first, TestClient(app) as stranger, TestClient(app) as owner_again:
        fresh = first.post(url(store), json=body())
        deliver_and_read(db, mail_dir)
        for old in mail_dir.glob("*.eml"):
            old.unlink()
        attacker = stranger.post(url(store), json=body(company_name="Other", password="another-long-secret-7"))
        again = owner_again.post(url(store), json=body(company_name="Whatever"))
        assert fresh.status_code == attacker.status_code == again.status_code == 202
        assert fresh.content == attacker.content == again.content
        assert signed_in(stranger, store) is None  # wrong password: no session
        assert signed_in(owner_again, store)["contact"]["email"] == "ada@example.com"  # the right one: a sign-in
    assert count(db, Account) == 1 and count(db, Contact) == 1
    messages = deliver_and_read(db, mail_dir)
    assert [m["To"] for m in messages] == ["ada@example.com", "ada@example.com"]
    assert all(m["Subject"] == "Registration attempt with your e-mail address on Widget Shop" for m in messages)
    assert any(link.endswith(f"/s/{store.slug}/password/forgot") for link in links(messages[0]))
    with db.transaction() as session:
        actions = list(session.scalars(select(AuditEvent.action)))
        assert actions.count("registration.attempt_existing") == 2


def test_known_email_in_approval_mode_is_never_signed_in(db, client):
    store = f.storefront(db, registration_mode="approval", sign_in_after_registration=True)
    account = f.account(db, storefront_id=store.id)
    f.contact(db, account, store, email="ada@example.com", password=PASSWORD)
    fresh = client.post(url(store), json=body(email="grace@example.com"))
    known = client.post(url(store), json=body())
    assert known.status_code == fresh.status_code == 202 and known.json() == fresh.json()
    assert f"accountdesk_sf_{store.slug}" not in known.cookies and signed_in(client, store) is None


def test_policy_switches(db, client):
    off = f.storefront(db, self_registration=False)
    refused = client.post(url(off), json=body())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "self_registration_disabled"
    erp = f.storefront(db, registration_mode="erp_verified")
    unavailable = client.post(url(erp), json=body())
    assert unavailable.status_code == 403
    assert unavailable.json()["error"]["code"] == "registration_mode_unavailable"
    assert client.post("/api/v1/storefronts/nope/registrations", json=body()).status_code == 404
    assert count(db, Account) == 0


def test_self_registration_needs_anonymous_access_at_the_door(db, client):
    # stored as before the policy refused it: the door refuses as if self-registration were off
    private = f.storefront(db, anonymous_access=False)
    instant = f.storefront(db, anonymous_access=False, registration_mode="erp_verified")
    refused = client.post(url(private), json=body())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "self_registration_disabled"
    asked = client.post(f"/api/v1/storefronts/{instant.slug}/instant-registrations", json={"email": "a@example.com"})
    assert asked.status_code == 403 and asked.json()["error"]["code"] == "self_registration_disabled"
    for store in (private, instant):
        page = client.get(f"/s/{store.slug}/register")
        assert page.status_code == 403 and "does not take new account registrations" in page.text
        assert client.get(f"/api/v1/storefronts/{store.slug}").json()["self_registration"] is False
    assert count(db, Account) == 0


def test_email_verification_link_is_single_use_and_gates_ordering(db, client, mail_dir):
    store = f.storefront(db, verification_required_before_ordering=True)
    assert client.post(url(store), json=body()).status_code == 202
    [message] = deliver_and_read(db, mail_dir)
    assert message["Subject"].startswith("Confirm your e-mail address") and "24 hours" in text_of(message)
    [link] = [link for link in links(message) if "/verify-email?token=" in link]
    assert link.startswith(f"http://127.0.0.1:8000/s/{store.slug}/verify-email?token=")
    token = link.split("token=", 1)[1]
    with db.transaction() as session:
        contact = session.scalar(select(Contact))
        assert not contact_may_order(contact, session.get(Storefront, store.id))
    verify = f"/api/v1/storefronts/{store.slug}/email-verifications"
    other = f.storefront(db)
    elsewhere = f"/api/v1/storefronts/{other.slug}/email-verifications"
    assert client.post(elsewhere, json={"token": token}).status_code == 422
    assert client.post(verify, json={"token": token}).json() == {"status": "verified"}
    again = client.post(verify, json={"token": token})
    assert again.status_code == 422 and again.json()["error"]["code"] == "invalid_token"
    with db.transaction() as session:
        contact = session.scalar(select(Contact))
        assert contact.email_verified_at is not None and contact_may_order(contact, session.get(Storefront, store.id))


def test_rate_limits_per_email_and_per_address(db, client):
    store = f.storefront(db)
    weak = body(password="short")
    for _ in range(5):
        assert client.post(url(store), json=weak).status_code == 422
    limited = client.post(url(store), json=body())
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    for n in range(5):
        assert client.post(url(store), json=body(email=f"other{n}@example.com", password="short")).status_code == 422
    by_address = client.post(url(store), json=body(email="fresh@example.com"))
    assert by_address.status_code == 429
    assert count(db, Account) == 0


def test_subdivisions_of_a_country(client):
    us = client.get("/api/v1/countries/us/subdivisions").json()
    assert us["country"] == "US" and us["required"] is True
    assert {"code": "US-CA", "name": "California"} in us["subdivisions"]
    de = client.get("/api/v1/countries/DE/subdivisions").json()
    assert de["required"] is False and {"code": "DE-BE", "name": "Berlin"} in de["subdivisions"]
    assert client.get("/api/v1/countries/XX/subdivisions").status_code == 404


def test_pages_say_readably_when_registration_is_off(db, client):
    store = f.storefront(db, self_registration=False, new_contact_for_existing_account=False)
    for path, message in (("register", "This storefront does not take new account registrations."),
                          ("register/contact", "This storefront does not let visitors add a contact")):
        response = client.get(f"/s/{store.slug}/{path}")
        assert response.status_code == 403 and response.headers["content-type"].startswith("text/html")
        assert message in response.text
    sign_in_page = client.get(f"/s/{store.slug}/sign-in").text
    assert f"/s/{store.slug}/register" not in sign_in_page


def page_form(page_html: str, **changes: str) -> dict[str, str]:
    """The registration page's form filled in (with the page's CSRF token), as a browser posts it."""
    token = page_html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return {"csrf_token": token, "company_name": "Acme Widgets Ltd", "first_name": "Ada", "last_name": "Lovelace",
            "email": "ada@example.com", "phone": "12", "billing_address.line1": "1 Main Street",
            "billing_address.city": "Springfield", "billing_address.country": "US", "billing_address.region": "",
            "billing_address.postcode": "62701", "password": PASSWORD, "password_confirm": PASSWORD, **changes}


def test_registration_page_keeps_the_input_and_shows_each_message(db, client):
    store = f.storefront(db, allow_reseller_registration=True, sign_in_after_registration=True)
    form = client.get(f"/s/{store.slug}/register")
    assert "Register as a reseller" in form.text
    data = page_form(form.text)
    refused = client.post(f"/s/{store.slug}/register", data=data)
    assert refused.status_code == 422
    assert "This phone number is not valid." in refused.text and "Choose a state or province." in refused.text
    assert 'value="Acme Widgets Ltd"' in refused.text and '<option value="US-IL">Illinois</option>' in refused.text
    assert client.post(f"/s/{store.slug}/register", data={**data, "csrf_token": "forged"}).status_code == 403
    accepted = client.post(f"/s/{store.slug}/register", data={**data, "phone": "(217) 555-0142",
                                                               "billing_address.region": "US-IL"},
                           follow_redirects=False)
    assert accepted.status_code == 303 and accepted.headers["location"] == f"/s/{store.slug}/register/received"
    assert f"accountdesk_sf_{store.slug}" in accepted.cookies
    assert count(db, Account) == 1


def test_a_registration_on_a_resellers_storefront_opens_a_customer_of_that_reseller(db, client):
    reseller = f.account(db, kind="reseller", name="Reseller With A Shop")
    shop = f.storefront(db, reseller_account_id=reseller.id, default_currency="GBP")
    plain = f.storefront(db)
    assert client.post(url(shop), json=body()).status_code == 202
    assert client.post(url(plain), json=body(email="grace@example.com", company_name="Hopper & Co")).status_code == 202
    with db.transaction() as session:
        parents = {a.name: (a.parent_reseller_id, a.currency) for a in session.scalars(select(Account))
                   if a.id != reseller.id}
    assert parents["Acme Widgets Ltd"] == (reseller.id, "GBP") and parents["Hopper & Co"][0] is None
    reseller_staff = f.token(client, f.staff(db, "reseller_admin", reseller_account_id=reseller.id))
    seen = client.get("/api/v1/accounts", headers=reseller_staff).json()["items"]
    assert [a["name"] for a in seen] == ["Acme Widgets Ltd"]


def test_a_registrant_on_a_french_page_gets_a_french_login_and_french_mail(db, client, mail_dir):
    store = f.storefront(db, registration_mode="open")
    form = client.get(f"/s/{store.slug}/register", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert 'lang="fr"' in form.text
    data = page_form(form.text, company_name="Boulangerie Martin", first_name="Claire", last_name="Martin",
                     email="claire@martin.example", phone="+33 1 42 68 53 00", **{
                         "billing_address.line1": "2 rue de Rivoli", "billing_address.city": "Paris",
                         "billing_address.country": "FR", "billing_address.postcode": "75001"})
    accepted = client.post(f"/s/{store.slug}/register", data=data, headers={"Accept-Language": "fr-FR"},
                           follow_redirects=False)
    assert accepted.status_code == 303, accepted.text
    with db.transaction() as session:
        assert session.scalar(select(Contact.language)) == "fr"
    [message] = deliver_and_read(db, mail_dir)
    assert message["Content-Language"] == "fr", message["Subject"]
