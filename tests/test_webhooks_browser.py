"""An administrator registers a webhook endpoint in the console, sees its secret once, watches the delivery log fill
(the app's own outbox worker delivers to a loopback receiver) and replays a delivery."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from accountdesk.core.settings import Settings
from tests import factories as f
from tests.webhook_receiver import receiving

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private_targets": True, "webhook_retry_seconds": "0.2"})


def wait_until(check, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_an_administrator_registers_an_endpoint_and_replays_a_delivery(db, page: Page, live_server) -> None:
    admin = f.staff(db, "admin")
    store = f.storefront(db, name="Hook Supplies")
    with receiving() as receiver:
        page.goto("/console/sign-in")
        page.get_by_label("E-mail").fill(admin.email)
        page.get_by_label("Password").fill(f.PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()

        page.get_by_label("URL").fill("http://example.invalid:99999/")
        page.get_by_role("button", name="Create endpoint").click()
        expect(page.get_by_test_id("form-errors")).to_be_visible()  # refused, kept, nothing made

        page.get_by_label("URL").fill(f"{receiver.url}/orders")
        page.get_by_label("Storefront", exact=True).select_option(label="Hook Supplies")
        page.get_by_role("checkbox", name=re.compile("^login.signed_in")).check()
        page.get_by_role("button", name="Create endpoint").click()
        secret = page.get_by_test_id("webhook-secret").locator("code").inner_text()
        assert secret.startswith("whsec_")

        account = f.account(db, name="Evented Ltd", storefront_id=store.id)  # account.created, through the service
        wait_until(lambda: len(receiver.accepted()) == 1)
        log = page.get_by_test_id("webhook-deliveries")

        def logged() -> bool:  # the worker records the answer just after the receiver has it
            page.reload()
            return "delivered" in log.inner_text()

        wait_until(logged)
        expect(log).to_contain_text("account.created")
        expect(log).to_contain_text("delivered")
        expect(log).to_contain_text("204")
        expect(page.get_by_test_id("webhook-secret")).to_have_count(0)  # shown once

        page.get_by_role("button", name=re.compile("^Replay account.created")).click()
        expect(page.get_by_text("Replay queued.")).to_be_visible()
        wait_until(lambda: len(receiver.accepted()) == 2)
        first, second = receiver.accepted()
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert second.verify(secret)["data"]["number"] == account.number

        page.get_by_role("button", name="Disable").click()
        expect(page.get_by_test_id("webhook-state")).to_have_text(re.compile("^disabled"))
