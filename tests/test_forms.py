"""Forms that take an address offer the state or province as one drop-down of the country's subdivisions, checked
again by the server; forms tell every problem at once, in the product's words (never pydantic's, email-validator's
or phonenumbers'), translated, with the API's codes unchanged; review pages name countries, not codes."""

from __future__ import annotations

import re

from sqlalchemy import update

from accountdesk.accounts.models import Account
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.reseller_world import NEW_CUSTOMER, customer, world
from tests.test_console_pages import error_beside, post, sign_in
from tests.test_registration_api import PASSWORD, body, url

# what the libraries say, which must never reach a person
LIBRARY_WORDS = re.compile(r"Input should|Value error|@-sign|email address|String should|Field required|"
                           r"errors\.pydantic\.dev|The string supplied|NumberParseException|missing_or_invalid")
EMPTY_REGISTRATION = {"company_name": "", "first_name": "", "last_name": "", "email": "", "phone": "",
                      "billing_address.line1": "", "billing_address.line2": "", "billing_address.city": "",
                      "billing_address.postcode": "", "billing_address.country": "", "billing_address.region": "",
                      "password": "", "password_confirm": ""}


def region_select(html: str, field_id: str) -> str:
    """The state/province drop-down of a form (its whole <select>), or "" when the form has none."""
    found = re.search(rf'<select id="{field_id}"[^>]*>.*?</select>', html, re.S)
    return found.group(0) if found else ""


def options(select: str) -> dict[str, str]:
    return dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select))


def selected(select: str) -> str:
    found = re.search(r'<option value="([^"]*)" selected>', select)
    return found.group(1) if found else ""


def no_library_words(text: str) -> None:
    assert not LIBRARY_WORDS.search(text), LIBRARY_WORDS.search(text).group(0)


# --- the state/province drop-down ---------------------------------------------------------------------------------

def test_every_address_form_has_the_subdivision_drop_down_and_the_server_checks_it(db, client):
    w = world(db, client)
    ours = customer(db, w, name="Prairie Tools")
    store = f.storefront(db)
    sign_in(client, w.staff)
    pages = {"registration": (f"/s/{store.slug}/register", "reg-billing-address-region", ""),
             "reseller new customer": (f"/console/resellers/{w.reseller.id}/customers/new", "new-region", ""),
             "reseller customer record": (f"/console/resellers/{w.reseller.id}/customers/{ours.id}",
                                          "details-region", "US-IL"),
             "address book, new address": (f"/console/accounts/{ours.id}", "address-new-region", ""),
             "address book, an address": (f"/console/accounts/{ours.id}",
                                          f"address-{ours.addresses[0].id}-region", "US-IL")}
    for name, (path, field_id, chosen) in pages.items():
        select = region_select(client.get(path).text, field_id)
        assert select, name
        assert selected(select) == chosen, name
        if chosen:  # the country's subdivisions, by name
            assert options(select)["US-IL"] == "Illinois" and "DE-BY" not in options(select), name

    customers = f"/console/resellers/{w.reseller.id}/customers"
    refusals = {
        "registration": post(client, f"/s/{store.slug}/register", {
            **{k: v for k, v in EMPTY_REGISTRATION.items()}, "billing_address.country": "US",
            "billing_address.region": "DE-BY"}),
        "reseller new customer": post(client, f"{customers}/new", {**NEW_CUSTOMER, "country": "US",
                                                                   "region": "DE-BY", "postcode": "62701"}),
        "reseller customer record": post(client, f"{customers}/{ours.id}", {
            "name": "Prairie Tools", "email": "p@prairie.example", "phone": "+1 217 555 0142", "line1": "1 Main St",
            "city": "Springfield", "postcode": "62701", "country": "US", "region": "DE-BY"}),
        "address book": post(client, f"/console/accounts/{ours.id}/addresses", {
            "line1": "1 Elm St", "city": "Springfield", "postcode": "62701", "country": "US", "region": "DE-BY"}),
    }
    ids = {"registration": "reg-billing-address-region", "reseller new customer": "new-region",
           "reseller customer record": "details-region", "address book": "address-new-region"}
    for name, refused in refusals.items():
        assert refused.status_code == 422, name
        assert error_beside(refused.text, ids[name]) == "Choose a state or province of United States.", name
        # shown again with the country's subdivisions to choose from
        assert "US-IL" in options(region_select(refused.text, ids[name])), name
    with db.transaction() as session:
        assert session.get(Account, ours.id).addresses[0].region == "US-IL"  # the refused change kept nothing


def test_subdivisions_and_countries_are_named_in_the_readers_language(db, client):
    w = world(db, client)
    ours = customer(db, w, billing={"line1": "Marienplatz 1", "city": "München", "postcode": "80331",
                                    "country": "DE", "region": "DE-BY"})
    with db.transaction() as session:
        session.execute(update(StaffUser).where(StaffUser.id == w.staff.id).values(language="fr"))
    sign_in(client, w.staff)
    record = client.get(f"/console/accounts/{ours.id}").text
    country = region_select(record, f"address-{ours.addresses[0].id}-country")
    assert options(country)["DE"] == "Allemagne" and selected(country) == "DE"
    assert options(region_select(record, f"address-{ours.addresses[0].id}-region"))["DE-BY"] == "Bavière"
    assert "80331 München, Bavière, Allemagne" in record  # the address book names, not codes
    spanish = client.get("/api/v1/countries/ES/subdivisions", headers={"Accept-Language": "de"}).json()
    assert {"code": "ES-AN", "name": "Andalusien"} in spanish["subdivisions"]


