"""The ERP pages in a real browser against uvicorn with its outbox worker and the file ERP: re-verification from the
e-mailed link, the account switcher with the account page, and the console's ERP pushes, instant account and
remapping of an account."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.db import utcnow
from accountdesk.core.settings import Settings, get_settings
from accountdesk.erp.demo_data import SHARED_EMAIL, write_demo_folder
from accountdesk.registration import erp as erp_service
from tests import factories as f
from tests.erp_world import erp_login, erp_store
from tests.mailbox import wait_for
from tests.test_storefront_browser import mailed_link, sign_in

pytestmark = pytest.mark.browser
TOM = "tom.reed@harbourtools.example"


@pytest.fixture
def settings(db, mail_dir, tmp_path) -> Settings:
    """The live server's ERP: the demo CSV folder, without a read cache."""
    write_demo_folder(tmp_path / "erp")
    return get_settings().model_copy(update={"database_url": db.url, "mail_dir": mail_dir,
                                             "erp_file_dir": tmp_path / "erp", "erp_cache_seconds": 0})


def test_reverification_from_the_email_link(db, page: Page, live_server, mail_dir):
    store = erp_store(db, name="Harbour Trade Counter")
    tom = erp_login(db, store, "C20000", TOM)
    with db.transaction() as session:
        session.execute(update(Contact).where(Contact.id == tom.id)
                        .values(last_sign_in_at=utcnow() - timedelta(days=91)))

    page.goto(f"/s/{store.slug}/sign-in")
    sign_in(page, TOM, f.PASSWORD)
    expect(page.get_by_role("alert")).to_have_text(
        "For your security, please confirm it is still you: we have sent you an e-mail with a link.")

    page.goto(mailed_link(mail_dir, TOM, "/reverify"))
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_role("button", name="Confirm it is me").click()
    expect(page.get_by_role("status")).to_have_text(
        "Thank you: your login is confirmed. Sign in with your usual password.")
    sign_in(page, TOM, f.PASSWORD)
    expect(page.locator("#signed-in-as")).to_have_text(re.compile("Signed in as Tom Reed for Harbour Tools Ltd"))


def test_account_switcher(db, page: Page, live_server):
    store = erp_store(db, name="Harbour Trade Counter")
    erp_login(db, store, "C20000", SHARED_EMAIL, role="account_admin")
    erp_login(db, store, "C20001", SHARED_EMAIL, role="account_admin")

    page.goto(f"/s/{store.slug}/sign-in")
    sign_in(page, SHARED_EMAIL, f.PASSWORD)
    page.get_by_role("button", name="Sign in to Harbour Tools Ltd").click()
    expect(page.locator("#signed-in-as")).to_contain_text("Harbour Tools Ltd")
    page.get_by_role("link", name="My account").click()
    expect(page.get_by_test_id("account-name")).to_contain_text("Harbour Tools Ltd")
    expect(page.get_by_test_id("credit-limit")).to_have_text("£5,000.00")
    expect(page.get_by_test_id("invoices")).to_contain_text("1003")
    page.locator("summary", has_text="closing balance").last.click()

    switcher = page.get_by_test_id("account-switch")
    switcher.get_by_label("Account").select_option(label="Harbour Tools North (C20001)")
    switcher.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("status")).to_have_text("You are now working for Harbour Tools North.")
    expect(page.get_by_test_id("account-name")).to_contain_text("Harbour Tools North C20001")
    expect(page.get_by_test_id("credit-limit")).to_have_text("£2,500.00")
    expect(page.get_by_test_id("balance")).to_have_text("£640.00")
    page.get_by_role("link", name="Harbour Trade Counter").click()
    expect(page.locator("#signed-in-as")).to_contain_text("Harbour Tools North")


def test_console_erp_pushes_instant_account_and_remap(db, page: Page, live_server, mail_dir):
    store = erp_store(db, name="Harbour Trade Counter")
    pushed = f.account(db, name="Lantern Bakery", storefront_id=store.id, customer_group="110")
    unmapped = f.account(db, name="Moss Garden Supplies", storefront_id=store.id)
    with db.transaction() as session:  # a push whose retries ran out while the ERP was down
        row = erp_service.request_erp_push(session, session.get(Account, pushed.id), "approved")
        row.status, row.attempts, row.last_error = "failed", 8, "ErpUnavailable: the ERP folder is missing."
    staff = f.staff(db, "csr")

    page.goto("/console/erp")
    page.get_by_label("E-mail").fill(staff.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="ERP pushes")).to_be_visible()
    expect(page.get_by_test_id("pushes")).to_contain_text("the ERP folder is missing.")
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text("Lantern Bakery: the push will be tried again now.")
    wait_for(lambda: erp_code(db, pushed.id))  # the worker pushed it
    page.reload()
    expect(page.get_by_text("Nothing waiting: every push has reached the ERP.")).to_be_visible()

    page.get_by_test_id("instant-link").click()
    page.get_by_label("E-mail in the ERP").fill("ravi@pineoak.example")
    page.get_by_label("Storefront").select_option(label="Harbour Trade Counter")
    page.get_by_role("button", name="Search the ERP").click()
    expect(page.get_by_test_id("match-C20004")).to_contain_text("Pine & Oak Joinery")
    page.get_by_role("button", name="Create login and invite").click()
    expect(page.get_by_role("status")).to_contain_text("ravi@pineoak.example is invited to Harbour Trade Counter")
    expect(page.get_by_test_id("erp-code")).to_contain_text("ERP customer C20004")
    assert "/activate?token=" in mailed_link(mail_dir, "ravi@pineoak.example", "/activate")

    page.goto(f"/console/accounts/{unmapped.id}")
    form = page.get_by_test_id("erp-code-form")
    form.get_by_label("Map to the ERP customer code").fill("C404")
    form.get_by_role("button", name="Map to this ERP code").click()
    expect(page.get_by_test_id("erp-code-form")).to_contain_text("The ERP has no customer with the code C404.")
    page.get_by_test_id("erp-code-form").get_by_label("Map to the ERP customer code").fill("C20002")
    page.get_by_test_id("erp-code-form").get_by_role("button", name="Map to this ERP code").click()
    expect(page.get_by_role("status")).to_have_text("Mapped to ERP customer C20002.")
    expect(page.get_by_test_id("erp-code")).to_contain_text("ERP customer C20002")



def erp_code(db, account_id: int) -> str | None:
    with db.transaction() as session:
        return session.get(Account, account_id).erp_code
