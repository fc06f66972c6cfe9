"""A reseller's working day in a real browser (Debian's chromium through Playwright) against uvicorn with its
outbox worker: sign in, search My Customers, export to Excel, create a customer after a refused try, add a
storefront user who activates the login from the welcome e-mail, deactivate and reactivate them, let them order,
and accept the order."""

from __future__ import annotations

import re
from decimal import Decimal

import openpyxl
import pytest
from playwright.sync_api import Page, expect

from accountdesk.core.audit import Actor
from accountdesk.orders import service as orders
from accountdesk.resellers import service as resellers
from tests import factories as f
from tests.mailbox import links, read_folder, wait_for
from tests.reseller_world import BUYER_LINES, LINES, customer, world

pytestmark = pytest.mark.browser
NEW_PASSWORD = "harbour-lights-at-dusk"


def _user_menu(page: Page, email: str, action: str) -> None:
    """Open the three-dot menu of a storefront user, pick the action, then say yes on the page's confirmation."""
    row = page.get_by_test_id("user-row").filter(has_text=email)
    row.get_by_label(re.compile("Actions for")).click()
    row.get_by_role("link", name=action).click()
    expect(page.get_by_test_id("confirm")).to_be_visible()
    page.get_by_test_id("confirm-yes").click()


def test_a_resellers_day(db, browser, page: Page, live_server, mail_dir, tmp_path):
    w = world(db, name="Harbour IT Partners", markup="10")
    for n in range(3):
        customer(db, w, name=f"Seaside Bakery {n}")
    customer(db, w, name="Mountain Forge")
    customer(db, world(db), name="Seaside Bakery of someone else")

    page.goto("/console")
    page.get_by_label("E-mail").fill(w.staff.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="My Customers").click()
    expect(page.get_by_role("heading", name="My Customers")).to_be_visible()
    expect(page.get_by_test_id("stat-all")).to_have_text("4")

    # search the grid, then export what it shows
    page.get_by_label("Search customers").fill("seaside")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("customer-row")).to_have_count(3)
    with page.expect_download() as download:
        page.get_by_test_id("export-excel").click()
    assert download.value.suggested_filename == "Customers.xlsx"
    saved = tmp_path / "Customers.xlsx"
    download.value.save_as(saved)
    rows = list(openpyxl.load_workbook(saved).active.iter_rows(values_only=True))
    assert rows[0][:2] == ("Number", "Name")
    assert [r[1] for r in rows[1:]] == [f"Seaside Bakery {n}" for n in range(3)]

    # a new customer: the first try misses the phone
    page.get_by_test_id("new-customer").click()
    form = page.get_by_test_id("new-customer-form")
    form.get_by_label("Company name").fill("Lighthouse Logistics")
    form.get_by_label("E-mail").fill("office@lighthouse.example")
    form.get_by_label("Address").fill("3 Quay Road")
    form.get_by_label("City").fill("Portland")
    form.get_by_label("Postcode").fill("97201")
    form.get_by_label("Country").select_option("US")
    form.get_by_label("State or province").select_option("US-OR")  # the country's states, loaded by the script
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#new-phone-error")).to_have_text("Enter the phone number.")
    form = page.get_by_test_id("new-customer-form")
    expect(form.get_by_label("City")).to_have_value("Portland")
    form.get_by_label("Phone").fill("(503) 555-0199")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Customer Lighthouse Logistics created.")
    expect(page.get_by_role("heading", name="Lighthouse Logistics")).to_be_visible()
    expect(page.get_by_label("Phone")).to_have_value("+15035550199")
    record_url = page.url

    # the customer's orders should wait for approval (the reseller pays by cash, so it may choose)
    page.get_by_label("Order approval required").click()  # the switch saves at once
    expect(page.get_by_role("status")).to_have_text("Orders of this customer now need your approval.")
    expect(page.get_by_label("Order approval required")).to_be_checked()

    # add a storefront user; the welcome e-mail's link activates the login
    page.get_by_test_id("add-user").click()
    user_form = page.get_by_test_id("user-form")
    user_form.get_by_label("First name").fill("Grace")
    user_form.get_by_label("Last name").fill("Hopper")
    user_form.get_by_label("E-mail").fill("grace@lighthouse.example")
    user_form.get_by_label("Date format").select_option("YYYY-MM-DD")
    user_form.get_by_role("button", name="OK").click()
    expect(page.get_by_role("status")).to_contain_text("welcome e-mail with the activation link")
    row = page.get_by_test_id("user-row").filter(has_text="grace@lighthouse.example")
    expect(row).to_contain_text("invited")
    welcome = wait_for(lambda: [m for m in read_folder(mail_dir) if m["To"] == "grace@lighthouse.example"])[0]
    [activation] = [link for link in links(welcome) if "/activate?token=" in link]

    shopper = browser.new_context(base_url=live_server).new_page()
    shopper.goto(activation)
    shopper.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    shopper.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    shopper.get_by_role("button", name="Save password").click()
    expect(shopper.get_by_role("status")).to_have_text("Your password is set. Welcome!")
    current = f"/api/v1/storefronts/{w.storefront.slug}/sessions/current"
    assert shopper.request.get(current).status == 200

    page.reload()
    row = page.get_by_test_id("user-row").filter(has_text="grace@lighthouse.example")
    expect(row).to_contain_text("active")
    expect(page.get_by_test_id("storefront-access")).to_contain_text("a storefront user can sign in")

    # deactivate: signed out everywhere at once; then activate again
    _user_menu(page, "grace@lighthouse.example", "Deactivate user")
    expect(page.get_by_role("status")).to_have_text("Grace Hopper is deactivated.")
    expect(page.get_by_test_id("user-row").filter(has_text="grace")).to_contain_text("deactivated")
    assert shopper.request.get(current).status == 401
    _user_menu(page, "grace@lighthouse.example", "Activate user")
    expect(page.get_by_role("status")).to_have_text("Grace Hopper is active again.")

    # the user signs in again and orders; the order waits for the reseller
    shopper.goto(f"/s/{w.storefront.slug}/sign-in")
    shopper.get_by_label("E-mail").fill("grace@lighthouse.example")
    shopper.get_by_label("Password").fill(NEW_PASSWORD)
    shopper.get_by_role("button", name="Sign in").click()
    placed = shopper.request.post(f"/api/v1/storefronts/{w.storefront.slug}/orders", data={"lines": BUYER_LINES})
    assert placed.status == 201, placed.text()
    order = placed.json()
    assert order["status"] == "pending_approval" and order["total_amount"] is None  # the distributor prices it

    page.goto(record_url)
    order_row = page.get_by_test_id("order-row").filter(has_text=order["number"])
    expect(order_row.get_by_label("Placed by the customer")).to_be_visible()
    expect(order_row.get_by_test_id("order-status")).to_have_text("pending approval")
    expect(order_row).to_contain_text("to be priced")
    order_row.get_by_label(f"Actions for order {order['number']}").click()
    order_row.get_by_role("link", name="Accept").click()
    expect(page.get_by_test_id("confirm")).to_contain_text(order["number"])
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_role("status")).to_have_text(f"Order {order['number']} accepted.")
    order_row = page.get_by_test_id("order-row").filter(has_text=order["number"])
    expect(order_row.get_by_test_id("order-status")).to_have_text("executed")
    expect(order_row.get_by_label(f"Actions for order {order['number']}")).to_have_count(0)


