"""The console's import in a real browser: upload a customer file, read the preview (counts and a row's problem in
the product's words, nothing changed yet), then import the good rows and see the outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.settings import Settings
from tests import factories as f
from tests.test_imports import GOOD, write_csv

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"import_dir": tmp_path / "imports"})


def count(db, model) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_staff_preview_a_customer_file_and_import_its_good_rows(db, page: Page, live_server, tmp_path):
    f.storefront(db, name="Harbour Supplies")
    staff = f.staff(db, "csr")
    bad = {**GOOD[2], "billing_region": ""}
    path = write_csv(tmp_path / "customers.csv", [GOOD[0], GOOD[1], bad, GOOD[3]])
    page.set_default_timeout(30_000)  # the preview and the import run in the request, on a machine others share
    page.goto("/console/sign-in")
    page.get_by_label("E-mail").fill(staff.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", name="Imports", exact=True)).to_be_visible()
    page.get_by_label("Storefront the contacts sign in to").select_option(label="Harbour Supplies")
    page.get_by_label("Customer file (.csv or .xlsx)").set_input_files(str(path))
    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_role("heading", name="Preview of customers.csv")).to_be_visible(timeout=30_000)
    counts = page.get_by_test_id("counts")
    expect(counts.locator("tbody td").nth(0)).to_have_text("4")  # rows
    expect(counts.locator("tbody td").nth(1)).to_have_text("3")  # would be created
    expect(counts.locator("tbody td").nth(5)).to_have_text("1")  # need attention
    problem = page.get_by_test_id("rows").get_by_role("row").filter(has_text="with problems")
    expect(problem).to_contain_text("billing_region: Choose a state or province.")
    expect(problem.get_by_role("cell").first).to_have_text("4")
    assert count(db, Account) == 0  # a preview changes nothing

    page.get_by_label("Import the good rows even if some rows have problems").check()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("status").first).to_have_text("Imported.", timeout=30_000)
    expect(page.get_by_test_id("import-status")).to_have_text("imported")
    assert (count(db, Account), count(db, Contact)) == (2, 3)
    page.get_by_role("link", name="All imports").click()
    expect(page.get_by_test_id("imports")).to_contain_text(staff.email)
