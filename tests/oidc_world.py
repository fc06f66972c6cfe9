"""A storefront with a buyer and registered OpenID Connect clients, and the steps of the code flow done the way a
relying party does them (over HTTP, PKCE computed here with hashlib, tokens checked with joserfc)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database, utcnow
from accountdesk.core.settings import get_settings
from accountdesk.oidc import clients
from accountdesk.oidc.schemas import ClientIn
from accountdesk.storefronts.models import Storefront
from tests import factories as f

REDIRECT = "https://shop.example/callback"
LOGGED_OUT = "https://shop.example/bye"


@dataclass
class Rp:
    client_id: str
    secret: str | None

    def auth(self) -> dict[str, str]:
        return {"client_id": self.client_id, **({"client_secret": self.secret} if self.secret else {})}


@dataclass
class OidcWorld:
    storefront: Storefront
    account: Account
    buyer: Contact
    confidential: Rp
    public: Rp
    backend: Rp

    @property
    def base(self) -> str:
        return f"/s/{self.storefront.slug}"


def register(db: Database, storefront: Storefront, **fields: Any) -> Rp:
    """A client registered as the operator of a closed network would: private back-channel addresses allowed."""
    permissive = get_settings().model_copy(update={"webhook_allow_private_targets": True})
    with db.transaction() as session:
        client, secret = clients.register(session, Actor.system(), storefront,
                                          ClientIn.model_validate({"name": "Shop", **fields}), permissive)
        return Rp(client.client_id, secret)


def oidc_world(db: Database, **store: Any) -> OidcWorld:
    storefront = f.storefront(db, **store)
    account = f.account(db, storefront_id=storefront.id, customer_group="trade", price_group="P2")
    buyer = f.contact(db, account, storefront, email_verified_at=utcnow(), role="account_admin", language="de")
    return OidcWorld(storefront, account, buyer,
                     register(db, storefront, redirect_uris=[REDIRECT], post_logout_redirect_uris=[LOGGED_OUT],
                              backchannel_logout_uri="https://shop.example/backchannel"),
                     register(db, storefront, kind="public", redirect_uris=[REDIRECT]),
                     register(db, storefront, scopes=["orders:write", "accounts:read"]))


def sign_in(client: TestClient, w: OidcWorld, contact: Contact | None = None) -> dict[str, str]:
    """A storefront session of the buyer, as a bearer header (the authorize endpoint reads it as the cookie)."""
    contact = contact or w.buyer
    response = client.post(f"/api/v1/storefronts/{w.storefront.slug}/sessions",
                           json={"email": contact.email, "password": f.PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(client: TestClient, w: OidcWorld, rp: Rp, session: dict[str, str] | None, challenge: str | None,
              **extra: str) -> Any:
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": REDIRECT,
              "scope": "openid profile email account", "state": "st4te", "nonce": "n0nce", **extra}
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return client.get(f"{w.base}/oidc/authorize", params=params, headers=session or {}, follow_redirects=False)


def code_from(response: Any) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st4te"], query
    return query["code"][0]


def exchange(client: TestClient, w: OidcWorld, rp: Rp, code: str, verifier: str | None,
             redirect_uri: str = REDIRECT) -> Any:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, **rp.auth()}
    if verifier:
        form["code_verifier"] = verifier
    return client.post(f"{w.base}/oidc/token", data=form)


def signed_in_tokens(client: TestClient, w: OidcWorld, rp: Rp | None = None) -> dict[str, Any]:
    rp = rp or w.confidential
    verifier, challenge = pkce()
    code = code_from(authorize(client, w, rp, sign_in(client, w), challenge))
    response = exchange(client, w, rp, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


def backend_token(client: TestClient, w: OidcWorld, scope: str = "orders:write accounts:read") -> str:
    response = client.post(f"{w.base}/oidc/token", data={"grant_type": "client_credentials", "scope": scope},
                           auth=(w.backend.client_id, w.backend.secret))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def verified_claims(client: TestClient, w: OidcWorld, id_token: str, audience: str) -> dict[str, Any]:
    """The ID token's claims after checking its signature against the published JWKS, its issuer and audience."""
    keys = KeySet.import_key_set(client.get(f"{w.base}/oidc/jwks").json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": f"http://127.0.0.1:8000{w.base}"},
                          aud={"essential": True, "value": audience}).validate(token.claims)
    return token.claims