def test_operator_opens_a_resellers_customer_and_works_the_record(db, page: Page, live_server, tmp_path):
    w = world(db, name="Delta Resale", payment_method="credit_card")
    buyer = customer(db, w, name="Quartz Studio", phone="+12175550142")
    f.contact(db, buyer, w.storefront, first_name="Ada", email="ada@quartz.example", language="de")
    f.contact(db, buyer, w.storefront, first_name="Bob", email="bob@quartz.example", password=None, status="invited")
    with db.transaction() as session:
        live = resellers.get_customer(session, resellers.get_reseller(session, None, w.reseller.id), buyer.id)
        reseller = resellers.reseller_of(session, live)
        for sku in ("AZ-RESERVED-VM", "MS-365-BP"):
            line = {**LINES[0], "sku": sku, "unit_cost": Decimal(LINES[0]["unit_cost"])}
            orders.place_order(session, Actor.system(), live, reseller, [line], may_price=True, staff_id=None)
    staff = f.staff(db, "csr")

    page.goto("/console/sign-in")
    page.get_by_label("E-mail").fill(staff.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Resellers").click()
    page.get_by_role("link", name="Delta Resale").click()
    expect(page.get_by_test_id("approval-forced")).to_have_text(
        "The payment method set by your distributor requires order approval for all customers.")
    page.get_by_role("link", name="Quartz Studio").click()
    expect(page.get_by_label("Order approval required")).to_be_checked()
    expect(page.get_by_label("Order approval required")).to_be_disabled()

    # storefront users: search, and the menu offers reset after activation, resend before it
    page.get_by_label("Search storefront users").fill("deutsch")
    page.get_by_label("Search storefront users").press("Enter")
    expect(page.get_by_test_id("user-row")).to_have_count(1)
    ada = page.get_by_test_id("user-row").filter(has_text="ada@quartz.example")
    ada.get_by_label(re.compile("Actions for")).click()
    expect(ada.get_by_role("link", name="Reset storefront password")).to_be_visible()
    expect(ada.get_by_role("link", name="Resend activation link")).to_have_count(0)
    page.get_by_label("Search storefront users").fill("")
    page.get_by_label("Search storefront users").press("Enter")
    bob = page.get_by_test_id("user-row").filter(has_text="bob@quartz.example")
    bob.get_by_label(re.compile("Actions for")).click()
    expect(bob.get_by_role("link", name="Resend activation link")).to_be_visible()

    # orders: search by SKU and export what is shown
    page.get_by_label("Search orders").fill("az-reserved")
    page.get_by_label("Search orders").press("Enter")
    expect(page.get_by_test_id("order-row")).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_test_id("export-orders").click()
    assert download.value.suggested_filename == "Orders.xlsx"
    download.value.save_as(tmp_path / "Orders.xlsx")
    rows = list(openpyxl.load_workbook(tmp_path / "Orders.xlsx").active.iter_rows(values_only=True))
    assert [r[:3] for r in rows[1:]] == [("SO-000001", "Reseller", "executed")]

    # details are edited in place: a wrong postcode is refused with its message, then Update saves
    details = page.get_by_test_id("details-form")
    details.get_by_label("Postcode").fill("ABCDE")
    details.get_by_role("button", name="Update").click()
    expect(page.locator("#details-postcode-error")).to_have_text("This postcode does not look right for the country.")
    details = page.get_by_test_id("details-form")
    details.get_by_label("Postcode").fill("62704")
    details.get_by_label("City").fill("Springfield East")
    details.get_by_role("button", name="Update").click()
    expect(page.get_by_role("status")).to_have_text("Customer details updated.")
    expect(page.get_by_test_id("details-form").get_by_label("City")).to_have_value("Springfield East")
