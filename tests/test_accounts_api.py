"""Accounts API: search, create with mandatory fields, Active toggle, attributes, addresses, history, roles."""

from __future__ import annotations

from tests import factories as f


def test_staff_token_and_roles(db, client):
    admin = f.staff(db, "admin")
    assert client.get("/api/v1/accounts").status_code == 401
    assert client.get("/api/v1/accounts").json()["error"]["code"] == "not_authenticated"
    bad = client.post("/api/v1/staff/tokens", json={"email": admin.email, "password": "wrong-password-123"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_credentials"
    unknown = client.post("/api/v1/staff/tokens", json={"email": "nobody@example.com", "password": "whatever-123456"})
    assert unknown.status_code == 401 and unknown.json() == bad.json()
    headers = f.token(client, admin)
    assert client.get("/api/v1/accounts", headers=headers).status_code == 200
    approver = f.token(client, f.staff(db, "approver"))
    denied = client.post("/api/v1/accounts", json={"name": "X"}, headers=approver)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "role_forbidden"
    assert client.delete("/api/v1/staff/tokens/current", headers=headers).status_code == 204
    assert client.get("/api/v1/accounts", headers=headers).status_code == 401


def test_create_search_update_and_history(db, client):
    headers = f.token(client, f.staff(db, "csr"))
    body = {"name": "Zephyr Bikes GmbH", "email": "Sales@Zephyr.example", "phone": "+49 30 901820",
            "billing_address": {"line1": "Hauptstr. 1", "city": "Köln", "postcode": "50667", "country": "de",
                                "region": "NW"}}
    created = client.post("/api/v1/accounts", json=body, headers=headers)
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["number"].startswith("W") and account["email"] == "sales@zephyr.example"
    assert account["addresses"][0]["region"] == "DE-NW" and account["addresses"][0]["is_billing"]
    f.account(db, name="Other Company")
    for q in ("zephyr", "ZEPH", "köln", account["number"].lower(), "sales@zephyr", "901820"):
        found = client.get("/api/v1/accounts", params={"q": q}, headers=headers).json()
        assert [a["id"] for a in found["items"]] == [account["id"]], q
    assert client.get("/api/v1/accounts", params={"q": "zephyr nomatch"}, headers=headers).json()["total"] == 0
    assert client.get("/api/v1/accounts", params={"q": "%"}, headers=headers).json()["total"] == 0

    patched = client.patch(f"/api/v1/accounts/{account['id']}", json={"status": "inactive", "customer_group": "vip"},
                           headers=headers)
    assert patched.status_code == 200 and patched.json()["status"] == "inactive"
    inactive = client.get("/api/v1/accounts", params={"status": "inactive"}, headers=headers).json()
    assert [a["id"] for a in inactive["items"]] == [account["id"]]
    events = client.get(f"/api/v1/accounts/{account['id']}/events", headers=headers).json()
    assert [e["action"] for e in events] == ["account.updated", "account.created"]
    assert events[0]["changes"]["status"] == ["active", "inactive"]
    assert events[0]["actor_label"].startswith("csr")


def test_bad_input_is_422_and_changes_nothing(db, client):
    headers = f.token(client, f.staff(db, "admin"))
    cases = [
        {"name": ""},
        {"name": "X", "email": "not-an-email"},
        {"name": "X", "currency": "XXY"},
        {"name": "X", "billing_day": 31},
        {"name": "X", "billing_address": {"line1": "a", "city": "b", "postcode": "1011", "country": "DE"}},
        {"name": "X",
         "billing_address": {"line1": "a", "city": "b", "postcode": "10115", "country": "DE", "region": "TX"}},
        {"name": "X", "billing_address": {"line1": "a", "city": "b", "country": "ZZ"}},
    ]
    for body in cases:
        response = client.post("/api/v1/accounts", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "validation_failed" and response.json()["error"]["fields"]
    raw = client.post("/api/v1/accounts", content=b"{nope", headers={**headers, "content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
    assert client.get("/api/v1/accounts", headers=headers).json()["total"] == 0
    assert client.get("/api/v1/accounts/999999", headers=headers).status_code == 404
    unknown_id = client.patch("/api/v1/accounts/999999", json={"name": "Y"}, headers=headers)
    assert unknown_id.status_code == 404, unknown_id.text
    account = client.post("/api/v1/accounts", json={"name": "X"}, headers=headers).json()
    unknown_field = client.patch(f"/api/v1/accounts/{account['id']}", json={"bogus": 1}, headers=headers)
    assert unknown_field.status_code == 422, unknown_field.text
    assert list(unknown_field.json()["error"]["fields"]) == ["bogus"]


def test_duplicate_number_is_409_with_field(db, client):
    headers = f.token(client, f.staff(db, "admin"))
    assert client.post("/api/v1/accounts", json={"name": "A", "number": "C100"}, headers=headers).status_code == 201
    dup = client.post("/api/v1/accounts", json={"name": "B", "number": "C100"}, headers=headers)
    assert dup.status_code == 409
    assert dup.json()["error"]["fields"] == {"number": "This account number is already taken."}


def test_custom_attributes_are_typed(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    csr = f.token(client, f.staff(db, "csr"))
    tier = {"key": "tier", "label": "Tier", "type": "choice", "choices": ["gold", "silver"]}
    assert client.post("/api/v1/custom-attributes", json=tier, headers=csr).status_code == 403
    for definition in (tier,
                       {"key": "founded", "label": "Founded", "type": "date"},
                       {"key": "seats", "label": "Seats", "type": "number", "required": True},
                       {"key": "vip", "label": "VIP", "type": "boolean"}):
        assert client.post("/api/v1/custom-attributes", json=definition, headers=admin).status_code == 201
    missing = client.post("/api/v1/accounts", json={"name": "A"}, headers=csr)
    assert missing.status_code == 422 and "attributes.seats" in missing.json()["error"]["fields"]
    wrong = client.post("/api/v1/accounts", json={"name": "A", "attributes": {"seats": "many", "tier": "bronze",
                                                                              "founded": "31/12/2020", "vip": "maybe"}},
                        headers=csr)
    assert set(wrong.json()["error"]["fields"]) == {"attributes.seats", "attributes.tier", "attributes.founded",
                                                    "attributes.vip"}
    ok = client.post("/api/v1/accounts", json={"name": "A", "attributes": {"seats": "12", "tier": "gold",
                                                                           "founded": "2020-12-31", "vip": True}},
                     headers=csr)
    assert ok.status_code == 201, ok.text
    assert ok.json()["attributes"] == {"seats": 12, "tier": "gold", "founded": "2020-12-31", "vip": True}
    changed = client.patch(f"/api/v1/accounts/{ok.json()['id']}", json={"attributes": {"tier": "silver"}}, headers=csr)
    assert changed.json()["attributes"]["tier"] == "silver"
    events = client.get(f"/api/v1/accounts/{ok.json()['id']}/events", headers=csr).json()
    assert events[0]["changes"] == {"attributes.tier": ["gold", "silver"]}


def test_address_book(db, client):
    headers = f.token(client, f.staff(db, "csr"))
    account = f.account(db, name="Addr Co")
    url = f"/api/v1/accounts/{account.id}/addresses"
    added = client.post(url, json={"label": "Warehouse", "line1": "2 Dock St", "city": "Leeds", "postcode": "LS1 4AP",
                                   "country": "GB", "is_shipping": True}, headers=headers)
    assert added.status_code == 201
    address_id = added.json()["id"]
    moved = client.put(f"{url}/{address_id}", json={"label": "Warehouse", "line1": "3 Dock St", "city": "York",
                                                     "postcode": "YO1 7HH", "country": "GB", "is_billing": True},
                       headers=headers)
    assert moved.status_code == 200
    account_json = client.get(f"/api/v1/accounts/{account.id}", headers=headers).json()
    billing = [a for a in account_json["addresses"] if a["is_billing"]]
    assert [a["city"] for a in billing] == ["York"]
    assert client.get("/api/v1/accounts", params={"q": "york"}, headers=headers).json()["total"] == 1
    assert client.delete(f"{url}/{address_id}", headers=headers).status_code == 204
    assert client.delete(f"{url}/{address_id}", headers=headers).status_code == 404
    actions = [e["action"] for e in client.get(f"/api/v1/accounts/{account.id}/events", headers=headers).json()]
    assert actions[:3] == ["address.deleted", "address.updated", "address.added"]


def test_healthz(db, client):
    assert client.get("/healthz").json()["status"] == "ok"


def test_search_beyond_the_match_cap(db, client, monkeypatch):
    """A common term with more matches than the cap pages through the name order and says the total is a floor."""
    from accountdesk.accounts import service

    monkeypatch.setattr(service, "MATCH_CAP", 5)
    headers = f.token(client, f.staff(db, "admin"))
    for n in range(8):
        f.account(db, name=f"Common Name {n}")
    f.account(db, name="Rare Common Thing")
    many = client.get("/api/v1/accounts", params={"q": "common", "per_page": 3, "page": 2}, headers=headers).json()
    assert many["total"] == 5 and many["total_is_exact"] is False
    assert [a["name"] for a in many["items"]] == ["Common Name 3", "Common Name 4", "Common Name 5"]
    few = client.get("/api/v1/accounts", params={"q": "common rare", "per_page": 3}, headers=headers).json()
    assert few["total"] == 1 and few["total_is_exact"] is True and few["items"][0]["name"] == "Rare Common Thing"
    listed = client.get("/api/v1/accounts", params={"per_page": 3, "sort": "-name"}, headers=headers).json()
    assert listed["total_is_exact"] is False and listed["items"][0]["name"] == "Rare Common Thing"


def test_search_words_with_marks_find_exactly_what_was_typed(db, client):
    """A word holding "@", "." or "-" (on PostgreSQL looked up in the index of the search text with those marks
    written as letters) finds the accounts whose text holds it as typed, never one holding those letters instead."""
    headers = f.token(client, f.staff(db, "csr"))
    office = f.account(db, name="Bau Werk GmbH", email="office@bau-werk.example")
    lookalike = f.account(db, name="Office\u0250bau\u0266werk Ltd")  # the index's letters for "@" and "-", typed
    other = f.account(db, name="Office Bau Werk AG", email="info@bauwerk.example")

    def found(q: str) -> list[int]:
        return [a["id"] for a in client.get("/api/v1/accounts", params={"q": q}, headers=headers).json()["items"]]

    assert found("ffice@bau-w") == [office.id]
    assert found("E@BAU-WERK.EX") == [office.id]
    assert found("werk bau-werk") == [office.id]
    assert found("\u0250bau\u0266w") == [lookalike.id]
    assert sorted(found("bau")) == sorted([office.id, lookalike.id, other.id])
    assert found("o@bau-werk.example.") == []


def test_an_address_needs_a_state_where_the_country_needs_one(db, client):
    """The rule registration and resellers follow too (core.validation.address_region)."""
    headers = f.token(client, f.staff(db, "csr"))
    us = {"line1": "1 Main Street", "city": "Springfield", "postcode": "62701", "country": "US"}
    missing = client.post("/api/v1/accounts", json={"name": "Prairie Supply", "billing_address": us},
                          headers=headers)
    assert missing.status_code == 422
    assert missing.json()["error"]["fields"] == {"billing_address.region": "Choose a state or province."}
    created = client.post("/api/v1/accounts", headers=headers,
                          json={"name": "Prairie Supply", "billing_address": {**us, "region": "IL"}})
    assert created.status_code == 201 and created.json()["addresses"][0]["region"] == "US-IL"
    book = f"/api/v1/accounts/{created.json()['id']}/addresses"
    assert client.post(book, json=us, headers=headers).status_code == 422
    # Hong Kong's addresses need a region, but ISO 3166-2 offers none to choose: not required
    hong_kong = {"line1": "1 Queen's Road Central", "city": "Central", "country": "HK"}
    assert client.post(book, json=hong_kong, headers=headers).status_code == 201


STOREFRONT_DEFAULTS = {"default_currency": "GBP", "default_payment_terms": "NET45", "default_customer_group": "trade",
                       "default_price_group": "P2", "default_rep_code": "R7", "default_language": "de",
                       "default_billing_day": 15}
TAKEN = {"currency": "GBP", "payment_terms": "NET45", "customer_group": "trade", "price_group": "P2",
         "rep_code": "R7", "preferred_language": "de", "billing_day": 15}


def test_staff_created_account_takes_its_storefronts_defaults_under_what_staff_typed(db, client):
    store = f.storefront(db, **STOREFRONT_DEFAULTS)
    headers = f.token(client, f.staff(db, "csr"))
    created = client.post("/api/v1/accounts", json={"name": "Defaults Ltd", "storefront_id": store.id},
                          headers=headers)
    assert created.status_code == 201, created.text
    assert {key: created.json()[key] for key in TAKEN} == TAKEN
    typed = client.post("/api/v1/accounts", json={"name": "Typed Ltd", "storefront_id": store.id, "currency": "usd",
                                                   "customer_group": "retail"}, headers=headers).json()
    assert (typed["currency"], typed["customer_group"], typed["payment_terms"]) == ("USD", "retail", "NET45")
    plain = client.post("/api/v1/accounts", json={"name": "Plain Ltd"}, headers=headers).json()
    assert plain["currency"] != "GBP" and plain["customer_group"] == ""
