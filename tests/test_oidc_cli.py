"""The provider's keys and demo through the `accountdesk` command, run as a real process against each database:
`db upgrade` makes the first signing key, `oidc rotate-keys` rolls over, `demo` registers a client whose printed
authorize URL works."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from accountdesk.oidc.models import KeyState, SigningKey
from tests.test_cli import _run


def _states(db) -> list[str]:
    with db.transaction() as session:
        return list(session.scalars(select(SigningKey.state).order_by(SigningKey.id)))


def test_upgrade_makes_the_first_key_and_rotation_keeps_two_published(db, client):
    first = _run(db, "db", "upgrade")
    assert first.returncode == 0 and "first OpenID Connect signing key" in first.stdout, first.stdout + first.stderr
    assert "signing key" not in _run(db, "db", "upgrade").stdout  # an install with a key keeps it
    assert _states(db) == [KeyState.active]
    assert _run(db, "oidc", "rotate-keys").returncode == 0
    assert _states(db) == [KeyState.retiring, KeyState.active]
    assert _run(db, "oidc", "rotate-keys").returncode == 0
    assert _states(db) == [KeyState.retired, KeyState.retiring, KeyState.active]


def test_demo_registers_a_client_and_prints_a_working_authorize_url(db, client, tmp_path):
    made = _run(db, "demo", "--no-serve", ACCOUNTDESK_ERP_FILE_DIR=str(tmp_path / "erp"))
    assert made.returncode == 0, made.stdout + made.stderr
    out = made.stdout
    assert "http://127.0.0.1:8000/s/main/.well-known/openid-configuration" in out
    authorize = re.search(r"(http://\S+/oidc/authorize\?\S+)", out).group(1)
    verifier = re.search(r"code_verifier=(\S+)", out).group(1)
    session = client.post("/api/v1/storefronts/main/sessions", json={"email": "anna@example.com",
                                                                   "password": "demo-password-2026"}).json()
    answer = client.get(authorize.removeprefix("http://127.0.0.1:8000"), follow_redirects=False,
                        headers={"Authorization": f"Bearer {session['access_token']}"})
    assert answer.status_code == 302, answer.text
    target = urlsplit(answer.headers["location"])
    code = parse_qs(target.query)["code"][0]
    tokens = client.post("/s/main/oidc/token", data={
        "grant_type": "authorization_code", "client_id": "demo-shop", "code": code, "code_verifier": verifier,
        "redirect_uri": f"{target.scheme}://{target.netloc}{target.path}"})
    assert tokens.status_code == 200 and tokens.json()["id_token"], tokens.text
