"""Two-step sign-in for staff (TOTP, RFC 6238): setup from a QR code, recovery codes shown once and kept hashed, the
code step of the console and of the API, codes that work once, the limit on wrong codes, and admins who must have
it when the operator says so."""

from __future__ import annotations

import re

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from accountdesk.app import create_app
from accountdesk.core.models import AuditEvent
from accountdesk.staff.models import StaffRecoveryCode, StaffUser
from tests import factories as f
from tests.reseller_world import console_sign_in, csrf_of

TOKENS = "/api/v1/staff/tokens"


def _post(client, url: str, data: dict[str, str], page: str):
    return client.post(url, data={"csrf_token": csrf_of(client.get(page).text), **data}, follow_redirects=False)


def _password_step(client, user):
    return _post(client, "/console/sign-in", {"email": user.email, "password": f.PASSWORD}, "/console/sign-in")


def _setup_secret(html: str) -> str:
    return re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")


def test_setup_shows_a_qr_code_and_the_key_and_turns_on_with_the_first_code(db, client):
    user = f.staff(db, "csr")
    console_sign_in(client, user)
    assert 'data-testid="totp-status">Off' in client.get("/console/account").text
    setup = client.get("/console/account/totp")
    assert setup.status_code == 200
    assert re.search(r'<svg viewBox="0 0 \d+ \d+" class="segno"><title>QR code', setup.text)
    assert not re.search(r"<script(?![^>]*\bsrc=)", setup.text)  # no inline script (the CSP forbids them)
    secret = _setup_secret(setup.text)
    sealed = re.search(r'name="enrolment" value="([^"]+)"', setup.text).group(1)
    assert secret not in sealed

    wrong = _post(client, "/console/account/totp", {"enrolment": sealed, "code": "000000"}, "/console/account")
    assert wrong.status_code == 422 and "This code does not match" in wrong.text
    assert _setup_secret(wrong.text) == secret  # the same key stays on the page
    tampered = _post(client, "/console/account/totp", {"enrolment": sealed[:-4] + "AAAA",
                                                       "code": pyotp.TOTP(secret).now()}, "/console/account")
    assert tampered.status_code == 303 and tampered.headers["location"] == "/console/account/totp"

    done = _post(client, "/console/account/totp", {"enrolment": sealed, "code": pyotp.TOTP(secret).now()},
                 "/console/account")
    assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
    codes = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", done.text)
    assert len(codes) == len(set(codes)) == 10
    account = client.get("/console/account").text
    assert 'data-testid="totp-status">On' in account and "10 recovery codes left" in account
    assert not any(code in account for code in codes)  # shown once
    with db.transaction() as session:
        stored = session.get(StaffUser, user.id)
        digests = list(session.scalars(select(StaffRecoveryCode.code_digest)))
        assert stored.totp_secret and secret not in stored.totp_secret and stored.totp_last_step is not None
        assert len(digests) == 10 and not {c.replace("-", "") for c in codes} & set(digests)
        assert "staff.totp_enabled" in set(session.scalars(select(AuditEvent.action)))


def test_the_console_asks_for_the_code_after_the_password(db, client):
    user = f.staff(db, "csr")
    secret = f.enrol_totp(db, user)
    first = _password_step(client, user)
    assert first.status_code == 303 and first.headers["location"] == "/console/sign-in/code"
    assert "accountdesk_console=" not in first.headers["set-cookie"]
    assert client.get("/console/accounts", follow_redirects=False).status_code == 303  # no session yet
    step = client.get("/console/sign-in/code")
    assert step.status_code == 200 and 'autocomplete="one-time-code"' in step.text

    wrong = _post(client, "/console/sign-in/code", {"code": "123456"}, "/console/sign-in/code")
    assert wrong.status_code == 400 and "This code is not right" in wrong.text
    code = f.totp_code(db, user, secret)
    right = _post(client, "/console/sign-in/code", {"code": code}, "/console/sign-in/code")
    assert right.status_code == 303 and right.headers["location"] == "/console/accounts"
    assert client.get("/console/accounts").status_code == 200
    assert client.get("/console/sign-in/code", follow_redirects=False).headers["location"] == "/console/sign-in"

    # the same code does not open a second session, even from another browser
    with TestClient(client.app, base_url="http://testserver") as other:
        assert _password_step(other, user).status_code == 303
        replay = _post(other, "/console/sign-in/code", {"code": code}, "/console/sign-in/code")
        assert replay.status_code == 400 and "accountdesk_console=" not in replay.headers.get("set-cookie", "")


