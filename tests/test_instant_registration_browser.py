"""Instant registration in a real browser against uvicorn with its outbox worker, behind each ERP adapter (the CSV
folder, and SAP Business One over its loopback Service Layer): "Create an account" asks only for the e-mail, the
e-mailed link offers the e-mail's two ERP accounts, each gets its own login, then the link is spent and the usual
sign-in offers both accounts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from pydantic import SecretStr

from accountdesk.core.settings import Settings, get_settings
from accountdesk.erp.demo_data import SHARED_EMAIL, demo_dataset, write_demo_folder
from tests.erp_world import erp_store
from tests.fakes.sap_service_layer import SapLoopback
from tests.test_storefront_browser import mailed_link, sign_in

pytestmark = pytest.mark.browser
PASSWORD = "Plum-Tiger-Cloud-9"


@pytest.fixture(params=["file", "sap"])
def settings(request: pytest.FixtureRequest, db, mail_dir, tmp_path) -> Iterator[Settings]:
    """The live server's ERP: the demo data as a CSV folder or behind the loopback SAP server; no read cache."""
    base = get_settings().model_copy(update={"database_url": db.url, "mail_dir": mail_dir, "erp_cache_seconds": 0})
    if request.param == "file":
        write_demo_folder(tmp_path / "erp")
        yield base.model_copy(update={"erp_adapter": "file", "erp_file_dir": tmp_path / "erp"})
        return
    with SapLoopback(demo_dataset()) as sap:
        fields = sap.settings_fields()  # model_copy does not validate: the password must already be a SecretStr
        yield base.model_copy(update={**fields, "erp_sap_password": SecretStr(fields["erp_sap_password"])})


def choose_password(page: Page, password: str, repeat: str | None = None) -> None:
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("Repeat the new password").fill(repeat or password)
    page.get_by_role("button", name="Create my login").click()


def test_instant_registration_through_the_chooser_of_accounts(db, page: Page, live_server, mail_dir):
    store = erp_store(db, name="Harbour Trade Counter")
    page.goto(f"/s/{store.slug}/sign-in")
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    page.get_by_label("E-mail").fill("not an address")
    page.get_by_role("button", name="Send me the link").click()
    expect(page.locator(".field-error")).to_contain_text("Enter a valid e-mail address")
    page.get_by_label("E-mail").fill("Maria.Lopez@HarbourTools.EXAMPLE")
    page.get_by_role("button", name="Send me the link").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(
        "^If this address belongs to one of our trade customers, we have sent you a link."))

    link = mailed_link(mail_dir, SHARED_EMAIL, "/register/instant")
    page.goto(link)
    accounts = page.get_by_test_id("instant-accounts")
    expect(accounts.locator("tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Create a login for Harbour Tools North").click()
    expect(page.get_by_test_id("instant-account")).to_contain_text("Harbour Tools North (C20001)")
    expect(page.get_by_label("First name")).to_have_value("Maria")
    expect(page.get_by_label("Last name")).to_have_value("Lopez")
    choose_password(page, PASSWORD, "Plum-Tiger-Cloud-8")
    expect(page.get_by_test_id("form-errors")).to_be_visible()
    expect(page.get_by_text("The two passwords differ.")).to_be_visible()
    choose_password(page, PASSWORD)
    expect(page.get_by_role("status")).to_have_text("Welcome, Maria: your login for Harbour Tools North is ready.")
    expect(page.locator("#signed-in-as")).to_contain_text("Signed in as Maria Lopez for Harbour Tools North (C20001)")

    page.goto(link)  # the same link, for the account left
    expect(page.get_by_test_id("instant-accounts").locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Create a login for Harbour Tools Ltd").click()
    choose_password(page, PASSWORD)
    expect(page.locator("#signed-in-as")).to_contain_text("Harbour Tools Ltd (C20000)")

    page.goto(link)
    expect(page.get_by_role("alert")).to_have_text(
        "This link has expired or was already used for every account. Ask for a new one.")
    expect(page.get_by_role("link", name="Ask for a new link")).to_be_visible()
    page.goto(f"/s/{store.slug}")
    page.get_by_role("button", name="Sign out").first.click()
    sign_in(page, SHARED_EMAIL, PASSWORD)
    page.get_by_role("button", name="Sign in to Harbour Tools North").click()
    expect(page.locator("#signed-in-as")).to_contain_text("Harbour Tools North")
