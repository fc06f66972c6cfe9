"""The console in a real browser (Debian's chromium through Playwright) against uvicorn with its outbox worker:
sign in, search first, create a customer (after a refused try), add a contact, toggle Active, send a reset link."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from accountdesk.contacts.service import ACTIVATION
from accountdesk.core import tokens
from tests import factories as f
from tests.mailbox import links, read_folder, wait_for

pytestmark = pytest.mark.browser


def test_staff_creates_a_customer_with_a_contact_and_sends_a_reset_link(db, page: Page, live_server, mail_dir):
    staff = f.staff(db, "csr")
    store = f.storefront(db, name="Bike Parts Online")
    f.account(db, name="Existing Bakery", storefront_id=store.id)

    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=%2Fconsole%2Faccounts$"))
    page.get_by_label("E-mail").fill(staff.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("sign-in-error")).to_have_text("E-mail or password is not right.")
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()

    # search first: the existing customer is found, the new one is not there yet
    page.get_by_label("Search").fill("bakery")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("results")).to_contain_text("Existing Bakery")
    page.get_by_label("Search").fill("Nordwind")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("result-count")).to_contain_text("No customer matches.")
    page.get_by_test_id("create-customer").click()

    form = page.get_by_test_id("new-customer-form")
    expect(form.get_by_label("Company name")).to_have_value("Nordwind")
    form.get_by_label("Company name").fill("Nordwind Cycles")
    form.get_by_label("First name").fill("Jan")
    form.get_by_label("Last name").fill("Nord")
    form.get_by_label("E-mail").fill("orders@nordwind.example")
    form.get_by_label("Phone").fill("+49 30 901820")
    form.get_by_label("Preferred language").select_option("de")
    form.get_by_label("Street address").fill("Hauptstr. 1")
    form.get_by_label("Postcode").fill("50667")
    form.get_by_label("Country").select_option("DE")
    expect(form.get_by_role("checkbox", name=re.compile("^Active"))).to_be_checked()
    form.get_by_role("button", name="Save").click()  # the city is missing
    expect(page.locator("#new-billing-address-city-error")).to_have_text("This field is required.")
    expect(page.get_by_test_id("form-errors")).to_be_visible()
    form = page.get_by_test_id("new-customer-form")
    expect(form.get_by_label("Street address")).to_have_value("Hauptstr. 1")
    expect(form.get_by_label("Country")).to_have_value("DE")
    form.get_by_label("City").fill("Köln")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Customer W\d+ created\."))
    page.get_by_role("link", name="Open the customer record").click()
    expect(page.get_by_role("heading", name="Nordwind Cycles")).to_be_visible()
    expect(page.get_by_test_id("account-status")).to_have_text("active")

    # add a contact
    page.get_by_test_id("add-contact").click()
    contact_form = page.get_by_test_id("contact-form")
    contact_form.get_by_label("First name").fill("Ada")
    contact_form.get_by_label("Last name").fill("Lovelace")
    contact_form.get_by_label("E-mail").fill("ada@nordwind.example")
    contact_form.get_by_label("Phone").fill("+49 30 901820")
    contact_form.get_by_label("Preferred language").select_option("de")
    contact_form.get_by_role("button", name="Add contact").click()
    expect(page.get_by_role("status")).to_have_text("Contact Ada Lovelace added.")
    expect(page.get_by_test_id("contacts")).to_contain_text("ada@nordwind.example")

    # the Active toggle, off and on again
    page.get_by_role("button", name="Deactivate account").click()
    expect(page.get_by_role("alertdialog", name="Deactivate this account?")).to_be_visible()
    page.get_by_role("button", name="Yes, deactivate").click()
    expect(page.get_by_role("status")).to_have_text("Account deactivated.")
    expect(page.get_by_test_id("account-status")).to_have_text("inactive")
    page.get_by_role("button", name="Activate account").click()
    expect(page.get_by_role("status")).to_have_text("Account activated.")
    expect(page.get_by_test_id("account-status")).to_have_text("active")
    expect(page.get_by_test_id("history")).to_contain_text("Account deactivated")

    # reset link, after confirming
    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_test_id("contact-status")).to_have_text("active")
    page.get_by_role("link", name="Send reset link").click()
    expect(page.get_by_role("heading", name="Send a reset link?")).to_be_visible()
    page.get_by_role("button", name="Yes, send the link").click()
    # a contact who never had a password gets its welcome with an activation link: there is nothing to reset
    expect(page.get_by_role("status")).to_have_text("Welcome e-mail with an activation link sent to "
                                                    "ada@nordwind.example.")

    message = wait_for(lambda: next((m for m in read_folder(mail_dir) if m["To"] == "ada@nordwind.example"), None))
    assert message["Subject"] == "Willkommen bei Bike Parts Online: Zugang aktivieren"  # Ada's language
    [link] = [u for u in links(message) if "token=" in u]
    assert link.startswith(f"{live_server}/s/{store.slug}/activate?token=")
    with db.transaction() as session:
        issued = tokens.peek(session, ACTIVATION, link.split("token=", 1)[1])
        assert issued is not None and issued.contact_id is not None

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    page.goto("/console/accounts")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
