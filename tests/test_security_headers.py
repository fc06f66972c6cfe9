"""Security headers on every route of the app's router (signed out and signed in), secure-cookie names and HSTS,
link tokens moved out of the address, and the endpoint that logs CSP violation reports."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from accountdesk.app import create_app
from accountdesk.contacts.service import RESET
from accountdesk.core import tokens
from accountdesk.core.headers import CSP_REPORT_LIMIT, CSP_REPORT_PATH
from accountdesk.core.web import template_dirs
from tests import factories as f
from tests.page_world import fill, get_paths, page_world, sign_in_everywhere, storefront_sign_in
from tests.reseller_world import console_sign_in, csrf_of

PAGE_GUARDS = {"default-src": ["'self'"], "object-src": ["'none'"], "base-uri": ["'none'"],
               "form-action": ["'self'"], "frame-ancestors": ["'none'"]}


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def set_cookie(response, name: str) -> str:
    """The Set-Cookie header of the cookie `name`."""
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return header


def check_headers(url: str, response) -> str:
    """Assert the headers every response needs, and those of its kind; returns the kind (html/other)."""
    headers = response.headers
    assert response.status_code < 500, (url, response.status_code, response.text[:300])
    assert headers["x-content-type-options"] == "nosniff", url
    assert headers["cache-control"] == "no-store", url
    assert headers["referrer-policy"] == "no-referrer", url
    assert "strict-transport-security" not in headers, url  # secure cookies are off
    if not headers.get("content-type", "").startswith("text/html"):
        assert "content-security-policy" not in headers, url
        return "other"
    policy = directives(headers["content-security-policy"])
    docs = url in ("/docs", "/redoc", "/docs/oauth2-redirect")
    for name, values in PAGE_GUARDS.items():
        assert policy[name] == values, (url, name, policy)
    assert ("'unsafe-inline'" in str(policy)) == docs, (url, policy)  # only FastAPI's own docs pages
    assert policy["report-uri"] == [CSP_REPORT_PATH], url
    assert headers["x-frame-options"] == "DENY", url
    assert headers["cross-origin-opener-policy"] == "same-origin", url
    assert {"camera=()", "microphone=()", "geolocation=()", "payment=()"} <= set(
        headers["permissions-policy"].split(", ")), url
    return "html"


PUBLIC_CONSOLE_PAGES = {"/console/sign-in", "/console/sign-in/code", "/console/activate"}  # no session needed


def test_every_get_route_sends_the_security_headers_signed_out_and_signed_in(db, app, client):
    w = page_world(db)
    paths = get_paths(app)
    assert len(get_paths(app, pages_only=True)) >= 30, paths
    bearer: dict[str, str] = {}
    for signed_in in (False, True):
        if signed_in:
            sign_in_everywhere(client, w)
            bearer = f.token(client, w.admin)
        kinds = {}
        for path in paths:
            url = fill(path, w.ids())
            response = client.get(url, follow_redirects=False, headers=bearer if url.startswith("/api/") else {})
            kinds[url] = check_headers(url, response)
            assert signed_in or "/console/" not in url or url in PUBLIC_CONSOLE_PAGES \
                or response.status_code == 303, url  # signed out, the console only shows its sign-in pages
        pages = [url for url, kind in kinds.items() if kind == "html"]
        assert len(pages) >= (30 if signed_in else 12), (signed_in, pages)
    for asset in ("/static/accountdesk.css", "/static/accountdesk.js"):
        static = client.get(asset)
        assert static.status_code == 200 and static.headers["x-content-type-options"] == "nosniff"
        assert "no-store" not in static.headers.get("cache-control", "")  # files may be cached


def test_error_pages_and_json_errors_carry_the_headers(db, client):
    store = f.storefront(db)
    for url in ("/s/no-such-store/sign-in", f"/s/{store.slug}/register/instant", "/api/v1/accounts",
                "/no/such/page"):
        check_headers(url, client.get(url))
    refused = client.post(f"/s/{store.slug}/sign-in", data={"email": "x@example.com"})  # no CSRF token
    assert refused.status_code == 403 and check_headers("refused", refused) == "html"


def test_templates_have_no_inline_script_style_or_event_handler():
    """The policy blocks them: behaviour goes to static/accountdesk.js, looks to static/accountdesk.css."""
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:", re.I)
    found = [f"{path}: {match.group(0)}" for folder in template_dirs() for path in Path(folder).rglob("*.html")
             for match in inline.finditer(path.read_text())]
    assert not found, found


def test_secure_cookies_use_the_host_prefix_and_hsts_is_sent(db, settings):
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    contact = f.contact(db, account, store, email="sky@example.com")
    staff = f.staff(db, "admin")
    secure = settings.model_copy(update={"cookie_secure": True})
    with TestClient(create_app(secure, db), base_url="https://testserver") as client:
        form = client.get("/console/sign-in")
        assert form.headers["strict-transport-security"] == "max-age=31536000"
        assert re.fullmatch(r"__Host-accountdesk_csrf=[\w-]+; Path=/; HttpOnly; SameSite=Lax; Secure",
                            set_cookie(form, "__Host-accountdesk_csrf"))
        console_sign_in(client, staff)
        [console] = [c for c in client.cookies.jar if c.name.endswith("accountdesk_console")]
        assert console.name == "__Host-accountdesk_console" and console.secure and console.path == "/"
        assert client.get("/console/accounts", follow_redirects=False).status_code == 200

        signed_out = client.post("/console/sign-out", data={"csrf_token": csrf_of(form.text)},
                                 follow_redirects=False)
        assert "Path=/;" in set_cookie(signed_out, "__Host-accountdesk_flash")
        assert "You are signed out." in client.get("/console/sign-in").text

        storefront_sign_in(client, store, contact.email)
        [session] = [c for c in client.cookies.jar if c.name.endswith(f"accountdesk_sf_{store.slug}")]
        assert session.name == f"__Host-accountdesk_sf_{store.slug}" and session.secure and session.path == "/"
        assert client.get(f"/s/{store.slug}/account/password", follow_redirects=False).status_code == 200

        with db.transaction() as session:
            token = tokens.issue(session, RESET, timedelta(minutes=5), contact_id=contact.id)
        moved = client.get(f"/s/{store.slug}/password/reset?token={token}", follow_redirects=False)
        cookie = set_cookie(moved, "__Secure-accountdesk_link")
        assert cookie.startswith(f"__Secure-accountdesk_link={token};") and "Secure" in cookie
        assert f"Path=/s/{store.slug}/password/reset" in cookie and "HttpOnly" in cookie
        assert "Choose a new password" in client.get(moved.headers["location"]).text


def test_a_reset_link_token_moves_to_a_path_scoped_cookie_and_works_once(db, client):
    store = f.storefront(db)
    contact = f.contact(db, f.account(db, storefront_id=store.id), store)
    with db.transaction() as session:
        token = tokens.issue(session, RESET, timedelta(minutes=5), contact_id=contact.id)
    page = f"/s/{store.slug}/password/reset"
    moved = client.get(f"{page}?token={token}&utm_source=mail", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == f"{page}?utm_source=mail"
    cookie = set_cookie(moved, "accountdesk_link")
    assert re.fullmatch(rf"accountdesk_link={token}; HttpOnly; Max-Age=3600; Path={page}; SameSite=lax", cookie)
    form = client.get(moved.headers["location"])
    assert form.status_code == 200 and token not in form.text
    assert client.get(f"/s/{store.slug}/sign-in").status_code == 200  # other pages do not receive the cookie
    new = {"csrf_token": csrf_of(form.text), "password": "a-fresh-passphrase-42",
           "password_confirm": "a-fresh-passphrase-42"}
    done = client.post(page, data=new, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/s/{store.slug}/sign-in"
    again = client.post(page, data=new)
    assert again.status_code == 422 and "This link has expired or was already used" in again.text
    junk = client.get(f"{page}?token=<script>", follow_redirects=False)
    assert junk.status_code == 303 and set_cookie(junk, "accountdesk_link").startswith('accountdesk_link="";')


def test_csp_reports_are_logged_without_queries_and_rate_limited(db, client, caplog):
    caplog.set_level(logging.WARNING, logger="accountdesk.csp")
    classic = {"csp-report": {"document-uri": "http://testserver/s/shop/sign-in?next=%2Fs%2Fshop%2Faccount",
                              "violated-directive": "script-src-elem", "effective-directive": "script-src-elem",
                              "blocked-uri": "inline", "line-number": 12, "disposition": "enforce"}}
    answer = client.post(CSP_REPORT_PATH, content=json.dumps(classic),
                         headers={"content-type": "application/csp-report"})
    assert answer.status_code == 204 and answer.headers["cache-control"] == "no-store"
    reporting_api = [{"type": "csp-violation", "url": "http://testserver/console/accounts",
                      "body": {"documentURL": "http://testserver/console/accounts?q=secret",
                               "effectiveDirective": "img-src", "blockedURL": "https://evil.example/p.gif?x=1",
                               "disposition": "enforce"}},
                     {"type": "deprecation", "body": {}}]
    assert client.post(CSP_REPORT_PATH, content=json.dumps(reporting_api),
                       headers={"content-type": "application/reports+json"}).status_code == 204
    logged = [json.loads(r.getMessage().split(": ", 1)[1]) for r in caplog.records]
    assert [(v["document"], v["directive"], v["blocked"]) for v in logged] == [
        ("http://testserver/s/shop/sign-in", "script-src-elem", "inline"),
        ("http://testserver/console/accounts", "img-src", "https://evil.example/p.gif")]
    assert "secret" not in caplog.text

    assert client.post(CSP_REPORT_PATH, content=b"{not json").json()["error"]["code"] == "invalid_json"
    assert client.post(CSP_REPORT_PATH, json={"something": "else"}).status_code == 400
    assert client.post(CSP_REPORT_PATH, content=b"[" + b"0," * 20_000 + b"0]").status_code == 413
    allowed = int(CSP_REPORT_LIMIT.split("/")[0])
    answers = [client.post(CSP_REPORT_PATH, json=classic).status_code for _ in range(allowed)]
    assert answers.count(204) == allowed - 5 and answers[-1] == 429  # five were counted above
    limited = client.post(CSP_REPORT_PATH, json=classic)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0


@pytest.mark.parametrize("path", ["/s/{slug}/activate", "/s/{slug}/reverify", "/s/{slug}/verify-email",
                                  "/s/{slug}/register/instant"])
def test_every_link_page_moves_its_token_out_of_the_address(db, client, path):
    store = f.storefront(db)
    moved = client.get(path.format(slug=store.slug) + "?token=abc_DEF-123", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == path.format(slug=store.slug)
    assert set_cookie(moved, "accountdesk_link").startswith("accountdesk_link=abc_DEF-123;")


def test_an_unexpected_error_is_answered_with_the_security_headers(db, settings):
    app = create_app(settings, db)

    @app.get("/api/v1/test-breaks")
    def breaks() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/test-breaks")
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal_error"
    assert answer.headers["X-Content-Type-Options"] == "nosniff" and answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_the_favicon_is_served_and_linked_from_every_layout(db, client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")
    store = f.storefront(db)
    for path in ("/console/sign-in", f"/s/{store.slug}/sign-in", "/s/no-such-store/sign-in"):
        html = client.get(path).text
        link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
        assert link, path
        assert client.get(link.group(1)).content == icon.content
