"""Accessibility as a test: axe-core (from the npm registry; `make install` fetches it into var/node) runs in Debian's
chromium on every storefront and console page of the app's router, signed out and signed in, and on the states a
page can be in (a refused form, a link page, an error page), in each language; any WCAG 2.0/2.1/2.2 A or AA
violation fails. And every form works by keyboard alone: registration and sign-in are tabbed through and sent with
the keyboard."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from html import escape
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from accountdesk.accounts.models import SavedPaymentMethod
from accountdesk.contacts.models import Contact
from accountdesk.contacts.service import ACTIVATION, RESET
from accountdesk.core import i18n, tokens
from accountdesk.core.db import utcnow
from accountdesk.core.settings import Settings
from accountdesk.domains.models import AccountDomain
from accountdesk.erp.demo_data import SHARED_EMAIL, write_demo_folder
from accountdesk.registration import instant
from accountdesk.registration.service import VERIFY_EMAIL
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.conftest import _unavailable
from tests.erp_world import erp_store
from tests.page_world import PageWorld, fill, get_paths, page_world
from tests.test_new_contact import invoice

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parent.parent / "var/node/node_modules/axe-core/axe.min.js"
AXE_URL = "/__axe__/axe.min.js"  # answered by Playwright from AXE: same origin, so the pages' CSP stays on
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
LANGUAGES = ["en"]  # the pages' languages (the browser's Accept-Language); add one when the states below speak it


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The demo ERP as a CSV folder, for the pages that show what the ERP holds."""
    write_demo_folder(tmp_path / "erp")
    return settings.model_copy(update={"erp_adapter": "file", "erp_file_dir": tmp_path / "erp",
                                       "erp_cache_seconds": 0})


@pytest.fixture(scope="session")
def axe_source() -> Path:
    if not AXE.exists():
        _unavailable("axe-core is not installed: make install (npm install --prefix var/node axe-core@4)")
    return AXE


def audit_context(browser, live_server: str, language: str, axe: Path) -> BrowserContext:
    context = browser.new_context(base_url=live_server, locale=language)
    context.set_default_timeout(10_000)
    context.route(f"{live_server}{AXE_URL}", lambda route: route.fulfill(path=str(axe),
                                                                         content_type="text/javascript"))
    return context


def violations(page: Page) -> list[dict]:
    """axe's WCAG A/AA violations on the page as it is now, each with the elements concerned."""
    page.add_script_tag(url=AXE_URL)
    found = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)["violations"]
    return [{"page": page.url, "rule": v["id"], "impact": v["impact"], "help": v["help"],
             "elements": [node["target"] for node in v["nodes"]][:5]} for v in found]


class Audit:
    """Visits pages in one browser context and keeps axe's findings per address (each address audited once)."""

    def __init__(self, context: BrowserContext) -> None:
        self.context, self.page = context, context.new_page()
        self.results: dict[str, list[dict]] = {}
        self.who = "signed out"
        self.csp_errors: list[str] = []
        self.page.on("console", lambda m: self.csp_errors.append(f"{self.page.url}: {m.text}")
                     if "Content Security Policy" in m.text else None)

    def visit(self, url: str) -> None:
        """Open `url` (following redirects: a console page signed out shows the sign-in page) and audit it."""
        if "text/html" not in self.context.request.get(url).headers.get("content-type", ""):
            return  # a CSV export
        self.page.goto(url)
        self.check()

    def check(self, label: str | None = None) -> None:
        """Audit the page as it is now (after a form was sent: a refused form, an error). A sign-in page is the
        same page whichever page it returns to (`next`)."""
        key = f"{self.who}: {label or re.sub(r'[?&]next=[^&]*', '', self.page.url)}"
        if key not in self.results:
            self.results[key] = violations(self.page)

    def visit_routes(self, paths: list[str], ids: dict[str, object]) -> None:
        for path in paths:
            self.visit(fill(path, ids))


