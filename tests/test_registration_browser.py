"""A real browser registers on storefronts: open registration (by default the verification link, then the sign-in
form; signed in at once where the policy says so), approval registration approved in the console and the first
sign-in from the approval e-mail, a rejection with its reason, and a new contact for an existing account (the
generic refusal, then success)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from playwright.sync_api import expect

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.core.audit import Actor
from tests import factories as f
from tests.mailbox import read_folder, text_of, wait_for
from tests.test_registration_api import PASSWORD
from tests.test_storefront_browser import mailed_link, sign_in


def fill_registration(page, *, email: str, company: str | None, postcode: str = "62701") -> None:
    if company is None:
        page.get_by_label("I'm buying as a private person").check()
        expect(page.get_by_label("Company name")).to_be_hidden()
    else:
        page.get_by_label("Company name").fill(company)
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Phone").fill("(217) 555-0142")
    page.get_by_label("Street address").fill("1 Main Street")
    page.get_by_label("City").fill("Springfield")
    page.get_by_label("Postcode").fill(postcode)
    page.get_by_label("Country").select_option("US")
    expect(page.locator("#reg-billing-address-region option[value='US-IL']")).to_be_attached()  # loaded by script
    page.get_by_label("State or province").select_option("US-IL")
    page.locator("#reg-password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)


def staff_sign_in(page, email: str) -> None:
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def mail_to(mail_dir, address: str, subject_start: str):
    return wait_for(lambda: [m for m in read_folder(mail_dir)
                             if address in m["To"] and m["Subject"].startswith(subject_start)])[-1]


def test_open_registration_signs_in_at_once_where_the_policy_says_so(db, page, live_server, mail_dir):
    store = f.storefront(db, name="Widget Shop", account_number_prefix="WEB", sign_in_after_registration=True)
    page.goto(f"/s/{store.slug}/sign-in")
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    fill_registration(page, email="ada@example.com", company="Acme Widgets Ltd", postcode="ABCDE")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("This postcode does not look right for the country.")).to_be_visible()
    expect(page.get_by_label("Company name")).to_have_value("Acme Widgets Ltd")  # what was typed stays
    page.get_by_label("Postcode").fill("62701")
    page.locator("#reg-password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you for registering.")
    page.get_by_role("link", name="Continue to the store").click()
    expect(page.locator("#signed-in-as")).to_have_text(
        re.compile("Signed in as Ada Lovelace for Acme Widgets Ltd \\(WEB000001\\)"))

    page.goto(mailed_link(mail_dir, "ada@example.com", "/verify-email"))
    expect(page.get_by_test_id("email-verified")).to_have_text("Your e-mail address ada@example.com is confirmed.")


def test_open_registration_confirms_the_address_then_signs_in(db, page, live_server, mail_dir):
    store = f.storefront(db, name="Widget Shop")
    page.goto(f"/s/{store.slug}/register")
    fill_registration(page, email="ada@example.com", company="Acme Widgets Ltd")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you for registering.")
    expect(page.locator("#signed-in-as")).to_have_count(0)  # the answer signs nobody in

    page.goto(mailed_link(mail_dir, "ada@example.com", "/verify-email"))
    expect(page.get_by_test_id("email-verified")).to_have_text("Your e-mail address ada@example.com is confirmed.")
    page.get_by_role("link", name="Sign in").click()
    sign_in(page, "ada@example.com", PASSWORD)
    expect(page.locator("#signed-in-as")).to_have_text(re.compile("Signed in as Ada Lovelace for Acme Widgets Ltd"))


def test_approval_registration_is_approved_in_the_console_then_signs_in(db, page, live_server, mail_dir):
    store = f.storefront(db, name="Trade Shop", registration_mode="approval", staff_notification_to="sales@shop.test")
    approver = f.staff(db, "approver")
    page.goto(f"/s/{store.slug}/register")
    fill_registration(page, email="ada@example.com", company=None)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("We received your request")
    expect(page.get_by_role("link", name="Go to sign-in")).to_be_visible()

    notice = mail_to(mail_dir, "sales@shop.test", "New account request on Trade Shop")
    review = next(line.strip() for line in text_of(notice).splitlines() if "/console/approvals/" in line)
    page.goto(review)
    staff_sign_in(page, approver.email)  # the console asks for sign-in first, then comes back
    expect(page.get_by_role("heading", name=re.compile("Ada Lovelace"))).to_be_visible()
    expect(page.get_by_text("Private person (B2C)")).to_be_visible()
    page.get_by_role("link", name="Approvals", exact=True).click()  # the queue, from the console navigation
    expect(page.get_by_test_id("account-requests")).to_contain_text("ada@example.com")
    page.get_by_role("link", name="Review").click()
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("confirm")).to_contain_text("Approve Ada Lovelace?")
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_role("status")).to_contain_text("Approved Ada Lovelace")
    expect(page.get_by_test_id("no-account-requests")).to_be_visible()

    page.goto(mailed_link(mail_dir, "ada@example.com", "/sign-in"))
    sign_in(page, "ada@example.com", PASSWORD)
    expect(page.locator("#signed-in-as")).to_have_text(re.compile("Signed in as Ada Lovelace for Ada Lovelace"))


def test_rejection_is_mailed_with_the_reason(db, page, live_server, mail_dir):
    store = f.storefront(db, name="Trade Shop", registration_mode="approval")
    admin = f.staff(db, "admin")
    page.goto(f"/s/{store.slug}/register")
    fill_registration(page, email="ada@example.com", company="Acme Widgets Ltd")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("We received your request")

    page.goto("/console/approvals")
    staff_sign_in(page, admin.email)
    page.get_by_label("Search").fill("acme")
    page.get_by_label("Storefront").select_option(label="Trade Shop")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="Review").click()
    page.get_by_test_id("reject").click()
    expect(page.get_by_text("This field is required.")).to_be_visible()
    page.get_by_label("Reason for a rejection").fill("We only sell to registered pharmacies.")
    page.get_by_test_id("reject").click()
    expect(page.get_by_test_id("confirm")).to_contain_text("We only sell to registered pharmacies.")
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_role("status")).to_contain_text("Rejected Acme Widgets Ltd")

    message = mail_to(mail_dir, "ada@example.com", "Your account request for Trade Shop")
    assert "Reason: We only sell to registered pharmacies." in text_of(message)
    page.goto(f"/s/{store.slug}/sign-in")
    sign_in(page, "ada@example.com", PASSWORD)
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#signed-in-as")).to_have_count(0)


def test_new_contact_for_an_existing_account(db, page, live_server):
    store = f.storefront(db, name="Hardware Hub", sign_in_after_registration=True)
    account = f.account(db, storefront_id=store.id, name="Springfield Hardware")
    with db.transaction() as session:
        accounts.record_invoice(session, Actor.system(), session.get(Account, account.id),
                                {"number": "INV-1001", "issued_on": date.today() - timedelta(days=20)})
    page.goto(f"/s/{store.slug}/sign-in")
    page.get_by_role("link", name="Create a new contact for your account").click()
    page.get_by_label("Account number").fill(account.number)
    page.get_by_label("Billing postcode").fill("62701")
    page.get_by_label("Number of a recent invoice").fill("INV-9999")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_have_text("We could not match these details to an account.")

    page.get_by_label("Number of a recent invoice").fill("inv-1001")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("claimed-account")).to_contain_text(f"Springfield Hardware ({account.number})")
    expect(page.get_by_test_id("claimed-account")).to_contain_text("Springfield, United States")
    page.get_by_label("First name").fill("Homer")
    page.get_by_label("Last name").fill("Simpson")
    page.get_by_label("E-mail").fill("homer@example.com")
    page.get_by_label("Phone").fill("217 555 0199")
    page.locator("#login-password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill("something-else-entirely")
    page.get_by_role("button", name="Create my login").click()
    expect(page.get_by_text("The two passwords differ.")).to_be_visible()
    expect(page.get_by_test_id("claimed-account")).to_contain_text("Springfield Hardware")
    page.locator("#login-password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create my login").click()
    expect(page.get_by_role("status")).to_contain_text("Your login for Springfield Hardware is ready.")
    page.get_by_role("link", name="Continue to the store").click()
    expect(page.locator("#signed-in-as")).to_have_text(
        re.compile("Signed in as Homer Simpson for Springfield Hardware"))
