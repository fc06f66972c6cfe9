"""A real browser clicks through the storefront's sign-in pages: forgot password to a new password via the mailed
link, change password, sign-out, the account chooser and sign-out everywhere, and activation of an invited login."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from tests import factories as f
from tests.mailbox import links, read_folder, wait_for

NEW_PASSWORD = "a-brand-new-passphrase-77"


def mailed_link(mail_dir, address: str, path: str) -> str:
    """The link to `path` in the newest message the outbox worker wrote to the mail folder for `address`."""
    return wait_for(lambda: [link for m in read_folder(mail_dir) if m["To"] == address
                             for link in links(m) if path in link])[-1]


def sign_in(page, email: str, password: str) -> None:
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def set_new_password(page, password: str) -> None:
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("Repeat the new password").fill(password)


def test_forgot_password_to_new_password_then_change_it_and_sign_out(db, page, live_server, mail_dir):
    store = f.storefront(db, name="Garden Supply", sign_in_text="Sign in with your trade login.")
    account = f.account(db, storefront_id=store.id, name="Green Thumb Ltd")
    f.contact(db, account, store, email="ash@example.com", first_name="Ash", last_name="Grove")
    page.goto(f"/s/{store.slug}/sign-in")
    expect(page.get_by_text("Sign in with your trade login.")).to_be_visible()
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("E-mail").fill("ash@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    link = mailed_link(mail_dir, "ash@example.com", "/password/reset")
    assert link.startswith(f"{live_server}/s/{store.slug}/password/reset?token=")
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    set_new_password(page, NEW_PASSWORD)
    page.get_by_role("button", name="Save password").click()
    expect(page.get_by_role("status")).to_have_text("Your password was changed. Sign in with your new password.")

    sign_in(page, "ash@example.com", f.PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("E-mail or password is not right.")
    sign_in(page, "ash@example.com", NEW_PASSWORD)
    expect(page.locator("#signed-in-as")).to_have_text(re.compile("Signed in as Ash Grove for Green Thumb Ltd"))

    page.get_by_role("link", name="Change password").click()
    page.get_by_label("Current password").fill(NEW_PASSWORD)
    set_new_password(page, "the-third-passphrase-in-a-row")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_have_text("Your password was changed. Your other devices were signed out.")
    page.get_by_role("link", name="Back").click()
    page.locator("main").get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")

    page.goto(link)
    expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    page.get_by_role("link", name="Ask for a new link").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()


def test_account_chooser_for_one_email_on_two_accounts(db, page, live_server):
    store = f.storefront(db, name="Wholesale", anonymous_access=False)
    first = f.account(db, storefront_id=store.id, name="Northwind Traders")
    second = f.account(db, storefront_id=store.id, name="Contoso Retail")
    f.contact(db, first, store, email="sam@example.com", first_name="Sam", last_name="Shared")
    f.contact(db, second, store, email="sam@example.com", first_name="Sam", last_name="Shared")
    page.goto(f"/s/{store.slug}")  # anonymous access off: the sign-in page first
    expect(page).to_have_url(re.compile(rf"/s/{store.slug}/sign-in\?next="))
    sign_in(page, "sam@example.com", f.PASSWORD)
    expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
    expect(page.get_by_role("cell", name=first.number)).to_be_visible()
    expect(page.get_by_role("cell", name=second.number)).to_be_visible()
    page.get_by_role("button", name="Sign in to Contoso Retail").click()
    expect(page).to_have_url(f"{live_server}/s/{store.slug}")
    expect(page.locator("#signed-in-as")).to_have_text(re.compile("for Contoso Retail"))
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out on every device.")
    page.goto(f"/s/{store.slug}")
    expect(page).to_have_url(re.compile(rf"/s/{store.slug}/sign-in"))


def test_invited_contact_activates_and_is_signed_in(db, page, live_server, mail_dir, settings):
    store = f.storefront(db, name="Office Goods")
    account = f.account(db, storefront_id=store.id, name="Paper Trail GmbH")
    invited = f.contact(db, account, store, password=None, status="invited", email="ivy@example.com",
                        first_name="Ivy", last_name="Newcomer")
    with db.transaction() as session:
        contacts.send_activation(session, Actor.system(), session.get(Contact, invited.id),
                                 settings.model_copy(update={"base_url": live_server}))
    page.goto(mailed_link(mail_dir, "ivy@example.com", "/activate"))
    expect(page.get_by_role("heading", name="Welcome, Ivy: choose your password")).to_be_visible()
    set_new_password(page, "short")
    page.get_by_label("New password", exact=True).evaluate("el => el.removeAttribute('minlength')")
    page.get_by_role("button", name="Save password").click()
    expect(page.get_by_role("alert")).to_contain_text("Use at least 12 characters.")
    set_new_password(page, NEW_PASSWORD)
    page.get_by_role("button", name="Save password").click()
    expect(page.get_by_role("status")).to_have_text("Your password is set. Welcome!")
    expect(page.locator("#signed-in-as")).to_have_text(re.compile("Signed in as Ivy Newcomer for Paper Trail GmbH"))
