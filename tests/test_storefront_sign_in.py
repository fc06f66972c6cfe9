"""Storefront sign-in through the API and the pages: generic errors, refusals after the password matched, the
account chooser, new session ids, sign-out, rate limits and storefronts closed to anonymous visitors."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from accountdesk.contacts.models import Contact
from accountdesk.core.models import AuthSession
from accountdesk.core.ratelimit import ADDRESS_LIMIT
from tests import factories as f

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(client, url: str) -> str:
    """Open a page as a browser would and take the CSRF token of its form."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    return CSRF.search(response.text).group(1)


def api_sign_in(client, store, email: str, password: str = f.PASSWORD):
    return client.post(f"/api/v1/storefronts/{store.slug}/sessions", json={"email": email, "password": password})


def page_sign_in(client, store, email: str, password: str = f.PASSWORD, next_path: str = "", **kwargs):
    token = form_token(client, f"/s/{store.slug}/sign-in")
    return client.post(f"/s/{store.slug}/sign-in", data={"csrf_token": token, "email": email, "password": password,
                                                          "next": next_path}, **kwargs)


def bearer(response) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_policy_summary_is_public(db, client):
    store = f.storefront(db, name="Trade Shop", sign_in_text="Trade customers only.", self_registration=False,
                         registration_mode="approval", password_min_length=14,
                         password_require_character_classes=True)
    body = client.get(f"/api/v1/storefronts/{store.slug}").json()
    assert body["name"] == "Trade Shop" and body["sign_in_text"] == "Trade customers only."
    assert body["self_registration"] is False and body["registration_mode"] == "approval"
    assert body["anonymous_access"] is True and body["new_contact_for_existing_account"] is True
    assert body["password_policy"] == {"min_length": 14, "max_length": 128, "require_character_classes": True}
    missing = client.get("/api/v1/storefronts/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "storefront_not_found"


def test_api_sign_in_gives_a_new_session_each_time_and_signs_out(db, client):
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id, name="Acme Ltd")
    contact = f.contact(db, account, store, email="pat@example.com")
    first = api_sign_in(client, store, "Pat@Example.com ")
    assert first.status_code == 201, first.text
    assert first.json()["contact"]["id"] == contact.id and first.json()["account"]["name"] == "Acme Ltd"
    second = api_sign_in(client, store, "pat@example.com")
    assert second.json()["access_token"] != first.json()["access_token"]
    me = client.get(f"/api/v1/storefronts/{store.slug}/sessions/current", headers=bearer(second))
    assert me.status_code == 200 and me.json()["contact"]["email"] == "pat@example.com"
    with db.transaction() as session:
        assert session.get(Contact, contact.id).last_sign_in_at is not None
        assert len(session.scalars(select(AuthSession).where(AuthSession.contact_id == contact.id)).all()) == 2
    assert client.delete(f"/api/v1/storefronts/{store.slug}/sessions/current",
                         headers=bearer(second)).status_code == 204
    gone = client.get(f"/api/v1/storefronts/{store.slug}/sessions/current", headers=bearer(second))
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "not_signed_in"
    assert client.get(f"/api/v1/storefronts/{store.slug}/sessions/current", headers=bearer(first)).status_code == 200
    other = f.storefront(db)
    assert client.get(f"/api/v1/storefronts/{other.slug}/sessions/current",
                      headers=bearer(first)).status_code == 401


def test_unknown_email_and_wrong_password_get_the_same_answer(db, client):
    store = f.storefront(db)
    contact = f.contact(db, f.account(db, storefront_id=store.id), store)
    invited = f.contact(db, f.account(db, storefront_id=store.id), store, password=None, status="invited")
    answers = [api_sign_in(client, store, email, password) for email, password in
               [("nobody@example.com", f.PASSWORD), (contact.email, "wrong-password-123"),
                (invited.email, f.PASSWORD), ("not an e-mail", f.PASSWORD)]]
    assert {a.status_code for a in answers} == {401}
    assert all(a.json() == answers[0].json() for a in answers)
    assert answers[0].json()["error"] == {"code": "invalid_credentials", "message": "E-mail or password is not right."}
    pages = [page_sign_in(client, store, email, password) for email, password in
             [("nobody@example.com", f.PASSWORD), (contact.email, "wrong-password-123")]]
    assert {p.status_code for p in pages} == {401}
    assert all("E-mail or password is not right." in p.text for p in pages)


