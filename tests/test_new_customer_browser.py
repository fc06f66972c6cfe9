"""A German-speaking clerk creates a customer in one dialog in a real browser (Debian's chromium through Playwright)
and sends the activation link; the console speaks German throughout."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from accountdesk.staff.models import StaffUser
from tests import factories as f

pytestmark = pytest.mark.browser


def _sign_in(page: Page, email: str) -> None:
    page.goto("/console/sign-in")
    page.locator("#sign-in-email").fill(email)
    page.locator("#sign-in-password").fill(f.PASSWORD)
    page.locator("#sign-in-email").press("Enter")


def test_a_german_clerk_creates_a_customer_in_one_dialog(db, page: Page, live_server):
    clerk = f.staff(db, "csr")
    with db.transaction() as session:
        session.get(StaffUser, clerk.id).language = "de"
    f.storefront(db, name="Radladen")
    _sign_in(page, clerk.email)
    page.get_by_role("link", name="Kunden anlegen").click()

    expect(page.get_by_role("heading", name="Kunden anlegen")).to_be_visible()
    form = page.get_by_test_id("new-customer-form")
    form.get_by_label("Vorname").fill("Jana")
    form.get_by_label("Nachname").fill("Berg")
    form.get_by_label("E-Mail").fill("jana@berg.example")
    form.get_by_label("Telefon").fill("+49 30 901820")
    form.get_by_label("Bevorzugte Sprache").select_option("de")
    expect(form.get_by_role("checkbox", name=re.compile("^Aktiv — der Kunde"))).to_be_checked()
    expect(form.get_by_label("Neues Kundenkonto")).to_be_checked()
    expect(form.get_by_test_id("existing-account")).to_be_hidden()  # shown only for "Zu einem bestehenden Konto …"
    form.get_by_label("Firmenname").fill("Berg Fahrräder")
    form.get_by_label("Ort", exact=True).fill("Köln")
    form.get_by_role("button", name="Speichern").click()  # an address without street and country
    expect(page.get_by_test_id("form-errors")).to_contain_text("Einige Felder")
    expect(page.locator("#new-billing-address-line1-error")).to_be_visible()
    form.get_by_label("Straße und Hausnummer").fill("Domstr. 2")
    form.get_by_label("Land", exact=True).select_option("DE")
    form.get_by_role("button", name="Speichern").click()

    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Kunde W\d+ angelegt\.$"))
    expect(page.get_by_role("heading", name="Wie meldet sich Jana Berg an?")).to_be_visible()
    page.get_by_role("button", name="Aktivierungslink senden").click()
    expect(page.get_by_role("status")).to_have_text(
        "Willkommens-E-Mail mit einem Aktivierungslink an jana@berg.example gesendet.")
    expect(page.get_by_role("heading", name="Berg Fahrräder")).to_be_visible()


def test_a_clerk_opens_a_resellers_account_from_the_dialog(db, page: Page, live_server):
    clerk = f.staff(db, "csr")
    f.storefront(db, name="Main Shop")
    _sign_in(page, clerk.email)
    page.get_by_role("link", name="Create customer").click()
    form = page.get_by_test_id("new-customer-form")
    for label, text in (("First name", "Rui"), ("Last name", "Costa"), ("E-mail", "rui@velo-partner.example"),
                        ("Phone", "+351 21 123 4567")):
        form.get_by_label(label).fill(text)
    form.get_by_label(re.compile("The company is a reseller")).check()
    form.get_by_role("button", name="Save").click()  # a reseller without the company's name
    expect(page.locator("#new-company-name-error")).to_have_text("A reseller is a company: enter its name.")
    expect(form.get_by_label(re.compile("The company is a reseller"))).to_be_checked()
    form.get_by_label("Company name").fill("Velo Partner Lda")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Customer W\d+ created\.$"))
    page.get_by_role("link", name="Open the customer record").click()
    expect(page.get_by_role("heading", name="Velo Partner Lda")).to_be_visible()
    expect(page.get_by_test_id("history")).to_contain_text("Kind: — → Reseller")
