"""End to end: a relying party nobody here wrote — panva's openid-client from the npm registry, run by Node — signs
a buyer in through the storefront's own sign-in page in a real browser with code + PKCE, reads the claims and
userinfo, refreshes, and is logged out by a back-channel logout token when staff deactivate the login."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from accountdesk.core.db import utcnow
from accountdesk.core.settings import Settings
from accountdesk.oidc.claims import ACCOUNT_CLAIM
from tests import factories as f
from tests.conftest import _unavailable, free_port
from tests.oidc_world import register

pytestmark = pytest.mark.browser
MODULES = Path(__file__).resolve().parent.parent / "var/node/node_modules"
SCRIPT = Path(__file__).resolve().parent / "rp/openid_rp.mjs"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private_targets": True})  # the relying party is on loopback


@pytest.fixture
def relying_party(db, live_server: str) -> Iterator[tuple[str, object, object]]:
    """The storefront, its buyer and the running Node relying party's address."""
    if not (MODULES / "openid-client").exists():
        _unavailable("openid-client is not installed: make install (npm install --prefix var/node openid-client@6)")
    storefront = f.storefront(db)
    account = f.account(db, storefront_id=storefront.id, customer_group="trade")
    buyer = f.contact(db, account, storefront, email_verified_at=utcnow(), role="buyer")
    port = free_port()
    rp_base = f"http://127.0.0.1:{port}"
    rp = register(db, storefront, name="openid-client", redirect_uris=[f"{rp_base}/callback"],
                  backchannel_logout_uri=f"{rp_base}/backchannel")
    env = {**os.environ, "ISSUER": f"{live_server}/s/{storefront.slug}", "CLIENT_ID": rp.client_id,
           "CLIENT_SECRET": rp.secret, "PORT": str(port), "MODULES": str(MODULES)}
    node = subprocess.Popen(["node", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        assert json.loads(node.stdout.readline()) == {"listening": port}
        yield rp_base, buyer, account
    finally:
        node.terminate()
        node.wait(timeout=10)


def _rp_state(rp_base: str) -> dict:
    return httpx.get(f"{rp_base}/state").json()


def test_openid_client_signs_in_refreshes_and_is_logged_out_by_back_channel(db, page, live_server, relying_party):
    rp_base, buyer, account = relying_party
    page.goto(f"{rp_base}/login")
    page.get_by_label("E-mail").fill(buyer.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{rp_base}/callback?**")
    result = json.loads(page.locator("#result").inner_text())
    claims = result["claims"]
    assert claims["email"] == buyer.email and claims["email_verified"] is True and claims["name"] == buyer.name
    assert claims[ACCOUNT_CLAIM]["number"] == account.number and claims[ACCOUNT_CLAIM]["role"] == "buyer"
    assert result["userinfo"]["sub"] == claims["sub"] and result["userinfo"][ACCOUNT_CLAIM]["may_order"] is True
    assert result["refreshed"] and result["rotated"] and result["refreshedSub"] == claims["sub"]
    assert _rp_state(rp_base)["logouts"] == []

    admin = f.staff(db, "admin")
    with httpx.Client(base_url=live_server) as api:
        token = api.post("/api/v1/staff/tokens", json={"email": admin.email, "password": f.PASSWORD}).json()
        deactivated = api.post(f"/api/v1/accounts/{account.id}/contacts/{buyer.id}/deactivate",
                               headers={"Authorization": f"Bearer {token['access_token']}"})
        assert deactivated.status_code == 200, deactivated.text
    deadline = time.monotonic() + 15
    while not (state := _rp_state(rp_base))["logouts"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert state["errors"] == []
    assert state["logouts"] == [{"sub": claims["sub"], "sid": claims["sid"], "kid": state["logouts"][0]["kid"],
                                 "refreshAfterLogout": "invalid_grant"}]
