"""Joining a company by e-mail domain in a real browser: the account admin claims the domain and proves it through a
real DNS server on loopback, a colleague registers, confirms the address from the e-mail and joins the company, the
admin approves, and the colleague signs in for the company."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accountdesk.core.settings import Settings
from tests import factories as f
from tests.dns_server import DnsServer, dns_server  # noqa: F401 — the fixture
from tests.mailbox import read_folder, wait_for
from tests.test_registration_api import PASSWORD
from tests.test_registration_browser import fill_registration
from tests.test_storefront_browser import mailed_link, sign_in

pytestmark = pytest.mark.browser
DOMAIN = "example.com"  # the registration form's own test address is at this domain


@pytest.fixture
def settings(settings: Settings, dns_server: DnsServer) -> Settings:  # noqa: F811
    return settings.model_copy(update={"dns_nameserver": dns_server.address})


def test_a_colleague_joins_the_company_by_its_verified_domain(db, page, live_server, mail_dir,
                                                               dns_server):  # noqa: F811
    store = f.storefront(db, name="Trade Shop", registration_mode="open", anonymous_access=True)
    company = f.account(db, name="Brightwater Trading", storefront_id=store.id)
    f.contact(db, company, store, first_name="Bea", last_name="Boss", email=f"bea@{DOMAIN}", role="account_admin")

    page.goto(f"/s/{store.slug}/sign-in")
    sign_in(page, f"bea@{DOMAIN}", f.PASSWORD)
    page.goto(f"/s/{store.slug}/account")
    page.get_by_role("link", name="Company e-mail domains and join requests").click()
    page.get_by_label("Domain", exact=True).fill(DOMAIN)
    page.get_by_role("button", name="Add domain").click()
    record = page.locator("code").first.text_content()
    assert record.startswith("accountdesk-verification=")
    dns_server.publish(DOMAIN, record)
    page.get_by_role("button", name=f"Check DNS of {DOMAIN}").click()
    expect(page.get_by_test_id("domain-status")).to_have_text("verified")
    page.get_by_role("button", name="Sign out").click()

    page.goto(f"/s/{store.slug}/register")
    fill_registration(page, email=f"ada@{DOMAIN}", company="Ada's Own Ltd")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you for registering.")
    expect(page.get_by_text("Brightwater")).to_have_count(0)  # nothing revealed before the address is proved

    page.goto(mailed_link(mail_dir, f"ada@{DOMAIN}", "/verify-email"))
    expect(page.get_by_test_id("join-offer")).to_contain_text("Brightwater Trading")
    page.get_by_role("button", name="Join Brightwater Trading").click()
    expect(page.get_by_test_id("join-done")).to_contain_text("decides on your request")

    wait_for(lambda: [m for m in read_folder(mail_dir) if m["To"] == f"bea@{DOMAIN}"
                      and m["Subject"].startswith("Ada Lovelace asks to join")])
    page.goto(f"/s/{store.slug}/sign-in")
    sign_in(page, f"bea@{DOMAIN}", f.PASSWORD)
    page.goto(f"/s/{store.slug}/account/domains")
    expect(page.get_by_test_id("join-requests")).to_contain_text(f"ada@{DOMAIN}")
    page.get_by_role("button", name="Approve Ada Lovelace").click()
    expect(page.get_by_role("status")).to_contain_text("Approved")
    page.get_by_role("button", name="Sign out").click()

    page.goto(f"/s/{store.slug}/sign-in")
    sign_in(page, f"ada@{DOMAIN}", PASSWORD)
    expect(page.locator("#signed-in-as")).to_have_text(re.compile("Signed in as Ada Lovelace for Brightwater Trading"))
