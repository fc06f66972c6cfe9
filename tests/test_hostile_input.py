"""Hostile input never ends in a 500: ids beyond BIGINT and characters no database or mail header accepts are
refused at the edge with the one JSON error shape (API) or a readable error (pages), on SQLite and PostgreSQL."""

from __future__ import annotations

from tests import factories as f
from tests.reseller_world import console_sign_in

TOO_BIG = str(2**64)


def test_ids_beyond_bigint_are_refused_in_path_query_and_body(db, client):
    headers = f.token(client, f.staff(db, "admin"))
    account = f.account(db)
    for path in (f"/api/v1/accounts/{TOO_BIG}", f"/api/v1/accounts/{account.id}/contacts/{TOO_BIG}",
                 f"/api/v1/resellers/{TOO_BIG}/customers", "/api/v1/accounts/0"):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["code"] == "validation_failed"
    listed = client.get("/api/v1/registrations", params={"storefront": TOO_BIG}, headers=headers)
    assert listed.status_code == 422 and "storefront" in listed.json()["error"]["fields"]
    moved = client.patch(f"/api/v1/accounts/{account.id}", json={"storefront_id": 2**64}, headers=headers)
    assert moved.status_code == 422 and "storefront_id" in moved.json()["error"]["fields"]


def test_console_pages_refuse_ids_beyond_bigint_readably(db, client):
    console_sign_in(client, f.staff(db, "admin"))
    record = client.get(f"/console/accounts/{TOO_BIG}")
    assert record.status_code == 400 and 'data-testid="error-page"' in record.text
    for storefront in (TOO_BIG, "²"):  # both look like digits to str.isdigit()
        queue = client.get("/console/approvals", params={"storefront": storefront})
        assert queue.status_code == 200, queue.text

