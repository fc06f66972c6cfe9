"""One settings object: what a request reads comes from the Settings the app was made with (app.state.settings), so
a test's or a deployment's settings win over the process environment (get_settings)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from accountdesk.app import create_app
from accountdesk.core import crypto, security
from accountdesk.core.models import AuthSession, OutboxMessage, SingleUseToken
from accountdesk.core.settings import get_settings
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.reseller_world import NEW_USER, customer, world

OURS = {"base_url": "https://shop.example", "api_token_hours": 2, "reset_token_minutes": 7,
        "activation_token_hours": 3}


def lifetimes(db) -> dict[str, timedelta]:
    with db.transaction() as session:
        return {row.purpose: row.expires_at - row.created_at for row in session.scalars(select(SingleUseToken))}


def links(db) -> list[str]:
    with db.transaction() as session:
        return [row.payload["context"]["link"] for row in session.scalars(select(OutboxMessage))]


def test_requests_read_the_apps_settings_not_the_environments(db, settings):
    assert all(getattr(get_settings(), name) != value for name, value in OURS.items())  # they would show
    ours = settings.model_copy(update=OURS)
    w = world(db)
    buyer = customer(db, w)
    login = f.contact(db, buyer, w.storefront, email="kim@example.com")
    admin = f.staff(db, "admin")
    with TestClient(create_app(ours, db), base_url="http://testserver") as client:
        answer = client.post("/api/v1/staff/tokens", json={"email": admin.email, "password": f.PASSWORD})
        assert answer.status_code == 201 and answer.json()["expires_in"] == 2 * 3600
        operator = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        reseller = f.token(client, w.staff)
        assert client.post(f"/api/v1/accounts/{buyer.id}/contacts/{login.id}/password-reset",
                           headers=operator).status_code == 202
        assert client.post("/api/v1/staff/users", json={"email": "new@staff.example", "role": "csr"},
                           headers=operator).status_code == 201
        assert client.post(f"{w.base}/customers/{buyer.id}/users", json=NEW_USER, headers=reseller).status_code == 201
    found = {purpose: round(lifetime.total_seconds() / 60) for purpose, lifetime in lifetimes(db).items()}
    assert found == {"password_reset": 7, "staff_invitation": 3 * 60, "activation": 3 * 60}
    assert len(links(db)) == 3 and all(link.startswith("https://shop.example/") for link in links(db))


def test_hashes_digests_and_sealed_secrets_use_the_apps_keys_not_the_environments(db, settings):
    ours = settings.model_copy(update={"secret_key": "app-own-secret-" + "x" * 20, "argon2_time_cost": 3})
    assert get_settings().secret_key != ours.secret_key and get_settings().argon2_time_cost != 3
    admin = f.staff(db, "admin")
    with TestClient(create_app(ours, db), base_url="http://testserver") as client:
        answer = client.post("/api/v1/staff/tokens", json={"email": admin.email, "password": f.PASSWORD})
        assert answer.status_code == 201
        token = answer.json()["access_token"]
        assert client.get("/api/v1/staff/users", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with db.transaction() as session:
        digests = list(session.scalars(select(AuthSession.token_digest)))
        stored = session.get(StaffUser, admin.id).password_hash
    assert digests == [hmac.new(ours.secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()]
    assert ",t=3," in stored  # signing in re-hashed the password with the app's costs
    sealed = crypto.seal("totp-seed", "test")
    assert crypto.unseal(sealed, "test") == "totp-seed"
    security.bind(get_settings())
    assert crypto.unseal(sealed, "test") is None  # sealed under the app's key, not the environment's
