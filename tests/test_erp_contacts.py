"""Contacts and accounts taken from the ERP (both adapters): the phone the ERP gives is kept in any format a person
writes one (read in the account's country), or kept as given and flagged when it is no number, and the contact can
still be edited; the account gets the ERP's street line."""

from __future__ import annotations

from sqlalchemy import select

from accountdesk.accounts.models import Account
from tests import factories as f
from tests.erp_world import erp_store, erp_world, sap_world  # noqa: F401 (fixtures)
from tests.test_console_pages import sign_in

TOM = "tom.reed@harbourtools.example"
SAM = "sam@kestrel-catering.example"
UNREADABLE = "ask the front desk for Sam (ext. 12)"


def instant(client, headers, store, email: str, code: str) -> dict:
    made = client.post("/api/v1/erp/instant-accounts", headers=headers,
                       json={"email": email, "account_code": code, "storefront_id": store.id})
    assert made.status_code == 201, made.text
    return made.json()


def test_erp_phones_are_read_in_the_accounts_country_or_kept_as_given_and_flagged(db, client, erp_world):
    client.app.state.erp = erp_world.gateway
    store = erp_store(db)
    erp_world.change_contact("C20000", TOM, phone="(020) 7946-0123")  # as a person writes it in London
    erp_world.change_contact("C20002", SAM, phone=UNREADABLE)
    headers = f.token(client, f.staff(db, "csr"))

    tom = instant(client, headers, store, TOM, "C20000")
    sam = instant(client, headers, store, SAM, "C20002")

    assert (tom["contact"]["phone"], tom["contact"]["phone_as_given"]) == ("+442079460123", False)
    assert (sam["contact"]["phone"], sam["contact"]["phone_as_given"]) == (UNREADABLE, True)
    with db.transaction() as session:
        streets = dict(session.execute(select(Account.erp_code, Account.id).where(
            Account.erp_code.in_(["C20000", "C20002"]))).all())
        assert {code: session.get(Account, id_).billing_address.line1 for code, id_ in streets.items()} == {
            "C20000": "12 Dock Road", "C20002": "45 Princes Street"}

    # the contact can be edited: the phone sent back as it is stays as given (and flagged) ...
    url = f"/api/v1/accounts/{sam['account']['id']}/contacts/{sam['contact']['id']}"
    renamed = client.patch(url, headers=headers, json={"first_name": "Samantha", "phone": UNREADABLE})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["first_name"], renamed.json()["phone"], renamed.json()["phone_as_given"]) == (
        "Samantha", UNREADABLE, True)
    sign_in(client, f.staff(db, "csr"))
    page = client.get(f"/console/accounts/{sam['account']['id']}/contacts/{sam['contact']['id']}").text
    assert "As the ERP gave it: it could not be read as a phone number." in page
    # ... and a corrected one is read in the account's country like any other, and no longer flagged
    corrected = client.patch(url, headers=headers, json={"phone": "0131 496 0312"})
    assert (corrected.json()["phone"], corrected.json()["phone_as_given"]) == ("+441314960312", False)
    refused = client.patch(url, headers=headers, json={"phone": "not a number"})
    assert refused.status_code == 422 and "phone" in refused.json()["error"]["fields"]


def test_erp_phone_extensions_are_kept_and_an_unreadable_account_phone_is_kept_as_given(db, client, erp_world):
    client.app.state.erp = erp_world.gateway
    store = erp_store(db)
    erp_world.change_contact("C20000", TOM, phone="(020) 7946-0123 ext. 45")
    erp_world.change_account("C20000", phone="0113 496 0000 extension 12")
    erp_world.change_account("C20002", phone=UNREADABLE)
    headers = f.token(client, f.staff(db, "csr"))

    tom = instant(client, headers, store, TOM, "C20000")
    sam = instant(client, headers, store, SAM, "C20002")

    assert (tom["contact"]["phone"], tom["contact"]["phone_as_given"]) == ("+442079460123;ext=45", False)
    assert (tom["account"]["phone"], tom["account"]["phone_as_given"]) == ("+441134960000;ext=12", False)
    assert (sam["account"]["phone"], sam["account"]["phone_as_given"]) == (UNREADABLE, True)
    sign_in(client, f.staff(db, "csr"))
    record = client.get(f"/console/accounts/{tom['account']['id']}").text
    assert "+44 20 7946 0123 x45" in record  # the contacts' table: international form with the extension
    hint = "As the ERP gave it: it could not be read as a phone number."
    assert hint not in record
    assert hint in client.get(f"/console/accounts/{sam['account']['id']}").text

    # the account can be edited: the phone sent back as it is stays as given (and flagged) ...
    url = f"/api/v1/accounts/{sam['account']['id']}"
    renamed = client.patch(url, headers=headers, json={"name": "Kestrel Catering Ltd", "phone": UNREADABLE})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["phone"], renamed.json()["phone_as_given"]) == (
        "Kestrel Catering Ltd", UNREADABLE, True)
    # ... and a corrected one is read in the account's country like any other, and no longer flagged
    corrected = client.patch(url, headers=headers, json={"phone": "0131 496 0300 ext 7"})
    assert corrected.status_code == 200, corrected.text
    assert (corrected.json()["phone"], corrected.json()["phone_as_given"]) == ("+441314960300;ext=7", False)
    assert hint not in client.get(f"/console/accounts/{sam['account']['id']}").text
    refused = client.patch(url, headers=headers, json={"phone": "not a number"})
    assert refused.status_code == 422 and "phone" in refused.json()["error"]["fields"]


def test_the_gateway_gives_the_street_line(erp_world):
    assert erp_world.gateway.get_account("C20004").street == "22 Boar Lane"