def test_refusals_are_told_only_after_the_password_matched(db, client):
    store = f.storefront(db)
    deactivated = f.contact(db, f.account(db, storefront_id=store.id), store, status="deactivated")
    closed_account = f.account(db, storefront_id=store.id, status="inactive")
    on_closed = f.contact(db, closed_account, store)
    pending = f.contact(db, f.account(db, storefront_id=store.id, status="pending_approval"), store,
                        status="pending_approval")
    for contact in (deactivated, on_closed):
        refused = api_sign_in(client, store, contact.email)
        assert refused.status_code == 403
        assert refused.json()["error"] == {"code": "login_inactive",
                                           "message": "This login is not active. Contact your account administrator."}
    waiting = api_sign_in(client, store, pending.email)
    assert waiting.status_code == 403 and waiting.json()["error"]["message"] == "Your account is waiting for approval."
    guessed = api_sign_in(client, store, deactivated.email, "wrong-password-123")
    assert guessed.status_code == 401 and guessed.json()["error"]["code"] == "invalid_credentials"
    page = page_sign_in(client, store, deactivated.email)
    assert page.status_code == 403 and "This login is not active. Contact your account administrator." in page.text


def _one_email_on_three_accounts(db):
    store = f.storefront(db)
    first = f.account(db, storefront_id=store.id, name="Northwind Traders")
    second = f.account(db, storefront_id=store.id, name="Contoso Retail")
    third = f.account(db, storefront_id=store.id, name="Other Password Inc")
    c1 = f.contact(db, first, store, email="sam@example.com")
    c2 = f.contact(db, second, store, email="sam@example.com")
    c3 = f.contact(db, third, store, email="sam@example.com", password="a-different-password-42")
    elsewhere = f.storefront(db)
    f.contact(db, f.account(db, storefront_id=elsewhere.id, name="Elsewhere GmbH"), elsewhere, email="sam@example.com")
    return store, (first, second, third), (c1, c2, c3)


def test_api_chooser_offers_only_accounts_whose_password_matched(db, client):
    store, (first, second, _), (c1, c2, c3) = _one_email_on_three_accounts(db)
    offered = api_sign_in(client, store, "sam@example.com")
    assert offered.status_code == 200 and offered.json()["status"] == "choose_account"
    accounts = offered.json()["accounts"]
    assert {(a["contact_id"], a["account_number"], a["account_name"]) for a in accounts} == {
        (c1.id, first.number, "Northwind Traders"), (c2.id, second.number, "Contoso Retail")}
    choice = offered.json()["choice_token"]
    url = f"/api/v1/storefronts/{store.slug}/sessions/choice"
    forged = client.post(url, json={"choice_token": choice, "contact_id": c3.id})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "choice_not_offered"
    made_up = client.post(url, json={"choice_token": "made-up-token", "contact_id": c2.id})
    assert made_up.status_code == 422 and made_up.json()["error"]["code"] == "choice_expired"
    chosen = client.post(url, json={"choice_token": choice, "contact_id": c2.id})
    assert chosen.status_code == 201 and chosen.json()["contact"]["id"] == c2.id
    assert chosen.json()["account"]["name"] == "Contoso Retail"
    assert client.post(url, json={"choice_token": choice, "contact_id": c1.id}).status_code == 422
    alone = api_sign_in(client, store, "sam@example.com", "a-different-password-42")
    assert alone.status_code == 201 and alone.json()["contact"]["id"] == c3.id


