"""Contacts API: mandatory fields, one e-mail on several accounts, activation, reset link, manual password."""

from __future__ import annotations

from tests import factories as f
from tests.mailbox import deliver_and_read, links, text_of


def _url(account_id: int) -> str:
    return f"/api/v1/accounts/{account_id}/contacts"


def test_create_requires_mandatory_fields(db, client):
    headers = f.token(client, f.staff(db, "csr"))
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    missing = client.post(_url(account.id), json={"first_name": "Ada"}, headers=headers)
    assert missing.status_code == 422
    assert {"last_name", "email", "phone"} <= set(missing.json()["error"]["fields"])
    bad_phone = client.post(_url(account.id), json={"first_name": "Ada", "last_name": "L", "email": "ada@example.com",
                                                    "phone": "12"}, headers=headers)
    assert bad_phone.status_code == 422 and "phone" in bad_phone.json()["error"]["fields"]
    assert client.get(_url(account.id), headers=headers).json() == []


def test_same_email_on_two_accounts_but_not_twice_on_one(db, client):
    headers = f.token(client, f.staff(db, "csr"))
    store = f.storefront(db)
    first, second = f.account(db, storefront_id=store.id), f.account(db, storefront_id=store.id)
    body = {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.com", "phone": "(217) 555-0142",
            "language": "fr", "date_format": "YYYY-MM-DD"}
    one = client.post(_url(first.id), json=body, headers=headers)
    assert one.status_code == 201, one.text
    assert one.json()["email"] == "ada@example.com" and one.json()["phone"] == "+12175550142"
    assert one.json()["status"] == "active" and one.json()["has_password"] is False
    assert client.post(_url(second.id), json=body, headers=headers).status_code == 201
    again = client.post(_url(first.id), json=body, headers=headers)
    assert again.status_code == 409 and "email" in again.json()["error"]["fields"]
    found = client.get("/api/v1/accounts", params={"q": "ada@example"}, headers=headers).json()
    assert {a["id"] for a in found["items"]} == {first.id, second.id}


def test_deactivate_activate_and_history(db, client):
    headers = f.token(client, f.staff(db, "admin"))
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    contact = f.contact(db, account, store)
    url = f"{_url(account.id)}/{contact.id}"
    assert client.post(f"{url}/deactivate", headers=headers).json()["status"] == "deactivated"
    assert client.post(f"{url}/activate", headers=headers).json()["status"] == "active"
    patched = client.patch(url, json={"last_name": "Renamed", "language": "de"}, headers=headers)
    assert patched.json()["last_name"] == "Renamed"
    assert client.patch(url, json={"status": "active"}, headers=headers).status_code == 422
    actions = [e["action"] for e in client.get(f"/api/v1/accounts/{account.id}/events", headers=headers).json()]
    assert actions[:3] == ["contact.updated", "contact.activated", "contact.deactivated"]
    other = f.account(db)
    assert client.get(f"{_url(other.id)}/{contact.id}", headers=headers).status_code == 404


def test_reset_link_is_mailed_single_use(db, client, mail_dir):
    headers = f.token(client, f.staff(db, "csr"))
    store = f.storefront(db, name="Kiosk")
    account = f.account(db, storefront_id=store.id)
    contact = f.contact(db, account, store, language="de")
    response = client.post(f"{_url(account.id)}/{contact.id}/password-reset", headers=headers)
    assert response.status_code == 202
    [message] = deliver_and_read(db, mail_dir)
    assert message["To"] == contact.email and message["Content-Language"] == "de"
    [link] = [url for url in links(message) if "/password/reset" in url]
    assert link.startswith(f"http://127.0.0.1:8000/s/{store.slug}/password/reset?token=")
    assert "Kiosk" in text_of(message)


def test_manual_password_obeys_storefront(db, client):
    headers = f.token(client, f.staff(db, "csr"))
    closed = f.storefront(db)
    opened = f.storefront(db, allow_manual_password=True, password_require_character_classes=True)
    a1, a2 = f.account(db, storefront_id=closed.id), f.account(db, storefront_id=opened.id)
    c1, c2 = f.contact(db, a1, closed, password=None), f.contact(db, a2, opened, password=None)
    refused = client.put(f"{_url(a1.id)}/{c1.id}/password", json={"password": "Sturdy-Pass-2026!"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "manual_password_disabled"
    weak = client.put(f"{_url(a2.id)}/{c2.id}/password", json={"password": "alllowercaseletters"}, headers=headers)
    assert weak.status_code == 422
    assert "capital letter" in weak.json()["error"]["fields"]["password"]
    common = client.put(f"{_url(a2.id)}/{c2.id}/password", json={"password": "Password123!"}, headers=headers)
    assert common.status_code == 422
    ok = client.put(f"{_url(a2.id)}/{c2.id}/password", json={"password": "Sturdy-Pass-2026!"}, headers=headers)
    assert ok.status_code == 204
    assert client.get(f"{_url(a2.id)}/{c2.id}", headers=headers).json()["has_password"] is True


def test_staff_reactivate_an_expired_login(db, client):
    headers = f.token(client, f.staff(db, "csr"))
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    contact = f.contact(db, account, store, status="expired")
    reactivated = client.post(f"{_url(account.id)}/{contact.id}/activate", headers=headers)
    assert reactivated.json()["status"] == "active"


def test_erp_code_is_not_patched_directly(db, client):
    headers = f.token(client, f.staff(db, "admin"))
    account = f.account(db)
    refused = client.patch(f"/api/v1/accounts/{account.id}", json={"erp_code": "C1"}, headers=headers)
    assert refused.status_code == 422 and "erp_code" in refused.json()["error"]["fields"]
    assert client.get(f"/api/v1/accounts/{account.id}", headers=headers).json()["erp_code"] is None