def test_api_tokens_only_after_the_second_factor(db, client):
    user = f.staff(db, "approver")
    secret = f.enrol_totp(db, user)
    credentials = {"email": user.email, "password": f.PASSWORD}
    missing = client.post(TOKENS, json=credentials)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "totp_required"
    wrong = client.post(TOKENS, json={**credentials, "totp_code": "000000"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_totp"
    bad_password = client.post(TOKENS, json={**credentials, "password": "not-the-password", "totp_code": "1"})
    assert bad_password.json()["error"]["code"] == "invalid_credentials"
    code = f.totp_code(db, user, secret)
    issued = client.post(TOKENS, json={**credentials, "totp_code": code})
    assert issued.status_code == 201
    assert client.get("/api/v1/registrations",
                      headers={"Authorization": f"Bearer {issued.json()['access_token']}"}).status_code == 200
    replay = client.post(TOKENS, json={**credentials, "totp_code": code})
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "invalid_totp"


def _recovery_codes(db, client, user) -> list[str]:
    """Turn two-step sign-in on through the pages; the recovery codes as shown."""
    console_sign_in(client, user)
    setup = client.get("/console/account/totp").text
    sealed = re.search(r'name="enrolment" value="([^"]+)"', setup).group(1)
    done = _post(client, "/console/account/totp", {"enrolment": sealed,
                                                   "code": pyotp.TOTP(_setup_secret(setup)).now()}, "/console/account")
    return re.findall(r"<li><code>([a-z2-9-]{11})</code></li>", done.text)


def test_a_recovery_code_works_once(db, client):
    user = f.staff(db, "csr")
    codes = _recovery_codes(db, client, user)
    credentials = {"email": user.email, "password": f.PASSWORD}
    spaced = codes[3].upper().replace("-", " ")
    assert client.post(TOKENS, json={**credentials, "totp_code": spaced}).status_code == 201
    again = client.post(TOKENS, json={**credentials, "totp_code": codes[3]})
    assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_totp"
    assert "9 recovery codes left" in client.get("/console/account").text
    other = f.staff(db, "csr")
    f.enrol_totp(db, other)
    stolen = client.post(TOKENS, json={"email": other.email, "password": f.PASSWORD, "totp_code": codes[4]})
    assert stolen.status_code == 401  # codes belong to their user


def test_wrong_codes_are_limited_per_user(db, client):
    user = f.staff(db, "csr")
    secret = f.enrol_totp(db, user)
    credentials = {"email": user.email, "password": f.PASSWORD}
    statuses = [client.post(TOKENS, json={**credentials, "totp_code": f"{n:06d}"}).status_code for n in range(5)]
    assert statuses == [401] * 5
    blocked = client.post(TOKENS, json={**credentials, "totp_code": f.totp_code(db, user, secret)})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert _password_step(client, user).status_code == 303
    page = _post(client, "/console/sign-in/code", {"code": f.totp_code(db, user, secret)}, "/console/sign-in/code")
    assert page.status_code == 429 and "Too many wrong codes" in page.text


def test_turning_it_off_needs_a_code_and_an_admin_can_remove_it(db, client):
    user = f.staff(db, "csr")
    secret = f.enrol_totp(db, user)
    admin = f.token(client, f.staff(db, "admin"))
    issued = client.post(TOKENS, json={"email": user.email, "password": f.PASSWORD,
                                       "totp_code": f.totp_code(db, user, secret)})
    token = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert client.delete(f"/api/v1/staff/users/{user.id}/totp", headers=admin).status_code == 204
    assert client.get("/api/v1/accounts", headers=token).status_code == 401  # signed out everywhere
    assert client.post(TOKENS, json={"email": user.email, "password": f.PASSWORD}).status_code == 201

    secret = f.enrol_totp(db, user)
    console_sign_in_with_code(client, db, user, secret)
    refused = _post(client, "/console/account/totp/disable", {"code": "000000"}, "/console/account")
    assert refused.status_code == 422 and "This code is not right" in refused.text
    off = _post(client, "/console/account/totp/disable", {"code": f.totp_code(db, user, secret)}, "/console/account")
    assert off.status_code == 303
    assert 'data-testid="totp-status">Off' in client.get("/console/account").text
    with db.transaction() as session:
        assert session.scalars(select(StaffRecoveryCode)).all() == []
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == user.id)))
        assert {"staff.totp_enabled", "staff.totp_reset", "staff.totp_disabled"} <= actions


def console_sign_in_with_code(client, db, user, secret: str) -> None:
    assert _password_step(client, user).headers["location"] == "/console/sign-in/code"
    done = _post(client, "/console/sign-in/code", {"code": f.totp_code(db, user, secret)}, "/console/sign-in/code")
    assert done.status_code == 303, done.text


@pytest.fixture
def strict_client(settings, db):
    """The app with ACCOUNTDESK_STAFF_TOTP_REQUIRED_FOR_ADMINS=true."""
    strict = settings.model_copy(update={"staff_totp_required_for_admins": True})
    with TestClient(create_app(strict, db), base_url="http://testserver") as client:
        yield client


def test_admins_must_set_it_up_when_the_operator_requires_it(db, strict_client):
    client = strict_client
    admin, csr = f.staff(db, "admin"), f.staff(db, "csr")
    assert client.post(TOKENS, json={"email": csr.email, "password": f.PASSWORD}).status_code == 201
    refused = client.post(TOKENS, json={"email": admin.email, "password": f.PASSWORD})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "totp_enrolment_required"

    signed_in = _password_step(client, admin)
    assert signed_in.status_code == 303
    for path in ("/console/accounts", "/console/staff", "/console/account", f"/console/staff/{csr.id}"):
        assert client.get(path, follow_redirects=False).headers["location"] == "/console/account/totp", path
    blocked = _post(client, f"/console/staff/{csr.id}/status", {"active": "false"}, "/console/sign-in")
    assert blocked.status_code == 303 and blocked.headers["location"] == "/console/account/totp"
    with db.transaction() as session:
        assert session.get(StaffUser, csr.id).active
    setup = client.get("/console/account/totp")
    assert setup.status_code == 200 and "Administrators sign in with two steps here" in setup.text
    sealed = re.search(r'name="enrolment" value="([^"]+)"', setup.text).group(1)
    secret = _setup_secret(setup.text)
    assert _post(client, "/console/account/totp", {"enrolment": sealed, "code": pyotp.TOTP(secret).now()},
                 "/console/sign-in").status_code == 200
    assert client.get("/console/staff").status_code == 200
    off = _post(client, "/console/account/totp/disable", {"code": "000000"}, "/console/account")
    assert off.status_code == 403  # admins keep it
    token = client.post(TOKENS, json={"email": admin.email, "password": f.PASSWORD,
                                      "totp_code": f.totp_code(db, admin, secret)})
    assert token.status_code == 201
