"""Storefront backend credentials (client credentials, scoped to their storefront) and the clients' registration
by staff: a buyer's token may not price an order, the same order with the backend credential may."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from tests import factories as f
from tests.oidc_world import REDIRECT, backend_token, oidc_world, register, sign_in, signed_in_tokens, verified_claims
from tests.reseller_world import LINES

SUB = "oidc-clients"


def _orders(w) -> str:
    return f"/api/v1/storefronts/{w.storefront.slug}/orders"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_buyer_token_with_a_price_is_refused_the_backend_credential_places_it(db, client):
    w = oidc_world(db)
    subject = verified_claims(client, w, signed_in_tokens(client, w)["id_token"], w.confidential.client_id)["sub"]
    refused = client.post(_orders(w), json={"lines": LINES}, headers=sign_in(client, w))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "price_not_allowed"
    named = client.post(_orders(w), json={"lines": [{**LINES[0], "unit_cost": None}], "buyer": subject},
                        headers=sign_in(client, w))
    assert named.status_code == 422 and named.json()["error"]["code"] == "buyer_not_allowed"
    placed = client.post(_orders(w), json={"lines": LINES, "buyer": subject}, headers=_bearer(backend_token(client, w)))
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["total_cost"] == "55.50" and order["placed_by_contact_id"] == w.buyer.id
    assert order["placed_by"] == "customer"


def test_backend_credentials_need_their_scope_and_speak_for_their_storefront_only(db, client):
    w, other = oidc_world(db), oidc_world(db)
    subject = verified_claims(client, w, signed_in_tokens(client, w)["id_token"], w.confidential.client_id)["sub"]
    reader = backend_token(client, w, "accounts:read")
    lacking = client.post(_orders(w), json={"lines": LINES, "buyer": subject}, headers=_bearer(reader))
    assert lacking.status_code == 403 and lacking.json()["error"]["code"] == "insufficient_scope"
    foreign = client.post(_orders(w), json={"lines": LINES, "buyer": subject},
                          headers=_bearer(backend_token(client, other)))
    assert foreign.status_code == 401 and foreign.json()["error"]["code"] == "not_signed_in"
    unknown = client.post(_orders(w), json={"lines": LINES, "buyer": "nobody"},
                          headers=_bearer(backend_token(client, w)))
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "buyer_not_found"
    read = client.get(f"/api/v1/storefronts/{w.storefront.slug}/buyers/{subject}", headers=_bearer(reader))
    assert read.status_code == 200 and read.json()["email"] == w.buyer.email
    assert client.get(f"/api/v1/storefronts/{other.storefront.slug}/buyers/{subject}",
                      headers=_bearer(reader)).status_code == 401
    url = f"{w.base}/oidc/token"
    wide = client.post(url, data={"grant_type": "client_credentials", "scope": "orders:write openid"},
                       auth=(w.backend.client_id, w.backend.secret))
    assert wide.status_code == 400 and wide.json()["error"] == "invalid_scope"
    public = client.post(url, data={"grant_type": "client_credentials", "client_id": w.public.client_id})
    assert public.status_code in (400, 401) and public.json()["error"] in ("unauthorized_client", "invalid_client")
    rp_only = client.post(url, data={"grant_type": "client_credentials"},
                          auth=(w.confidential.client_id, w.confidential.secret))
    assert rp_only.status_code == 200 and rp_only.json()["scope"] == ""  # no backend scope: a credential for nothing
    buyer_token = signed_in_tokens(client, w)["access_token"]  # a buyer's OIDC access token is no backend credential
    assert client.post(_orders(w), json={"lines": LINES, "buyer": subject},
                       headers=_bearer(buyer_token)).status_code == 401


def test_staff_register_list_replace_and_remove_clients(db, client):
    w = oidc_world(db)
    admin, csr = f.token(client, f.staff(db, "admin")), f.token(client, f.staff(db, "csr"))
    url = f"/api/v1/storefronts/{w.storefront.slug}/{SUB}"
    body = {"name": "Next.js shop", "redirect_uris": [REDIRECT], "scopes": ["openid", "email", "orders:write"]}
    assert client.post(url, json=body, headers=csr).status_code == 403
    made = client.post(url, json=body, headers=admin)
    assert made.status_code == 201, made.text
    secret, client_id = made.json()["client_secret"], made.json()["client_id"]
    listed = client.get(url, headers=csr).json()
    assert client_id in {c["client_id"] for c in listed} and all("client_secret" not in c for c in listed)
    token_url = f"{w.base}/oidc/token"
    assert client.post(token_url, data={"grant_type": "client_credentials"},
                       auth=(client_id, secret)).status_code == 200
    new = client.post(f"{url}/{client_id}/secret", headers=admin).json()["client_secret"]
    old = client.post(token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert old.status_code == 401
    token = client.post(token_url, data={"grant_type": "client_credentials"}, auth=(client_id, new)).json()
    assert client.delete(f"{url}/{client_id}", headers=admin).status_code == 204
    assert client.post(_orders(w), json={"lines": LINES, "buyer": "x"},
                       headers=_bearer(token["access_token"])).status_code == 401
    assert client.delete(f"{url}/{client_id}", headers=admin).json()["error"]["code"] == "oidc_client_not_found"
    for bad in ({**body, "redirect_uris": ["http://shop.example/cb"]}, {**body, "redirect_uris": ["https://s.example/#x"]},
                {**body, "kind": "public"}, {**body, "scopes": ["email"]},
                {"name": "x", "redirect_uris": [], "scopes": ["openid"]}):
        refused = client.post(url, json=bad, headers=admin)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_failed", refused.text
    assert client.get(f"/api/v1/storefronts/nope/{SUB}", headers=admin).status_code == 404


def test_client_registration_is_recorded_in_the_history(db, client):
    from sqlalchemy import select

    from accountdesk.core.models import AuditEvent

    w = oidc_world(db)
    register(db, w.storefront, redirect_uris=[REDIRECT])
    with db.transaction() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "oidc_client")).all()
    assert actions.count("oidc_client.registered") == 4


def test_a_backend_retrying_with_its_idempotency_key_places_one_order(db, client):
    """A backend credential's keys are its client's (any token of it), not the anonymous visitors' of the store."""
    w = oidc_world(db)
    subject = verified_claims(client, w, signed_in_tokens(client, w)["id_token"], w.confidential.client_id)["sub"]
    body, key = {"lines": LINES, "buyer": subject}, {"Idempotency-Key": '"backend-order-1"'}
    first = client.post(_orders(w), json=body, headers={**_bearer(backend_token(client, w)), **key})
    again = client.post(_orders(w), json=body, headers={**_bearer(backend_token(client, w)), **key})
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    anonymous = client.post(_orders(w), json=body, headers=key)  # no credential: another caller, its own key space
    assert anonymous.status_code == 401
    listed = client.get(_orders(w), headers=sign_in(client, w))
    assert [o["number"] for o in listed.json()["items"]] == [first.json()["number"]]


