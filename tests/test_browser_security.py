"""What the security headers do in a real browser (Debian's chromium through Playwright): another site cannot frame
the console, the CSP stops an injected inline script while the page keeps working, a reset link's token leaves the
address bar, the SameSite=Strict console session still opens from a link in webmail, and the API docs run under
their own policy."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, expect

from accountdesk.contacts.service import RESET
from accountdesk.core import tokens
from tests import factories as f
from tests.conftest import free_port
from tests.mailbox import wait_for
from tests.test_storefront_browser import set_new_password, sign_in

pytestmark = pytest.mark.browser


class OtherSite(ThreadingHTTPServer):
    """Another web site: a real server on loopback, reached as `localhost` while the app is `127.0.0.1` (another
    site to the browser, and both on the local network, so only our headers decide what may happen)."""

    body = ""

    @property
    def url(self) -> str:
        return f"http://localhost:{self.server_address[1]}/"

    def serve(self, body: str) -> str:
        self.body = f"<!doctype html><html lang=en><title>Other site</title>{body}</html>"
        return self.url


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = self.server.body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def other_site() -> Iterator[OtherSite]:
    server = OtherSite(("127.0.0.1", free_port()), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def csp_errors(page: Page) -> list[str]:
    """Collects the browser's console messages about the Content-Security-Policy."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text
            else None)
    return seen


def test_a_page_on_another_site_cannot_frame_the_console(db, page: Page, live_server, other_site):
    page.goto(other_site.serve(f'<iframe id="console" title="console" src="{live_server}/console/sign-in"></iframe>'
                               f'<iframe id="health" title="health" src="{live_server}/healthz"></iframe>'))
    expect(page.frame_locator("#health").locator("body")).to_contain_text('"status":"ok"')  # framing works here
    console = page.locator("#console").element_handle().content_frame()
    assert console.url.startswith("chrome-error://"), console.url  # refused: the sign-in form never shows
    expect(page.frame_locator("#console").get_by_role("button", name="Sign in")).to_have_count(0)


def test_the_csp_blocks_an_injected_inline_script_and_the_page_still_works(db, page: Page, live_server, caplog):
    caplog.set_level(logging.WARNING, logger="accountdesk.csp")
    store = f.storefront(db, name="Safe Store")
    account = f.account(db, storefront_id=store.id, name="Careful Co")
    f.contact(db, account, store, email="kim@example.com", first_name="Kim", last_name="Vale")
    errors = csp_errors(page)
    page.goto(f"/s/{store.slug}/sign-in")
    page.evaluate("""() => {
        window.violations = [];
        document.addEventListener("securitypolicyviolation", e => window.violations.push(e.effectiveDirective));
        const script = document.createElement("script");
        script.textContent = "window.injected = 'script'";
        document.body.append(script);
        document.body.insertAdjacentHTML("beforeend",
                                         '<img alt="" src="/static/none.png" onerror="window.injected = 1">');
    }""")
    page.wait_for_function("window.violations.length >= 2")
    assert page.evaluate("window.violations") == ["script-src-elem", "script-src-attr"]
    assert page.evaluate("window.injected") is None
    assert any("inline script" in text for text in errors), errors
    reported = wait_for(lambda: [r.getMessage() for r in caplog.records if "script-src-elem" in r.getMessage()])
    assert f"/s/{store.slug}/sign-in" in reported[0]  # the browser reported it to /csp-reports, which logged it
    sign_in(page, "kim@example.com", f.PASSWORD)
    expect(page.locator("#signed-in-as")).to_have_text(re.compile("Signed in as Kim Vale for Careful Co"))


def test_a_reset_link_leaves_the_address_bar_and_works_once(db, page: Page, live_server):
    store = f.storefront(db, name="Link Store")
    contact = f.contact(db, f.account(db, storefront_id=store.id), store, email="lee@example.com")
    with db.transaction() as session:
        token = tokens.issue(session, RESET, timedelta(minutes=30), contact_id=contact.id)
    link = f"{live_server}/s/{store.slug}/password/reset?token={token}"

    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert page.url == f"{live_server}/s/{store.slug}/password/reset"  # the address bar has no token
    assert token not in page.content() and token not in page.evaluate("document.cookie")
    [kept] = [c for c in page.context.cookies() if c["name"] == "accountdesk_link"]
    assert kept["httpOnly"] and kept["path"] == f"/s/{store.slug}/password/reset" and kept["sameSite"] == "Lax"
    set_new_password(page, "a-passphrase-for-links-7")
    page.get_by_role("button", name="Save password").click()
    expect(page.get_by_role("status")).to_have_text("Your password was changed. Sign in with your new password.")
    sign_in(page, "lee@example.com", "a-passphrase-for-links-7")
    expect(page.locator("#signed-in-as")).to_be_visible()

    page.goto(link)  # the second time
    expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    assert "token" not in page.url


def test_a_console_link_in_webmail_opens_the_signed_in_console(db, page: Page, live_server, other_site):
    """The console session is SameSite=Strict: a request from another site does not carry it. A link followed from
    another site gets a page that opens the same address again from this site, where the session counts."""
    staff = f.staff(db, "admin")
    f.account(db, name="Webmail Wholesale")
    page.goto("/console/sign-in")
    page.get_by_label("E-mail").fill(staff.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()
    [session] = [c for c in page.context.cookies() if c["name"] == "accountdesk_console"]
    assert session["sameSite"] == "Strict" and session["httpOnly"] and session["path"] == "/"

    sent: list[tuple[str, bool]] = []
    page.on("request", lambda request: sent.append(
        (request.url, "accountdesk_console=" in request.all_headers().get("cookie", "")))
        if "/console/accounts" in request.url else None)
    page.goto(other_site.serve(f'<a href="{live_server}/console/accounts?q=webmail">Review the new customers</a>'))
    page.get_by_role("link", name="Review the new customers").click()
    expect(page.get_by_test_id("results")).to_contain_text("Webmail Wholesale")
    assert page.url == f"{live_server}/console/accounts?q=webmail"
    assert sent[0] == (f"{live_server}/console/accounts?q=webmail", False)  # from the other site: no session
    assert sent[-1] == (f"{live_server}/console/accounts?q=webmail", True)  # opened again from this site


def test_the_api_docs_run_under_their_own_policy(db, page: Page, live_server):
    """/docs is FastAPI's Swagger UI: its script and styles come from a CDN (answered here by Playwright: the test
    machine has no internet) and an inline start-up script runs it; the docs policy allows exactly that."""
    page.route("https://cdn.jsdelivr.net/**", lambda route: route.fulfill(
        content_type="text/javascript" if route.request.url.endswith(".js") else "text/css",
        body="window.SwaggerUIBundle = function (c) { document.querySelector(c.dom_id).textContent = "
             "'Swagger UI for ' + c.url; }; SwaggerUIBundle.presets = {};" if route.request.url.endswith(".js")
        else "body { margin: 0 }"))
    page.route("https://fastapi.tiangolo.com/**", lambda route: route.fulfill(status=204))
    errors = csp_errors(page)
    page.goto("/docs")
    expect(page.locator("#swagger-ui")).to_have_text("Swagger UI for /openapi.json")
    assert errors == []
    page.goto("/console/sign-in")  # the pages' own policy refuses the CDN
    with page.expect_console_message(lambda message: "cdn.jsdelivr.net" in message.text):
        page.evaluate("""() => { const s = document.createElement("script");
                                 s.src = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js";
                                 document.head.append(s); }""")
    assert page.evaluate("typeof window.SwaggerUIBundle") == "undefined"
