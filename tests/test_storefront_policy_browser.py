"""An administrator changes a storefront's registration policy in the console; the storefront follows it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests import factories as f

pytestmark = pytest.mark.browser


def test_admin_turns_self_registration_off(db, page: Page, live_server):
    admin = f.staff(db, "admin")
    store = f.storefront(db, name="Garden Supplies")
    page.goto(f"/s/{store.slug}/sign-in")
    expect(page.get_by_role("link", name="Create an account")).to_be_visible()

    page.goto("/console/sign-in")
    page.get_by_label("E-mail").fill(admin.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Storefronts").click()
    page.get_by_role("link", name="Garden Supplies").click()
    form = page.get_by_test_id("policy-form")
    form.get_by_label("Allow self-registration").uncheck()
    form.get_by_label("Account number prefix").fill("g-1")
    form.get_by_role("button", name="Save policy").click()
    expect(page.get_by_test_id("form-errors")).to_be_visible()
    expect(page.get_by_test_id("policy-form").get_by_label("Account number prefix")).to_have_value("g-1")

    form = page.get_by_test_id("policy-form")
    form.get_by_label("Account number prefix").fill("GS")
    form.get_by_label("Sign-in text", exact=True).fill("Trade customers only.")
    form.get_by_label("Sign-in text (Deutsch)").fill("Nur für Handelskunden.")
    form.get_by_role("button", name="Save policy").click()
    expect(page.get_by_role("status")).to_have_text("Policy saved.")

    page.goto(f"/s/{store.slug}/sign-in")
    expect(page.get_by_text("Trade customers only.")).to_be_visible()
    page.get_by_role("link", name="Deutsch").click()
    expect(page.get_by_text("Nur für Handelskunden.")).to_be_visible()
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("link", name="Create an account")).to_have_count(0)
