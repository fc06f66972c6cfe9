"""The storefront's OpenID Connect provider over HTTP, on both databases: the code flow with PKCE, the claims, and
every failure path a relying party or an attacker can take (wrong redirect URI, PKCE, reused or expired codes,
refresh-token reuse, unknown clients, tampered ID tokens), refresh rotation, logout, keys and client registration."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from sqlalchemy import func, select, update

from accountdesk.core.db import utcnow
from accountdesk.core.models import OutboxMessage
from accountdesk.core.outbox import PermanentFailure
from accountdesk.oidc import keys
from accountdesk.oidc.claims import ACCOUNT_CLAIM
from accountdesk.oidc.logout import LogoutHandler
from accountdesk.oidc.models import AuthorizationCode
from tests import factories as f
from tests.oidc_world import (
    LOGGED_OUT,
    REDIRECT,
    authorize,
    code_from,
    exchange,
    oidc_world,
    pkce,
    register,
    sign_in,
    signed_in_tokens,
    verified_claims,
)
from tests.webhook_receiver import receiving


def _userinfo(client, w, access_token: str):
    return client.get(f"{w.base}/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def _refresh(client, w, refresh_token: str, rp=None):
    rp = rp or w.confidential
    return client.post(f"{w.base}/oidc/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                     **rp.auth()})


def test_discovery_names_the_storefront_issuer_and_its_endpoints(db, client):
    w = oidc_world(db)
    meta = client.get(f"{w.base}/.well-known/openid-configuration").json()
    issuer = f"http://127.0.0.1:8000{w.base}"
    assert meta["issuer"] == issuer and meta["token_endpoint"] == issuer + "/oidc/token"
    assert meta["code_challenge_methods_supported"] == ["S256"] and meta["backchannel_logout_supported"] is True
    assert client.get("/s/no-such-store/.well-known/openid-configuration").status_code == 404


def test_code_flow_gives_verified_claims_userinfo_and_a_stable_random_subject(db, client):
    w = oidc_world(db)
    tokens = signed_in_tokens(client, w)
    claims = verified_claims(client, w, tokens["id_token"], w.confidential.client_id)
    assert claims["nonce"] == "n0nce" and claims["email"] == w.buyer.email and claims["email_verified"] is True
    assert claims["locale"] == "de" and claims["name"] == w.buyer.name and claims["auth_time"] <= claims["iat"]
    account = claims[ACCOUNT_CLAIM]
    assert account == {"number": w.account.number, "name": w.account.name, "kind": "b2b", "role": "account_admin",
                       "customer_group": "trade", "price_group": "P2", "payment_method": "cash", "currency": "EUR",
                       "may_order": True, "reseller": None}
    assert claims["sub"] != str(w.buyer.id) and len(claims["sub"]) >= 40
    info = _userinfo(client, w, tokens["access_token"])
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"] and info.json()[ACCOUNT_CLAIM] == account
    again = signed_in_tokens(client, w, w.public)
    assert verified_claims(client, w, again["id_token"], w.public.client_id)["sub"] == claims["sub"]


def test_without_a_session_authorize_sends_the_buyer_to_the_storefront_sign_in_and_back(db, client):
    w = oidc_world(db)
    response = authorize(client, w, w.confidential, None, pkce()[1])
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(f"{w.base}/sign-in?next=%2Fs%2F{w.storefront.slug}%2Foidc%2Fauthorize%3F")
    none = authorize(client, w, w.confidential, None, pkce()[1], prompt="none")
    assert none.headers["location"].startswith(REDIRECT + "?error=login_required")


def test_prompt_login_and_max_age_ask_for_a_new_sign_in(db, client):
    w = oidc_world(db)
    session = sign_in(client, w)
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        response = authorize(client, w, w.confidential, session, pkce()[1], **extra)
        assert response.headers["location"].startswith(f"{w.base}/sign-in?next="), extra
        assert "login_after" in response.headers["location"]
    assert authorize(client, w, w.confidential, session, pkce()[1], max_age="3600").headers["location"].startswith(
        REDIRECT + "?code=")
    old = str(int(utcnow().timestamp()) + 60)  # a sign-in before this moment does not count
    response = authorize(client, w, w.confidential, session, pkce()[1], prompt="login", login_after=old)
    assert response.headers["location"].startswith(f"{w.base}/sign-in?next=")


def test_wrong_redirect_uri_is_refused_without_redirecting(db, client):
    w = oidc_world(db)
    session = sign_in(client, w)
    for uri in ("https://evil.example/callback", REDIRECT + "/", REDIRECT + "?x=1"):
        response = authorize(client, w, w.confidential, session, pkce()[1], redirect_uri=uri)
        assert response.status_code == 400 and response.json()["error"] == "invalid_request", uri
        assert "location" not in response.headers
    verifier, challenge = pkce()
    code = code_from(authorize(client, w, w.confidential, session, challenge))
    response = exchange(client, w, w.confidential, code, verifier, redirect_uri="https://evil.example/callback")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_pkce_is_required_for_public_clients_and_checked(db, client):
    w = oidc_world(db)
    session = sign_in(client, w)
    refused = authorize(client, w, w.public, session, None)
    assert refused.headers["location"].startswith(REDIRECT + "?error=invalid_request")
    plain = authorize(client, w, w.public, session, None, code_challenge="a" * 43, code_challenge_method="plain")
    assert plain.headers["location"].startswith(REDIRECT + "?error=invalid_request")
    verifier, challenge = pkce()
    missing = exchange(client, w, w.public, code_from(authorize(client, w, w.public, session, challenge)), None)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    wrong = exchange(client, w, w.public, code_from(authorize(client, w, w.public, session, challenge)), pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    confidential = exchange(client, w, w.confidential,
                            code_from(authorize(client, w, w.confidential, session, challenge)), None)
    assert confidential.status_code == 400 and confidential.json()["error"] == "invalid_request"
    right = exchange(client, w, w.public, code_from(authorize(client, w, w.public, session, challenge)), verifier)
    assert right.status_code == 200 and "refresh_token" in right.json()


def test_a_reused_code_is_refused_and_revokes_what_it_gave(db, client):
    w = oidc_world(db)
    verifier, challenge = pkce()
    code = code_from(authorize(client, w, w.confidential, sign_in(client, w), challenge))
    first = exchange(client, w, w.confidential, code, verifier)
    assert first.status_code == 200
    assert _userinfo(client, w, first.json()["access_token"]).status_code == 200
    second = exchange(client, w, w.confidential, code, verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert _userinfo(client, w, first.json()["access_token"]).status_code == 401
    assert _refresh(client, w, first.json()["refresh_token"]).json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused(db, client):
    w = oidc_world(db)
    verifier, challenge = pkce()
    code = code_from(authorize(client, w, w.confidential, sign_in(client, w), challenge))
    with db.transaction() as session:
        session.execute(update(AuthorizationCode).values(expires_at=utcnow()))
    response = exchange(client, w, w.confidential, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(db, client):
    w = oidc_world(db)
    tokens = signed_in_tokens(client, w)
    refreshed = _refresh(client, w, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["refresh_token"] != tokens["refresh_token"] and body["access_token"] != tokens["access_token"]
    claims = verified_claims(client, w, body["id_token"], w.confidential.client_id)
    first = verified_claims(client, w, tokens["id_token"], w.confidential.client_id)
    assert claims["sub"] == first["sub"] and claims["sid"] == first["sid"] and claims["auth_time"] == first["auth_time"]
    assert _refresh(client, w, tokens["refresh_token"]).json()["error"] == "invalid_grant"  # reuse
    assert _refresh(client, w, body["refresh_token"]).json()["error"] == "invalid_grant"  # the family is revoked
    assert _userinfo(client, w, body["access_token"]).status_code == 401
    other = signed_in_tokens(client, w, w.public)  # another client's family is untouched
    assert _refresh(client, w, other["refresh_token"]).json()["error"] == "invalid_grant"  # not this client's
    assert _refresh(client, w, other["refresh_token"], w.public).status_code == 200


def test_unknown_clients_and_wrong_secrets_are_refused(db, client):
    w = oidc_world(db)
    session = sign_in(client, w)
    unknown = authorize(client, w, w.confidential, session, pkce()[1], client_id="nobody")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_client"
    other_store = oidc_world(db)
    foreign = authorize(client, w, other_store.confidential, session, pkce()[1])
    assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_client"
    verifier, challenge = pkce()
    code = code_from(authorize(client, w, w.confidential, session, challenge))
    for auth in ({"client_id": "nobody", "client_secret": "x"},
                 {"client_id": w.confidential.client_id, "client_secret": "wrong"}):
        response = client.post(f"{w.base}/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                              "redirect_uri": REDIRECT, "code_verifier": verifier,
                                                              **auth})
        assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"
    assert exchange(client, w, w.confidential, code, verifier).status_code == 200  # the code was not spent
    basic = client.post(f"{w.base}/oidc/token", data={"grant_type": "client_credentials"}, auth=("nobody", "x"))
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"


def test_the_token_endpoint_refuses_unstorable_text_with_an_oauth_error_and_reads_only_a_form(db, client):
    w = oidc_world(db)
    url, backend = f"{w.base}/oidc/token", (w.backend.client_id, w.backend.secret)
    for form, query in (({"grant_type": "client_credentials", "scope": "orders:write\x00"}, {}),
                        ({"grant_type": "client_credentials\n"}, {}),
                        ({"grant_type": "client_credentials"}, {"x": "\x1b"})):
        refused = client.post(url, data=form, params=query, auth=backend)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_request", refused.text
    nul_id = client.post(url, data={"grant_type": "client_credentials"}, auth=("a\x00b", "x"))  # in the header
    assert nul_id.status_code == 401 and nul_id.json()["error"] == "invalid_client"
    as_json = client.post(url, json={"grant_type": "client_credentials"}, auth=backend)
    assert as_json.status_code == 400 and as_json.json()["error"] == "unsupported_grant_type"
    assert client.post(url, data={"grant_type": "client_credentials"}, auth=backend).status_code == 200


def test_the_token_endpoint_taken_ahead_of_the_middleware_keeps_the_apps_headers_and_error_answers(db, client):
    w = oidc_world(db)
    url, backend = f"{w.base}/oidc/token", (w.backend.client_id, w.backend.secret)
    granted = client.post(url, data={"grant_type": "client_credentials"}, auth=backend)
    assert granted.status_code == 200 and granted.headers["cache-control"] == "no-store"
    assert granted.headers["x-content-type-options"] == "nosniff"
    assert granted.headers["referrer-policy"] == "no-referrer"
    unknown = client.post("/s/no-such-store/oidc/token", data={"grant_type": "client_credentials"}, auth=backend)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "storefront_not_found"
    assert unknown.headers["x-content-type-options"] == "nosniff"
    read = client.get(url)  # its other methods go through the app's routers
    assert read.status_code == 405 and read.json()["error"]["code"] == "method_not_allowed"


def test_a_tampered_id_token_fails_verification_and_is_refused_as_a_logout_hint(db, client):
    w = oidc_world(db)
    tokens = signed_in_tokens(client, w)
    header, payload, signature = tokens["id_token"].split(".")
    claims = jwt.decode(tokens["id_token"], keys.key_set_from(client.get(f"{w.base}/oidc/jwks").json())).claims
    forged_claims = {**claims, "email": "ceo@example.com"}
    import base64
    import json

    forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    with pytest.raises(BadSignatureError):
        verified_claims(client, w, forged, w.confidential.client_id)
    response = client.get(f"{w.base}/oidc/logout", params={"id_token_hint": forged,
                                                            "post_logout_redirect_uri": LOGGED_OUT},
                          follow_redirects=False)
    assert response.status_code == 400 and "location" not in response.headers


def test_rp_initiated_logout_returns_only_to_a_registered_address(db, client):
    w = oidc_world(db)
    tokens = signed_in_tokens(client, w)
    response = client.get(f"{w.base}/oidc/logout", params={"id_token_hint": tokens["id_token"], "state": "s1",
                                                            "post_logout_redirect_uri": LOGGED_OUT},
                          follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == LOGGED_OUT + "?state=s1"
    assert _userinfo(client, w, tokens["access_token"]).status_code == 401
    again = signed_in_tokens(client, w)
    foreign = client.get(f"{w.base}/oidc/logout", params={"id_token_hint": again["id_token"],
                                                           "post_logout_redirect_uri": "https://evil.example/"},
                         follow_redirects=False)
    assert foreign.status_code == 302 and foreign.headers["location"] == f"{w.base}/sign-in"
    no_hint = client.get(f"{w.base}/oidc/logout", params={"post_logout_redirect_uri": LOGGED_OUT},
                         follow_redirects=False)
    assert no_hint.status_code == 400


def test_deactivating_the_login_revokes_its_tokens_and_queues_a_back_channel_logout(db, client):
    w = oidc_world(db)
    tokens = signed_in_tokens(client, w)
    public = signed_in_tokens(client, w, w.public)
    admin = f.token(client, f.staff(db, "admin"))
    response = client.post(f"/api/v1/accounts/{w.account.id}/contacts/{w.buyer.id}/deactivate", headers=admin)
    assert response.status_code == 200, response.text
    assert _userinfo(client, w, tokens["access_token"]).status_code == 401
    assert _refresh(client, w, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert _refresh(client, w, public["refresh_token"], w.public).json()["error"] == "invalid_grant"
    sid = verified_claims(client, w, tokens["id_token"], w.confidential.client_id)["sid"]
    with db.transaction() as session:
        notices = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "oidc_logout")).all()
        assert [n.payload["sid"] for n in notices] == [sid]  # only the client with a back-channel URI is told


def test_sign_out_everywhere_ends_the_relying_parties_sessions_too(db, client):
    w = oidc_world(db)
    tokens = signed_in_tokens(client, w)
    session = sign_in(client, w)
    assert client.delete(f"/api/v1/storefronts/{w.storefront.slug}/sessions", headers=session).status_code == 204
    assert _userinfo(client, w, tokens["access_token"]).status_code == 401
    with db.transaction() as s:
        assert s.scalar(select(func.count()).where(OutboxMessage.kind == "oidc_logout")) == 1


def test_keys_rotate_with_two_published_during_the_rollover(db, client):
    w = oidc_world(db)
    tokens = signed_in_tokens(client, w)
    first = client.get(f"{w.base}/oidc/jwks").json()["keys"]
    assert len(first) == 1 and "d" not in first[0]
    with db.transaction() as session:
        keys.rotate(session)
    second = client.get(f"{w.base}/oidc/jwks").json()["keys"]
    assert len(second) == 2 and first[0]["kid"] in {k["kid"] for k in second}
    verified_claims(client, w, tokens["id_token"], w.confidential.client_id)  # still verifies
    newer = signed_in_tokens(client, w)
    assert jwt.decode(newer["id_token"], keys.key_set_from({"keys": second})).header["kid"] != first[0]["kid"]
    with db.transaction() as session:
        keys.rotate(session)
    third = client.get(f"{w.base}/oidc/jwks").json()["keys"]
    assert len(third) == 2 and first[0]["kid"] not in {k["kid"] for k in third}


@pytest.mark.parametrize("method,path,params", [
    ("GET", "/oidc/authorize", {}),
    ("GET", "/oidc/authorize", {"client_id": "\x00", "response_type": "token", "redirect_uri": "javascript:x"}),
    ("GET", "/oidc/authorize", {"client_id": "x", "client_id ": "y", "scope": "openid" * 500}),
    ("POST", "/oidc/token", {}),
    ("POST", "/oidc/token", {"grant_type": "password", "username": "a", "password": "b"}),
    ("POST", "/oidc/token", {"grant_type": "authorization_code", "code": "\u2603" * 300, "client_id": "x"}),
    ("POST", "/oidc/token", {"grant_type": "refresh_token", "refresh_token": "", "client_id": ""}),
    ("GET", "/oidc/userinfo", {}),
    ("POST", "/oidc/userinfo", {"access_token": "x"}),
    ("GET", "/oidc/logout", {"id_token_hint": "a.b.c"}),
    ("GET", "/oidc/logout", {"id_token_hint": "not a token", "client_id": "nobody"}),
])
def test_protocol_endpoints_answer_nonsense_with_an_oauth_error_not_a_server_error(db, client, method, path, params):
    w = oidc_world(db)
    if method == "GET":
        response = client.get(w.base + path, params=params, follow_redirects=False)
    else:
        response = client.post(w.base + path, data=params)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]


def test_a_back_channel_logout_uri_on_a_private_address_is_refused_when_registered(db, client):
    w = oidc_world(db)
    admin = f.token(client, f.staff(db, "admin"))
    url = f"/api/v1/storefronts/{w.storefront.slug}/oidc-clients"
    for private in ("http://127.0.0.1:8080/logout", "https://10.0.0.7/logout", "http://localhost:9000/logout"):
        refused = client.post(url, headers=admin, json={"name": "Shop", "redirect_uris": [REDIRECT],
                                                        "backchannel_logout_uri": private})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "oidc_logout_target_refused"
    assert len(client.get(url, headers=admin).json()) == 3  # only the world's own clients


def _queued_logout(db, client, w, rp) -> dict:
    signed_in_tokens(client, w, rp)
    admin = f.token(client, f.staff(db, "admin"))
    assert client.post(f"/api/v1/accounts/{w.account.id}/contacts/{w.buyer.id}/deactivate",
                       headers=admin).status_code == 200
    with db.transaction() as session:
        return session.scalars(select(OutboxMessage.payload).where(OutboxMessage.kind == "oidc_logout")).one()


def test_back_channel_logout_reaches_a_private_address_only_when_the_operator_allows_it(db, client, settings):
    w = oidc_world(db)
    with receiving() as receiver:
        rp = register(db, w.storefront, redirect_uris=[REDIRECT], backchannel_logout_uri=f"{receiver.url}/bc")
        notice = _queued_logout(db, client, w, rp)
        with pytest.raises(PermanentFailure, match="refused"):
            LogoutHandler(db, settings.model_copy(update={"webhook_allow_private_targets": False}))(notice)
        assert receiver.received == [] and receiver.refused == []
        allowed = settings.model_copy(update={"webhook_allowed_networks": "127.0.0.0/8"})
        LogoutHandler(db, allowed)(notice)
        [delivered] = receiver.accepted("/bc")
        token = parse_qs(delivered.body)["logout_token"][0]
        assert jwt.decode(token, keys.key_set_from(client.get(f"{w.base}/oidc/jwks").json())).claims["sid"] == \
            notice["sid"]


def test_back_channel_logout_follows_no_redirect(db, client, settings):
    w = oidc_world(db)
    with receiving() as receiver:
        receiver.redirect_to = "/elsewhere"
        rp = register(db, w.storefront, redirect_uris=[REDIRECT], backchannel_logout_uri=f"{receiver.url}/bc")
        notice = _queued_logout(db, client, w, rp)
        with pytest.raises(RuntimeError, match="answered 302"):
            LogoutHandler(db, settings.model_copy(update={"webhook_allow_private_targets": True}))(notice)
        assert [r.path for r in receiver.refused] == ["/bc"] and receiver.received == []
