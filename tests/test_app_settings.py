"""One settings object: what a request reads comes from the Settings the app was made with (app.state.settings), so
a test's or a deployment's settings win over the process environment (get_settings)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from accountdesk.app import create_app
from accountdesk.core.models import OutboxMessage, SingleUseToken
from accountdesk.core.settings import get_settings
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
