"""Staff administration in a real browser (Debian's chromium through Playwright) against uvicorn with its outbox
worker: an admin invites a csr, who accepts from the e-mail, turns on two-step sign-in from the QR page and signs in
with password and code; the admin deactivates the csr, whose open console page and API token stop working at once."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.mailbox import links, read_folder, wait_for

pytestmark = pytest.mark.browser
CSR_PASSWORD = "quiet-harbour-lanterns"


def _sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/console/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_invite_activate_two_step_sign_in_and_deactivate(db, browser, page: Page, live_server, mail_dir):
    admin = f.staff(db, "admin", email="olga@staff.example")
    _sign_in(page, admin.email, f.PASSWORD)
    page.get_by_role("link", name="Staff", exact=True).click()
    page.get_by_test_id("invite-staff").click()
    form = page.get_by_test_id("invite-form")
    form.get_by_label("E-mail").fill("tom@staff.example")
    form.get_by_label("Name").fill("Tom Reyes")
    form.get_by_label("Role").select_option("csr")
    form.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status")).to_have_text("Invitation sent to tom@staff.example.")
    expect(page.get_by_test_id("staff-status")).to_have_text("invited")
    record_url = page.url
    wait_for(lambda: [m for m in read_folder(mail_dir) if m["To"] == "tom@staff.example"])

    # sending it again asks first; "Yes" sends a new one, whose link replaces the first
    page.get_by_test_id("resend-invitation").click()
    question = page.get_by_test_id("confirm")
    expect(question).to_contain_text("A new invitation e-mail goes to tom@staff.example")
    question.get_by_role("button", name="Yes, send it again").click()
    expect(page.get_by_role("status")).to_have_text("Invitation sent again to tom@staff.example.")
    invitation = wait_for(lambda: [m for m in read_folder(mail_dir) if m["To"] == "tom@staff.example"][1:])[0]
    [link] = [u for u in links(invitation) if "/console/activate?token=" in u]
    tom = browser.new_context(base_url=live_server)
    csr = tom.new_page()
    try:
        csr.goto(link)
        expect(csr.get_by_role("heading", name="Welcome, Tom Reyes: choose your password")).to_be_visible()
        csr.get_by_label(re.compile(r"^New password")).fill(CSR_PASSWORD)
        csr.get_by_label("Repeat the new password").fill(CSR_PASSWORD)
        csr.get_by_role("button", name="Save password and sign in").click()
        expect(csr).to_have_url(re.compile(r"/console/accounts$"))

        # two-step sign-in: the key shown beside the QR code feeds the authenticator (here pyotp)
        csr.get_by_role("link", name=re.compile("Tom Reyes")).click()
        csr.get_by_role("link", name="Set up two-step sign-in").click()
        expect(csr.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
        secret = csr.get_by_test_id("totp-secret").inner_text().replace(" ", "")
        csr.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
        csr.get_by_role("button", name="Turn on two-step sign-in").click()
        codes = csr.get_by_test_id("recovery-codes").locator("code").all_inner_texts()
        assert len(codes) == 10
        csr.get_by_role("link", name="I have saved them: continue").click()
        expect(csr).to_have_url(re.compile(r"/console/accounts$"))

        csr.get_by_role("button", name="Sign out").click()
        _sign_in(csr, "tom@staff.example", CSR_PASSWORD)
        expect(csr.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
        with db.transaction() as session:
            tom_user = session.scalar(select(StaffUser).where(StaffUser.email == "tom@staff.example"))
        csr.get_by_label("Code").fill(f.totp_code(db, tom_user, secret))
        csr.get_by_role("button", name="Sign in").click()
        expect(csr).to_have_url(re.compile(r"/console/accounts$"))

        # an API token needs the second factor too (a recovery code here: the app's code was just used)
        without = csr.request.post("/api/v1/staff/tokens", data={"email": "tom@staff.example",
                                                                 "password": CSR_PASSWORD})
        assert without.status == 401 and without.json()["error"]["code"] == "totp_required"
        issued = csr.request.post("/api/v1/staff/tokens", data={"email": "tom@staff.example",
                                                                "password": CSR_PASSWORD, "totp_code": codes[0]})
        assert issued.status == 201
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert csr.request.get("/api/v1/accounts", headers=bearer).status == 200

        # the admin deactivates the csr: the open page and the token stop working at once
        page.goto(record_url)
        expect(page.get_by_test_id("staff-status")).to_have_text("active")
        page.get_by_test_id("deactivate").click()
        expect(page.get_by_test_id("confirm")).to_contain_text("signed out of the console and the API at once")
        page.get_by_test_id("confirm-yes").click()
        expect(page.get_by_role("status")).to_have_text("Tom Reyes is deactivated and signed out everywhere.")
        expect(page.get_by_test_id("staff-status")).to_have_text("deactivated")
        expect(page.get_by_test_id("history")).to_contain_text("Staff user deactivated")

        csr.reload()
        expect(csr).to_have_url(re.compile(r"/console/sign-in\?next="))
        expect(csr.get_by_role("heading", name="Sign in to the console")).to_be_visible()
        assert csr.request.get("/api/v1/accounts", headers=bearer).status == 401
    finally:
        tom.close()