def test_a_client_credentials_grant_is_two_statements_each_committed_by_itself(db, client):
    """The client's read and the token's INSERT, on the connections for writes that need not wait for the disk (no
    transaction to begin, set up and commit): the token serves the storefront API at once. The grant's refusals
    are Authlib's as before, and an unknown storefront is a 404."""
    w = oidc_world(db)
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    event.listen(db.unwaited, "before_cursor_execute", note)
    try:
        token = backend_token(client, w, "accounts:read")
    finally:
        event.remove(db.unwaited, "before_cursor_execute", note)
    assert sent == ["SELECT", "INSERT"]
    subject = verified_claims(client, w, signed_in_tokens(client, w)["id_token"], w.confidential.client_id)["sub"]
    read = client.get(f"/api/v1/storefronts/{w.storefront.slug}/buyers/{subject}", headers=_bearer(token))
    assert read.status_code == 200 and read.json()["email"] == w.buyer.email
    url, grant = f"{w.base}/oidc/token", {"grant_type": "client_credentials"}
    wrong = client.post(url, data=grant, auth=(w.backend.client_id, "not-the-secret"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    public = client.post(url, data={**grant, "client_id": w.public.client_id})
    assert public.status_code in (400, 401) and public.json()["error"] in ("unauthorized_client", "invalid_client")
    elsewhere = client.post("/s/no-such-store/oidc/token", data=grant, auth=(w.backend.client_id, w.backend.secret))
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "storefront_not_found"


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # SQLite has no server to close a connection
def test_a_grant_still_succeeds_after_the_database_closed_the_pooled_connections(db, client):
    """Its connections are not pinged when taken from the pool: one the server closed fails its first statement and
    the grant runs once more on a new one."""
    w = oidc_world(db)
    backend_token(client, w)
    with db.engine.connect() as conn:
        ended = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    assert ended >= 1
    assert client.post(_orders(w), json={"lines": LINES, "buyer": "x"},
                       headers=_bearer(backend_token(client, w))).status_code == 422
