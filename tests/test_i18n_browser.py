"""Languages in a real browser: a French buyer resets the password from the French e-mail, signs in and reads the
account page with French dates and amounts; a German staff user works in a German console."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from accountdesk.core.settings import Settings, get_settings
from accountdesk.erp.demo_data import write_demo_folder
from tests import factories as f
from tests.erp_world import erp_login, erp_store
from tests.mailbox import read_folder, wait_for
from tests.test_storefront_browser import mailed_link

pytestmark = pytest.mark.browser
TOM = "tom.reed@harbourtools.example"
NEW_PASSWORD = "un-nouveau-mot-de-passe-77"


@pytest.fixture
def settings(db, mail_dir, tmp_path) -> Settings:
    """The live server's ERP: the demo CSV folder (account C20000: credit limit 5,000.00 GBP, invoice 1001 of
    1,250.00 GBP issued 75 days ago)."""
    write_demo_folder(tmp_path / "erp")
    return get_settings().model_copy(update={"database_url": db.url, "mail_dir": mail_dir,
                                             "erp_file_dir": tmp_path / "erp", "erp_cache_seconds": 0})


def test_french_buyer_resets_the_password_and_reads_the_account_page_in_french(db, browser, live_server, mail_dir):
    store = erp_store(db, name="Comptoir Harbour")
    erp_login(db, store, "C20000", TOM, role="account_admin", language="fr", date_format="DD/MM/YYYY")
    context = browser.new_context(base_url=live_server, locale="fr-FR")
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"/s/{store.slug}/sign-in")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        page.get_by_role("link", name="Mot de passe oublié ?").click()
        page.get_by_label("E-mail").fill(TOM)
        page.get_by_role("button", name="Envoyer le lien").click()
        expect(page.get_by_role("heading", name="Consultez votre messagerie")).to_be_visible()

        link = mailed_link(mail_dir, TOM, "/password/reset")
        message = wait_for(lambda: [m for m in read_folder(mail_dir) if m["To"] == TOM])[-1]
        assert message["Subject"] == "Réinitialisez votre mot de passe pour Comptoir Harbour"
        assert message["Content-Language"] == "fr"
        page.goto(link)
        expect(page.get_by_role("heading", name="Choisir un nouveau mot de passe")).to_be_visible()
        page.get_by_label("Nouveau mot de passe", exact=True).fill("reed-motdepasse-77")  # the buyer's name
        page.get_by_label("Répétez le nouveau mot de passe").fill("reed-motdepasse-77")
        page.get_by_role("button", name="Enregistrer le mot de passe").click()
        expect(page.get_by_role("alert")).to_have_text(
            "N'utilisez ni votre nom ni votre adresse e-mail dans le mot de passe.")
        page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("Répétez le nouveau mot de passe").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Enregistrer le mot de passe").click()
        expect(page.get_by_role("status")).to_have_text(
            "Votre mot de passe a été changé. Connectez-vous avec votre nouveau mot de passe.")

        page.get_by_label("E-mail").fill(TOM)
        page.get_by_label("Mot de passe", exact=True).fill(NEW_PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        expect(page.locator("#signed-in-as")).to_contain_text("Connecté en tant que Tom Reed")
        page.get_by_role("link", name="Mon compte").click()

        expect(page.get_by_role("heading", name="Crédit")).to_be_visible()
        # Babel's French: a narrow no-break space between thousands, a no-break space before the currency, and the
        # pound written £GB (CLDR)
        expect(page.get_by_test_id("credit-limit")).to_have_text("5\u202f000,00\xa0£GB")
        invoice = page.get_by_test_id("invoices").get_by_role("row").filter(has_text="1001")
        issued = (date.today() - timedelta(days=75)).strftime("%d/%m/%Y")
        expect(invoice).to_contain_text(issued)
        expect(invoice).to_contain_text("1\u202f250,00\xa0£GB")
        expect(invoice).to_contain_text("Payée")
        expect(page.get_by_test_id("invoices")).not_to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2}"))

        # the switcher: the page in German, and back
        page.get_by_test_id("language-switcher").get_by_role("link", name="Deutsch").click()
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.get_by_test_id("credit-limit")).to_have_text("5.000,00\xa0£")
        expect(page.get_by_test_id("invoices")).to_contain_text(issued)  # the contact's date format stays
        page.get_by_test_id("language-switcher").get_by_role("link", name="Français").click()
        expect(page.get_by_role("heading", name="Crédit")).to_be_visible()
    finally:
        context.close()


def test_german_staff_user_works_in_a_german_console(db, page, live_server):
    staff = f.staff(db, "admin")
    store = f.storefront(db, name="Fahrradteile")
    f.account(db, name="Radhaus Müller", storefront_id=store.id, phone="+441134960000")
    page.goto("/console/sign-in")
    page.get_by_label("E-mail").fill(staff.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()
    page.get_by_title("My account").click()
    page.get_by_label("Language of the console").select_option(label="Deutsch")
    page.get_by_role("button", name="Save language").click()

    expect(page.get_by_role("status")).to_have_text("Ihre Sprache wurde gespeichert.")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", name="Mein Konto")).to_be_visible()
    page.get_by_role("link", name="Kunden", exact=True).click()
    expect(page.get_by_role("heading", name="Kunden")).to_be_visible()
    page.get_by_label("Suchen").fill("Radhaus")
    page.get_by_role("button", name="Suchen").click()
    expect(page.get_by_test_id("result-count")).to_have_text("1–1 von 1 Kunde")
    expect(page.get_by_test_id("results")).to_contain_text("+44 113 496 0000")
    page.get_by_role("link", name="Radhaus Müller").click()
    expect(page.get_by_role("heading", name="Adressbuch")).to_be_visible()
    expect(page.get_by_role("button", name="Konto deaktivieren")).to_be_visible()