def sign_in_both(page: Page, w: PageWorld) -> None:
    page.goto("/console/sign-in")
    page.get_by_label("E-mail").fill(w.admin.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()
    page.goto(f"/s/{w.store.slug}/sign-in")
    page.get_by_label("E-mail").fill(w.contact.email)
    page.get_by_label("Password", exact=True).fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signed-in-as")).to_be_visible()


def page_states(db, w: PageWorld) -> list[tuple[str, Callable[[Page], None]]]:
    """Pages in the states the route walk does not reach: refused forms, link pages, error pages."""
    slug = w.store.slug
    invited = f.contact(db, w.account, w.store, password=None, status="invited", email="new@lighthouse.example")
    with db.transaction() as session:
        reset = tokens.issue(session, RESET, timedelta(minutes=30), contact_id=w.contact.id)
        activation = tokens.issue(session, ACTIVATION, timedelta(hours=1), contact_id=invited.id)
    for name in ("First Shared Ltd", "Second Shared Ltd"):  # one e-mail, two accounts: the account chooser
        shared = f.contact(db, f.account(db, storefront_id=w.store.id, name=name), w.store, email="sam@shared.example")
    verified = erp_store(db, name="Verified Supplies")
    with db.transaction() as session:
        instant_link = tokens.issue(session, instant.PURPOSE, timedelta(hours=1),
                                    data={"email": SHARED_EMAIL, "storefront_id": verified.id})

    verify = joining_by_domain(db, w)

    def submit(url: str, button: str) -> Callable[[Page], None]:
        def act(page: Page) -> None:
            page.goto(url)
            page.get_by_role("button", name=button, exact=True).click()
            page.wait_for_load_state()
        return act

    def sign_in_wrong(url: str, label: str) -> Callable[[Page], None]:
        def act(page: Page) -> None:
            page.goto(url)
            page.get_by_label("E-mail").fill(w.contact.email)
            page.get_by_label(label, exact=True).fill("not-the-password")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
        return act

    def choose_account(page: Page) -> None:
        page.goto(f"/s/{slug}/sign-in")
        page.get_by_label("E-mail").fill(shared.email)
        page.get_by_label("Password", exact=True).fill(f.PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()

    def open_link(url: str) -> Callable[[Page], None]:
        return lambda page: page.goto(url)

    invoice(db, w.account, "INV-2001", days_ago=10)

    def claimed(send: bool) -> Callable[[Page], None]:
        def act(page: Page) -> None:
            page.goto(f"/s/{slug}/register/contact")
            page.get_by_label("Account number").fill(w.account.number)
            page.get_by_label("Billing postcode").fill("62701")
            page.get_by_label("Number of a recent invoice").fill("INV-2001")
            page.get_by_role("button", name="Continue").click()
            expect(page.get_by_test_id("login-form")).to_be_visible()
            if send:
                page.get_by_role("button", name="Create my login").click()
                expect(page.get_by_test_id("form-errors")).to_be_visible()
        return act

    return [
        ("registration refused", submit(f"/s/{slug}/register", "Create account")),
        ("new contact refused", submit(f"/s/{slug}/register/contact", "Continue")),
        ("new contact login", claimed(send=False)),
        ("new contact login refused", claimed(send=True)),
        ("instant registration", open_link(f"/s/{verified.slug}/register")),
        ("instant registration refused", submit(f"/s/{verified.slug}/register", "Send me the link")),
        ("instant link: the accounts", open_link(f"/s/{verified.slug}/register/instant?token={instant_link}")),
        ("instant link: a login", lambda page: page.get_by_role("link", name=re.compile("^Create a login for"))
         .first.click()),
        ("instant link: a login refused", lambda page: page.get_by_role("button", name="Create my login").click()),
        ("storefront sign-in refused", sign_in_wrong(f"/s/{slug}/sign-in", "Password")),
        ("account chooser", choose_account),
        ("forgot password refused", submit(f"/s/{slug}/password/forgot", "Send the link")),
        ("reset link", open_link(f"/s/{slug}/password/reset?token={reset}")),
        ("reset refused", submit(f"/s/{slug}/password/reset", "Save password")),
        ("activation link", open_link(f"/s/{slug}/activate?token={activation}")),
        ("spent link", open_link(f"/s/{slug}/password/reset?token=no-such-token")),
        ("re-verification link", open_link(f"/s/{slug}/reverify?token=no-such-token")),
        ("verification link", open_link(f"/s/{slug}/verify-email?token=no-such-token")),
        ("join offer", open_link(f"/s/{slug}/verify-email?token={verify}")),
        ("join requested", lambda page: page.get_by_role("button", name="Join Harbour Company").click()),
        ("unknown storefront", open_link("/s/no-such-store")),
        ("console sign-in refused", sign_in_wrong("/console/sign-in", "Password")),
    ]


def joining_by_domain(db, w: PageWorld) -> str:
    """A company with a verified e-mail domain, a registrant on it (whose verification link the page states open)
    and, for the account admin's domains page, w.contact as Lighthouse's admin with a domain and a join request."""
    company = f.account(db, name="Harbour Company", storefront_id=w.store.id)
    own = f.account(db, name="Own Start-up", storefront_id=w.store.id, status="pending_approval")
    registrant = f.contact(db, own, w.store, email="new@harbour-company.example", role="account_admin",
                           status="pending_approval")
    f.contact(db, w.account, w.store, email="joiner@lighthouse.example", status="pending_approval")
    with db.transaction() as session:
        session.add_all([AccountDomain(account_id=company.id, domain="harbour-company.example", verification_token="t",
                                       verified_at=utcnow(), verified_by="staff"),
                         AccountDomain(account_id=w.account.id, domain="lighthouse.example", verification_token="u",
                                       verified_by="")])
        session.get(Contact, w.contact.id).role = "account_admin"
        return tokens.issue(session, VERIFY_EMAIL, timedelta(hours=1), contact_id=registrant.id)


def saved_cards(db, w: PageWorld) -> int:
    """Two saved payment methods of the storefront's account (one expired, one a contact's): the record lists them.
    The id of the first, whose deletion a page state asks to confirm."""
    with db.transaction() as session:
        cards = [SavedPaymentMethod(account_id=w.account.id, provider="stripe", provider_token_id="pm_a11y_1",
                                    brand="visa", last4="4242", expiry_month=1, expiry_year=2020,
                                    holder_name="Robin Keel"),
                 SavedPaymentMethod(account_id=w.account.id, contact_id=w.contact.id, provider="adyen",
                                    provider_token_id="8415718415172200", brand="mastercard", last4="4444",
                                    expiry_month=12, expiry_year=2099)]
        session.add_all(cards)
        session.flush()
        return cards[0].id


def signed_in_states(w: PageWorld, card_id: int) -> list[tuple[str, Callable[[Page], None]]]:
    def submit(url: str, button: str) -> Callable[[Page], None]:
        def act(page: Page) -> None:
            page.goto(url)
            page.get_by_role("button", name=button, exact=True).first.click()
            page.wait_for_load_state()
        return act

    def register_client(page: Page) -> None:
        page.goto(f"/console/storefronts/{w.store.slug}/oidc-clients")
        page.get_by_label("Name").fill("Next.js shop")
        page.get_by_label("Redirect URIs", exact=True).fill("https://shop.example/callback")
        page.get_by_role("button", name="Register client").click()
        expect(page.get_by_test_id("client-secret")).to_be_visible()

    def new_customer(existing: bool) -> Callable[[Page], None]:
        """The dialog for Robin Keel, who is already a contact of w.account: the look-alikes and the "Create
        anyway" box, or the accounts found for "Add to an existing account"."""
        def act(page: Page) -> None:
            page.goto("/console/accounts/new")
            form = page.get_by_test_id("new-customer-form")
            for label, text in (("First name", "Robin"), ("Last name", "Keel"), ("E-mail", w.contact.email),
                                ("Phone", "+49 30 901820")):
                form.get_by_label(label).fill(text)
            if existing:
                form.get_by_label("Add to an existing account").check()
                form.get_by_label("Find the account").fill(w.account.name)
            form.get_by_role("button", name="Save").click()
            expect(page.get_by_test_id("form-errors")).to_be_visible()
        return act

    return [
        ("sign-in client registered (its secret shown once)", register_client),
        ("sign-in client refused", submit(f"/console/storefronts/{w.store.slug}/oidc-clients", "Register client")),
        ("new customer refused", submit("/console/accounts/new", "Save")),
        ("new customer: a customer with the same e-mail to confirm", new_customer(existing=False)),
        ("new customer: the accounts found", new_customer(existing=True)),
        ("change password refused", submit(f"/s/{w.store.slug}/account/password", "Change password")),
        ("erasure refused", submit(f"/s/{w.store.slug}/account/privacy", "Erase my data")),
        ("domain refused", submit(f"/s/{w.store.slug}/account/domains", "Add domain")),
        ("reseller customer refused", submit(f"/console/resellers/{w.reseller.reseller.id}/customers/new", "Save")),
        ("saved payment method deletion to confirm",
         lambda page: page.goto(f"/console/accounts/{w.account.id}?delete_payment_method={card_id}#confirm")),
        ("address book address refused", refuse_address),
        ("unknown customer", lambda page: page.goto("/console/accounts/999999")),
        ("a question before an action (deactivate an account)",
         submit(f"/console/accounts/{w.account.id}", "Deactivate account")),
        ("a question in place (deactivate a storefront user)", user_question(w)),
        ("copy into cart done: the record's carts", submit(
            f"/console/accounts/{w.account.id}/orders/{w.order_id}", "Copy into cart")),
        ("ERP search", lambda page: page.goto(f"/console/erp/instant?email={SHARED_EMAIL}")),
        ("webhook endpoint refused", submit("/console/webhooks", "Create endpoint")),
        ("webhook endpoint created, its secret shown", create_webhook_endpoint),
    ]


def refuse_address(page: Page) -> None:
    """The address book's new address sent without a street, its state or province chosen from the drop-down."""
    page.goto("/console/accounts")
    page.get_by_role("link", name="Lighthouse Traders").click()
    page.get_by_test_id("add-address").click()
    form = page.locator("form.address-form").last
    form.get_by_label("Country").select_option("US")
    form.get_by_label("State or province").select_option("US-OR")
    form.get_by_role("button", name="Add address").click()
    expect(page.locator("#address-new-line1-error")).to_be_visible()


def user_question(w: PageWorld) -> Callable[[Page], None]:
    """The reseller record's three-dot menu asks before deactivating a storefront user (a question in place)."""
    def act(page: Page) -> None:
        page.goto(f"/console/resellers/{w.reseller.reseller.id}/customers/{w.customer.id}?confirm=user:"
                  f"{w.customer_user_id}:deactivate")
        expect(page.get_by_test_id("confirm")).to_be_visible()
    return act


def create_webhook_endpoint(page: Page) -> None:
    page.goto("/console/webhooks")
    page.get_by_label("URL").fill("https://hooks.example.com/created")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_test_id("webhook-secret")).to_be_visible()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # the pages' HTML does not depend on the database
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_has_no_wcag_a_or_aa_violation(db, app, browser, live_server, axe_source, language):
    w = page_world(db)
    card_id = saved_cards(db, w)
    paths = get_paths(app, pages_only=True)
    context = audit_context(browser, live_server, language, axe_source)
    try:
        audit = Audit(context)
        audit.visit_routes(paths, {**w.ids(), "language": language})
        for label, act in page_states(db, w):
            act(audit.page)
            audit.check(label)
        signed_out = len(audit.results)
        sign_in_both(audit.page, w)
        audit.who = "signed in"
        audit.visit_routes(paths, {**w.ids(), "language": language})
        for label, act in signed_in_states(w, card_id):
            act(audit.page)
            audit.check(label)
    finally:
        context.close()
    found = [v for page_violations in audit.results.values() for v in page_violations]
    print(f"\naxe-core ({language}): {len(audit.results)} pages ({signed_out} signed out), "
          f"{len(found)} violations")
    assert len(audit.results) >= len(paths) + 20, sorted(audit.results)  # the walk reached the pages
    assert not found, json.dumps(found, indent=1)
    assert not audit.csp_errors, audit.csp_errors  # every page works under its Content-Security-Policy


# --- other languages -----------------------------------------------------------------------------------------------

OTHER_LANGUAGES = ["fr", "de"]


def translated_pages(w: PageWorld) -> list[tuple[str, str, str]]:
    """(who, address, words the page shows, as the English msgid): the pages of both sides people use most, for the
    French and German pass. The storefront's pages speak the browser's language (or the signed-in contact's), the
    console's the staff user's."""
    slug = w.store.slug
    return [("visitor", f"/s/{slug}/sign-in", "Forgot your password?"),
            ("visitor", f"/s/{slug}/register", "Create an account"),
            ("contact", f"/s/{slug}/account", "Your account"),
            ("staff", "/console", "Create customer"),  # the console's start: the customer search
            ("staff", f"/console/accounts/{w.account.id}", "History"),
            ("staff", "/console/accounts/new", "Company name")]


def sign_in_by_id(page: Page, url: str, email_field: str, password_field: str, email: str) -> None:
    """Sign in through a form whose labels speak another language: its fields by id, sent with Enter."""
    page.goto(url)
    page.locator(f"#{email_field}").fill(email)
    page.locator(f"#{password_field}").fill(f.PASSWORD)
    with page.expect_navigation():
        page.locator(f"#{password_field}").press("Enter")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # the pages' HTML does not depend on the database
@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_the_main_pages_in_french_and_german_have_no_wcag_a_or_aa_violation(db, browser, live_server, axe_source,
                                                                            language):
    w = page_world(db)
    with db.transaction() as session:  # the contact and the staff user read their pages in the language
        session.get(Contact, w.contact.id).language = language
        session.get(StaffUser, w.admin.id).language = language
    context = audit_context(browser, live_server, language, axe_source)
    shown: dict[str, tuple[str, str]] = {}
    try:
        audit = Audit(context)
        for who, url, _words in translated_pages(w):
            if who == "contact" and audit.who == "signed out":
                sign_in_by_id(audit.page, f"/s/{w.store.slug}/sign-in", "email", "password", w.contact.email)
                sign_in_by_id(audit.page, "/console/sign-in", "sign-in-email", "sign-in-password", w.admin.email)
                audit.who = "signed in"
            audit.visit(url)
            shown[url] = (audit.page.evaluate("document.documentElement.lang"), audit.page.content())
    finally:
        context.close()
    with i18n.speaking(language):
        for (_who, url, words), (lang, html) in zip(translated_pages(w), shown.values(), strict=True):
            assert lang == language, (url, lang)  # the lang attribute says the language the page shows
            assert i18n.gettext(words) != words and escape(i18n.gettext(words)) in html, (url, words)
    found = [v for page_violations in audit.results.values() for v in page_violations]
    assert len(audit.results) == len(translated_pages(w)), sorted(audit.results)
    assert not found, json.dumps(found, indent=1)


# --- keyboard only -------------------------------------------------------------------------------------------------

def focused(page: Page) -> str:
    """The focused element: its id, else its text (a button, a link)."""
    return page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()")


def tab_through(page: Page, typing: dict[str, str], last: str) -> list[str]:
    """Press Tab from the top of the page until `last` has the focus, typing into the fields named in `typing`
    (a checkbox takes " ", a drop-down the start of an option); returns the order in which the focus went."""
    order: list[str] = []
    while last not in order:
        assert len(order) < 60, order
        page.keyboard.press("Tab")
        order.append(focused(page))
        if order[-1] in typing:
            page.keyboard.type(typing[order[-1]])
    return order


def form_controls(page: Page, form: str) -> list[str]:
    """The ids of a form's visible controls, in the order of the page."""
    return page.evaluate("""form => [...document.querySelector(form).elements]
        .filter(e => e.localName !== 'fieldset' && e.type !== 'hidden' && e.offsetParent !== null)
        .map(e => e.id || e.textContent.trim())""", form)


def test_registration_and_sign_in_by_keyboard_alone(db, page: Page, live_server):
    store = f.storefront(db, name="Keyboard Supplies", registration_mode="open")
    page.goto(f"/s/{store.slug}/register")
    typing = {"reg-company-name": "Tabstop Trading", "reg-first-name": "Kai", "reg-last-name": "Keys",
              "reg-email": "kai@tabstop.example", "reg-phone": "+49 30 901820", "reg-billing-address-line1":
              "Tastenweg 1", "reg-billing-address-city": "Berlin", "reg-billing-address-postcode": "10115",
              "reg-billing-address-country": "Germany", "reg-password": "a-keyboard-only-passphrase",
              "reg-password-confirm": "a-keyboard-only-passphrase"}
    order = tab_through(page, typing, last="Create account")
    controls = form_controls(page, "[data-testid=register-form]")
    assert [name for name in order if name in controls] == controls  # every field, in the order shown
    expect(page.get_by_label("Country")).to_have_value("DE")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()

    page.goto(f"/s/{store.slug}/sign-in")
    order = tab_through(page, {"email": "kai@tabstop.example", "password": "a-keyboard-only-passphrase"},
                        last="password")
    assert order[-2:] == ["email", "password"]
    page.keyboard.press("Enter")  # sends the form from its last field
    expect(page.locator("#signed-in-as")).to_contain_text("Kai Keys")


def test_console_sign_in_by_keyboard_alone(db, page: Page, live_server):
    staff = f.staff(db, "csr")
    page.goto("/console/sign-in")
    assert focused(page) == "sign-in-email"  # the form takes the focus
    page.keyboard.type(staff.email)
    page.keyboard.press("Tab")
    page.keyboard.type(f.PASSWORD)
    page.keyboard.press("Tab")
    assert focused(page) == "Sign in"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()