def test_the_approval_review_names_the_country(db, client):
    store = f.storefront(db, registration_mode="approval")
    assert client.post(url(store), json=body()).status_code == 202
    approver = f.staff(db, "approver")
    with db.transaction() as session:
        session.execute(update(StaffUser).where(StaffUser.id == approver.id).values(language="de"))
        account_id = session.query(Account.id).filter(Account.storefront_id == store.id).scalar()
    sign_in(client, approver)
    review = client.get(f"/console/approvals/{account_id}").text
    assert "Vereinigte Staaten" in review and "Illinois" in review and ">US<" not in review


# --- every problem at once, in the product's words ----------------------------------------------------------------

def test_an_empty_registration_form_reports_every_missing_field(db, client):
    store = f.storefront(db)
    refused = post(client, f"/s/{store.slug}/register", EMPTY_REGISTRATION)
    assert refused.status_code == 422
    messages = {field: error_beside(refused.text, f"reg-{field.replace('.', '-').replace('_', '-')}")
                for field in ("company_name", "first_name", "last_name", "email", "phone", "billing_address.line1",
                              "billing_address.city", "billing_address.country", "password")}
    assert messages == {
        "company_name": "Enter the company name, or choose to buy as a private person.",
        "first_name": "This field is required.", "last_name": "This field is required.",
        "email": "This field is required.", "phone": "This field is required.",
        "billing_address.line1": "This field is required.", "billing_address.city": "This field is required.",
        "billing_address.country": "Choose a country.", "password": "Choose a password."}
    no_library_words(refused.text)
    api = client.post(url(store), json={"company_name": "", "first_name": "", "last_name": "", "email": "",
                                        "phone": "", "password": "",
                                        "billing_address": {"line1": "", "city": "", "country": ""}})
    assert api.status_code == 422 and api.json()["error"]["code"] == "validation_failed"
    assert set(api.json()["error"]["fields"]) == set(messages)


def test_the_repeated_password_is_told_with_the_other_problems(db, client):
    store = f.storefront(db)
    refused = post(client, f"/s/{store.slug}/register", {
        **EMPTY_REGISTRATION, "company_name": "Acme", "password": PASSWORD, "password_confirm": "another"})
    assert error_beside(refused.text, "reg-password-confirm") == "The two passwords differ."
    assert error_beside(refused.text, "reg-first-name") == "This field is required."
    assert "reg-company-name-error" not in refused.text


def test_a_bad_e_mail_is_told_in_our_words_by_the_api_and_the_pages(db, client):
    store = f.storefront(db)
    headers = f.token(client, f.staff(db, "admin"))
    for sent, said in (("ada.example.com", "Enter a valid e-mail address, such as name@example.com."),
                       ("ada@exa mple.com", "Enter a valid e-mail address: check it for typos.")):
        for answer in (client.post("/api/v1/accounts", json={"name": "X", "email": sent}, headers=headers),
                       client.post(url(store), json=body(email=sent))):
            assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_failed"
            assert answer.json()["error"]["fields"]["email"] == said
            no_library_words(answer.text)
        page = post(client, f"/s/{store.slug}/register", {**EMPTY_REGISTRATION, "email": sent})
        assert error_beside(page.text, "reg-email") == said
        no_library_words(page.text)
    french = client.post(url(store), json=body(email="ada.example.com"), headers={"Accept-Language": "fr"})
    assert french.json()["error"]["code"] == "validation_failed"
    assert french.json()["error"]["fields"]["email"] == "Saisissez une adresse e-mail valide, comme nom@example.com."


def test_a_number_out_of_range_is_told_in_our_words_by_the_api_and_the_pages(db, client):
    admin = f.staff(db, "admin")
    headers = f.token(client, admin)
    account = f.account(db)
    api = client.patch(f"/api/v1/accounts/{account.id}", json={"billing_day": 31}, headers=headers)
    assert api.status_code == 422 and api.json()["error"] == {
        "code": "validation_failed", "message": "Some fields need attention.",
        "fields": {"billing_day": "Enter 28 or less."}}
    german = client.patch(f"/api/v1/accounts/{account.id}", json={"billing_day": 0},
                          headers={**headers, "Accept-Language": "de"})
    assert german.json()["error"]["code"] == "validation_failed"
    assert german.json()["error"]["fields"] == {"billing_day": "Geben Sie mindestens 1 ein."}
    huge = client.get(f"/api/v1/accounts/{2**63}", headers={**headers, "Accept-Language": "fr"})
    biggest = "\u202f".join(["9", "223", "372", "036", "854", "775", "807"])  # as French writes 2**63 - 1
    assert huge.json()["error"]["fields"] == {"account_id": f"Saisissez {biggest} ou moins."}
    sign_in(client, admin)
    page = post(client, f"/console/accounts/{account.id}", {"name": "Still Here", "billing_day": "40",
                                                             "currency": "EUR"})
    assert page.status_code == 422 and error_beside(page.text, "details-billing-day") == "Enter 28 or less."
    no_library_words(page.text)
    for answer in (api, german, huge):
        no_library_words(answer.text)


def test_the_frameworks_own_refusals_are_told_in_our_words(client):
    wrong_method = client.put("/api/v1/accounts", headers={"Accept-Language": "fr"})
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == {
        "code": "method_not_allowed", "message": "Cette adresse n'accepte pas cette méthode."}
    nowhere = client.get("/api/v1/no-such-thing")
    assert nowhere.json()["error"] == {"code": "not_found", "message": "Not found."}