def test_page_chooser_signs_in_to_the_chosen_contact(db, client):
    store, (first, second, _), (c1, c2, c3) = _one_email_on_three_accounts(db)
    chooser = page_sign_in(client, store, "sam@example.com")
    assert chooser.status_code == 200
    assert "Northwind Traders" in chooser.text and "Contoso Retail" in chooser.text and first.number in chooser.text
    assert "Other Password Inc" not in chooser.text and "Elsewhere GmbH" not in chooser.text
    token, choice = CSRF.search(chooser.text).group(1), re.search(r'name="choice_token" value="([^"]+)"',
                                                                   chooser.text).group(1)
    url = f"/s/{store.slug}/sign-in/choose"
    forged = client.post(url, data={"csrf_token": token, "choice_token": choice, "contact_id": str(c3.id)})
    assert forged.status_code == 403 and "Choose one of the accounts offered." in forged.text
    assert client.cookies.get(f"accountdesk_sf_{store.slug}") is None
    home = client.post(url, data={"csrf_token": token, "choice_token": choice, "contact_id": str(c1.id)})
    assert home.status_code == 200 and f"Signed in as <strong>{c1.name}</strong> for <strong>Northwind Traders" \
        in home.text


def test_pages_sign_in_redirects_back_sets_a_fresh_cookie_and_signs_out(db, client):
    store = f.storefront(db, anonymous_access=False, sign_in_text="Welcome, trade customers!")
    account = f.account(db, storefront_id=store.id, name="Acme Ltd")
    contact = f.contact(db, account, store)
    bounced = client.get(f"/s/{store.slug}", follow_redirects=False)
    assert bounced.status_code == 303
    assert bounced.headers["location"] == f"/s/{store.slug}/sign-in?next=%2Fs%2F{store.slug}"
    form = client.get(bounced.headers["location"])
    assert "Welcome, trade customers!" in form.text
    # self-registration needs anonymous access; adding oneself to a proven account does not
    assert "Create an account" not in form.text and "Create a new contact for your account" in form.text
    signed = page_sign_in(client, store, contact.email, next_path=f"/s/{store.slug}/account/password",
                          follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == f"/s/{store.slug}/account/password"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith(f"accountdesk_sf_{store.slug}="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie and "Secure" not in cookie
    first_value = client.cookies.get(f"accountdesk_sf_{store.slug}")
    home = client.get(f"/s/{store.slug}")
    assert f"Signed in as <strong>{contact.name}</strong> for <strong>Acme Ltd</strong>" in home.text
    page_sign_in(client, store, contact.email)
    assert client.cookies.get(f"accountdesk_sf_{store.slug}") != first_value
    with db.transaction() as session:
        rows = session.scalars(select(AuthSession).where(AuthSession.contact_id == contact.id)
                               .order_by(AuthSession.id)).all()
        assert len(rows) == 2 and rows[0].revoked_at is not None and rows[1].revoked_at is None
    token = CSRF.search(home.text).group(1)
    assert client.post(f"/s/{store.slug}/sign-out", data={"csrf_token": "forged"}).status_code == 403
    out = client.post(f"/s/{store.slug}/sign-out", data={"csrf_token": token})
    assert out.url.path == f"/s/{store.slug}/sign-in" and "You are signed out." in out.text
    assert client.get(f"/s/{store.slug}", follow_redirects=False).status_code == 303


def test_links_follow_the_policy_and_next_stays_on_the_storefront(db, client):
    store = f.storefront(db, self_registration=False, new_contact_for_existing_account=False)
    contact = f.contact(db, f.account(db, storefront_id=store.id), store)
    form = client.get(f"/s/{store.slug}/sign-in")
    assert "Create an account" not in form.text and "Create a new contact" not in form.text
    assert "Signed in as" not in client.get(f"/s/{store.slug}").text  # anonymous access on: home is open
    for hostile in ("https://evil.example/x", "//evil.example", "/s/other/page"):
        response = page_sign_in(client, store, contact.email, next_path=hostile, follow_redirects=False)
        assert response.headers["location"] == f"/s/{store.slug}"


def test_sign_out_everywhere_ends_every_session(db, client):
    store = f.storefront(db)
    contact = f.contact(db, f.account(db, storefront_id=store.id), store)
    api = api_sign_in(client, store, contact.email)
    home = page_sign_in(client, store, contact.email)
    out = client.post(f"/s/{store.slug}/sign-out-everywhere", data={"csrf_token": CSRF.search(home.text).group(1)})
    assert "You are signed out on every device." in out.text
    assert client.get(f"/api/v1/storefronts/{store.slug}/sessions/current", headers=bearer(api)).status_code == 401
    again = api_sign_in(client, store, contact.email)
    assert client.delete(f"/api/v1/storefronts/{store.slug}/sessions", headers=bearer(again)).status_code == 204
    assert client.get(f"/api/v1/storefronts/{store.slug}/sessions/current", headers=bearer(again)).status_code == 401


def test_sign_ins_are_rate_limited_per_email_and_address_pair(db, client):
    store = f.storefront(db)
    contact = f.contact(db, f.account(db, storefront_id=store.id), store)
    for _ in range(10):
        assert api_sign_in(client, store, contact.email, "wrong-password-123").status_code == 401
    limited = api_sign_in(client, store, contact.email)  # even the right password waits now, from this address
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert limited.json()["error"]["code"] == "rate_limited"
    page = page_sign_in(client, store, contact.email)
    assert page.status_code == 429 and "Too many attempts" in page.text and int(page.headers["retry-after"]) > 0
    elsewhere = TestClient(client.app, client=("198.51.100.7", 4000))  # the owner, from their own address
    assert api_sign_in(elsewhere, store, contact.email).status_code == 201


def test_address_limit_counts_across_emails(db, client):
    store = f.storefront(db)
    for n in range(int(ADDRESS_LIMIT.split("/")[0])):
        assert api_sign_in(client, store, f"guess{n}@example.com").status_code == 401
    assert api_sign_in(client, store, "guess-next@example.com").status_code == 429


def test_api_sign_in_answers_every_body_as_its_documented_route(db, client):
    """The sign-in is served ahead of the app's routers (app.ExpressLane); a body it does not take as it is goes on
    to the API route, which refuses it in the API's words, and the route stays documented."""
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    f.contact(db, account, store, email="pat@example.com")
    url = f"/api/v1/storefronts/{store.slug}/sessions"
    refusals = {
        "not JSON": client.post(url, content=b'{"email": ', headers={"Content-Type": "application/json"}),
        "a field missing": client.post(url, json={"email": "pat@example.com"}),
        "a form": client.post(url, data={"email": "pat@example.com", "password": f.PASSWORD}),
        "an array": client.post(url, json=[{"email": "pat@example.com", "password": f.PASSWORD}]),
        "NUL in an extra field": client.post(url, json={"email": "pat@example.com", "password": f.PASSWORD,
                                                        "note": ["\x00"]}),
    }
    assert {name: (r.status_code, r.json()["error"]["code"]) for name, r in refusals.items()} == {
        "not JSON": (400, "invalid_json"), "a field missing": (422, "validation_failed"),
        "a form": (422, "validation_failed"), "an array": (422, "validation_failed"),
        "NUL in an extra field": (422, "invalid_text")}
    assert refusals["a field missing"].json()["error"]["fields"] == {"password": "This field is required."}
    assert refusals["NUL in an extra field"].json()["error"]["fields"].keys() == {"note.0"}
    as_json_api = client.post(url, content=f'{{"email": "pat@example.com", "password": "{f.PASSWORD}"}}',
                              headers={"Content-Type": "application/vnd.api+json"})
    assert as_json_api.status_code == 201 and as_json_api.headers["cache-control"] == "no-store"
    signed_in = client.post(url, json={"email": "pat@example.com", "password": f.PASSWORD, "extra": 1})
    assert signed_in.status_code == 201 and signed_in.headers["x-content-type-options"] == "nosniff"
    assert "post" in client.get("/openapi.json").json()["paths"]["/api/v1/storefronts/{slug}/sessions"]
