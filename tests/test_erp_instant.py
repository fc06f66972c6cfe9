"""Staff instant accounts (seed 002 "manually create it for them"), both adapters: search the ERP by e-mail, make
the local account from the ERP's data and invite the contact; never the cash account or an excluded code."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.erp.demo_data import SHARED_EMAIL
from tests import factories as f
from tests.erp_world import erp_account, erp_store, erp_world, file_erp, sap_world  # noqa: F401 (fixtures)
from tests.mailbox import deliver_and_read, links
from tests.test_console_pages import post, sign_in

URL = "/api/v1/erp/instant-accounts"


def accounts_with(db, code: str) -> list[Account]:
    with db.transaction() as session:
        return list(session.scalars(select(Account).where(Account.erp_code == code)))


def test_instant_account_from_the_erp_invites_the_contact(db, client, mail_dir, erp_world):
    client.app.state.erp = erp_world.gateway
    store = erp_store(db, erp_excluded_account_codes="c20004, C20009")
    headers = f.token(client, f.staff(db, "csr"))

    found = client.get("/api/v1/erp/contacts", params={"email": "MARIA.lopez@harbourtools.example",
                                                       "storefront_id": store.id}, headers=headers)
    assert [(m["account_code"], m["customer_group"], m["refusal"]) for m in found.json()["items"]] == [
        ("C20000", "100", None), ("C20001", "100", None)]

    made = client.post(URL, headers=headers, json={"email": "Maria.Lopez@HarbourTools.example",
                                                   "account_code": "C20001", "storefront_id": store.id,
                                                   "role": "account_admin"})
    assert made.status_code == 201, made.text
    account, contact = made.json()["account"], made.json()["contact"]
    assert (account["number"], account["erp_code"], account["name"], account["customer_group"]) == (
        "C20001", "C20001", "Harbour Tools North", "100")
    assert (account["payment_terms"], account["currency"], Decimal(account["credit_limit"])) == (
        "1", "GBP", Decimal("2500"))
    assert (contact["email"], contact["status"], contact["role"]) == (SHARED_EMAIL, "invited", "account_admin")
    with db.transaction() as session:
        assert session.get(Contact, contact["id"]).erp_contact_code == "4"
    [mail] = [m for m in deliver_and_read(db, mail_dir) if m["To"] == SHARED_EMAIL]
    assert any(f"/s/{store.slug}/activate?token=" in link for link in links(mail))

    again = client.post(URL, headers=headers, json={"email": SHARED_EMAIL, "account_code": "C20001",
                                                    "storefront_id": store.id})
    assert again.status_code == 201 and again.json()["contact"]["id"] == contact["id"]  # a new invitation
    assert len(accounts_with(db, "C20001")) == 1
    ltd = client.post(URL, headers=headers, json={"email": SHARED_EMAIL, "account_code": "C20000",
                                                  "storefront_id": store.id})
    assert ltd.status_code == 201 and ltd.json()["account"]["number"] == "C20000"


def test_an_instant_account_takes_the_storefront_defaults_the_erp_does_not_hold(db):
    defaults = {"default_prorate_billing": True, "default_billing_day": 15, "default_rep_code": "R7",
                "default_partial_charges_invoicing": "immediately", "default_auto_invoice_email": False,
                "default_language": "de", "default_customer_group": "web", "default_payment_method": "cash"}
    store = erp_store(db, **defaults)
    account = erp_account(db, store, "C20001")
    assert (account.prorate_billing, account.billing_day, account.rep_code, account.partial_charges_invoicing,
            account.auto_invoice_email, account.preferred_language) == (True, 15, "R7", "immediately", False, "de")
    # what the ERP holds wins: its group, terms and currency, and an ERP customer is invoiced
    assert (account.customer_group, account.payment_terms, account.currency, account.payment_method) == (
        "100", "1", "GBP", "invoice")
    assert account.storefront_id == store.id


def test_cash_excluded_and_unknown_codes_are_refused(db, client, file_erp):
    client.app.state.erp = file_erp.gateway
    store = erp_store(db, erp_excluded_account_codes="C20004")
    headers = f.token(client, f.staff(db, "admin"))

    def refusal(email: str, code: str):
        response = client.post(URL, headers=headers, json={"email": email, "account_code": code,
                                                           "storefront_id": store.id})
        assert response.status_code == 422, response.text
        return response.json()["error"]["fields"]["account_code"]

    assert refusal("jo.walker@example.org", "CASH") == "The cash sales account cannot have an instant account."
    assert refusal("ravi@pineoak.example", "C20004") == "This customer account is excluded from instant accounts."
    assert refusal("ravi@pineoak.example", "C20000") == ("ravi@pineoak.example is not a contact of the ERP "
                                                         "customer C20000.")
    assert refusal("lee@kestrel-catering.example", "C20002") == "This contact is not active in our records."
    assert refusal("ada@orchid-interiors.example", "C20003") == "This customer account is not active in our records."
    assert accounts_with(db, "CASH") == [] and accounts_with(db, "C20004") == []
    assert client.post(URL, headers=headers, json={"email": "x@example.com", "account_code": "C20000",
                                                   "storefront_id": 999999}).status_code == 422
    approver = f.token(client, f.staff(db, "approver"))
    assert client.post(URL, headers=approver, json={"email": "ravi@pineoak.example", "account_code": "C20004",
                                                    "storefront_id": store.id}).status_code == 403
    file_erp.down()
    down = client.post(URL, headers=headers, json={"email": "ravi@pineoak.example", "account_code": "C20004",
                                                   "storefront_id": store.id})
    assert down.status_code == 503 and down.json()["error"]["code"] == "erp_unavailable"


def test_instant_account_from_the_console(db, client, mail_dir, file_erp):
    client.app.state.erp = file_erp.gateway
    store = erp_store(db, name="Trade Counter")
    sign_in(client, f.staff(db, "csr"))

    search = client.get("/console/erp/instant", params={"email": "jo.walker@example.org", "storefront_id": store.id})
    assert search.status_code == 200 and "The cash sales account cannot have an instant account." in search.text
    assert "Create login and invite" not in search.text
    search = client.get("/console/erp/instant", params={"email": "ravi@pineoak.example", "storefront_id": store.id})
    assert "Pine &amp; Oak Joinery" in search.text and "Create login and invite" in search.text

    made = post(client, "/console/erp/instant", {"email": "ravi@pineoak.example", "account_code": "C20004",
                                                 "storefront_id": str(store.id), "role": "buyer"})
    assert made.status_code == 303
    [account] = accounts_with(db, "C20004")
    assert made.headers["location"] == f"/console/accounts/{account.id}"
    refused = post(client, "/console/erp/instant", {"email": "ravi@pineoak.example", "account_code": "C20000",
                                                    "storefront_id": str(store.id)})
    assert refused.status_code == 422 and "is not a contact of the ERP customer C20000." in refused.text
    assert [m["To"] for m in deliver_and_read(db, mail_dir)] == ["ravi@pineoak.example"]

    file_erp.down()
    down = client.get("/console/erp/instant", params={"email": "ravi@pineoak.example", "storefront_id": store.id})
    assert down.status_code == 503 and "The ERP cannot be reached right now." in down.text
