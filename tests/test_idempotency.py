"""Idempotency-Key: a creating request retried after a lost answer changes nothing twice (API header and page forms),
on SQLite and PostgreSQL, in process, over real HTTP and across a real `accountdesk serve` process killed right after
its commit."""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import func, select, text, update

from accountdesk.accounts.models import Account, Address, Invoice, SavedPaymentMethod
from accountdesk.contacts.models import Contact
from accountdesk.core import idempotency
from accountdesk.core.db import utcnow
from accountdesk.core.errors import AppError
from accountdesk.core.models import AuditEvent, IdempotencyKey, OutboxMessage
from accountdesk.core.outbox import Worker
from tests import factories as f
from tests.conftest import clean_environment, free_port
from tests.reseller_world import console_sign_in, csrf_of

BIN = Path(sys.executable).parent / "accountdesk"
ACCOUNT = {"name": "Retry Tools GmbH", "email": "buy@retry.example"}


def accounts(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Account))


def keys(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(IdempotencyKey))


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def test_same_key_twice_creates_once_and_answers_alike(db, client):
    staff = f.token(client, f.staff(db, "csr"))
    first = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "k-1"))
    # the same JSON in another spelling is the same request
    again = client.post("/api/v1/accounts", content=b'{"email": "buy@retry.example",  "name": "Retry Tools GmbH"}',
                        headers={**keyed(staff, '"k-1"'), "Content-Type": "application/json"})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert accounts(db) == 1
    # without a key nothing changes: each request is its own
    assert client.post("/api/v1/accounts", json=ACCOUNT, headers=staff).status_code == 201
    assert accounts(db) == 2


def test_same_key_with_another_request_is_refused(db, client):
    staff = f.token(client, f.staff(db, "csr"))
    assert client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "k-2")).status_code == 201
    other = client.post("/api/v1/accounts", json={**ACCOUNT, "name": "Other"}, headers=keyed(staff, "k-2"))
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    account_id = client.get("/api/v1/accounts", headers=staff).json()["items"][0]["id"]
    address = {"line1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "DE"}
    elsewhere = client.post(f"/api/v1/accounts/{account_id}/addresses", json=address, headers=keyed(staff, "k-2"))
    assert elsewhere.status_code == 422 and elsewhere.json()["error"]["code"] == "idempotency_key_reused"
    assert accounts(db) == 1


def test_a_repeat_of_an_operation_checked_by_its_store_runs_but_changes_nothing(db, client):
    """Account creation checks its key when it stores its answer: a repeat runs again, is rolled back and gets the
    first answer, also where its own run is refused (the number it gives is taken by then)."""
    staff = f.token(client, f.staff(db, "csr"))
    body = {**ACCOUNT, "number": "RETRY-1"}
    first = client.post("/api/v1/accounts", json=body, headers=keyed(staff, "numbered"))
    again = client.post("/api/v1/accounts", json=body, headers=keyed(staff, "numbered"))
    assert first.status_code == again.status_code == 201 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/api/v1/accounts", json={**ACCOUNT, "name": "Other"}, headers=keyed(staff, "numbered"))
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert accounts(db) == 1 and keys(db) == 1
    with db.transaction() as session:  # the repeats' history went with their changes
        assert session.scalar(select(func.count()).where(AuditEvent.action == "account.created")) == 1


# The other creations checked by storing their answer (IDEMPOTENT_IN_TRANSACTION): path under the account, body, a
# changed body, the rows and the history entry one creation makes.
IN_TRANSACTION = {
    "address": ("addresses", {"line1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "DE"},
                {"city": "Hamburg"}, Address, "address.added"),
    "contact": ("contacts", {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@retry.example",
                             "phone": "+12175550142"},
                {"first_name": "Grace", "email": "grace@retry.example"}, Contact, "contact.created"),
    "invoice": ("invoices", {"number": "INV-RETRY-1", "issued_on": "2026-01-15", "total": "120.00"},
                {"number": "INV-RETRY-2", "total": "99.00"}, Invoice, "invoice.recorded"),
    "payment method": ("payment-methods", {"provider": "stripe", "provider_token_id": "pm_retry", "brand": "visa",
                                           "last4": "4242", "expiry_month": 12, "expiry_year": utcnow().year + 2},
                       {"provider_token_id": "pm_other", "last4": "1881"}, SavedPaymentMethod, "payment_method.added"),
}


def _count(db, model, action: str) -> tuple[int, int]:
    with db.transaction() as session:
        return (session.scalar(select(func.count()).select_from(model)),
                session.scalar(select(func.count()).where(AuditEvent.action == action)))


@pytest.mark.parametrize("operation", list(IN_TRANSACTION))
def test_other_creations_checked_by_their_store_change_once(db, client, operation):
    """Adding an address, a contact, an invoice or a payment method also checks its key when it stores its answer:
    the same key again runs, is rolled back and gets the first answer; another body is 422; another caller's key
    is its own."""
    path, body, changed, model, action = IN_TRANSACTION[operation]
    account = f.account(db, storefront_id=f.storefront(db).id)
    url = f"/api/v1/accounts/{account.id}/{path}"
    rows, history = _count(db, model, action)
    user = f.staff(db, "csr")
    staff = f.token(client, user)
    first = client.post(url, json=body, headers=keyed(staff, "in-tx"))
    again = client.post(url, json=body, headers=keyed(staff, "in-tx"))
    assert first.status_code == again.status_code == 201, first.text
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    other = client.post(url, json={**body, **changed}, headers=keyed(staff, "in-tx"))
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert _count(db, model, action) == (rows + 1, history + 1)
    mine = client.post(url, json={**body, **changed}, headers=keyed(f.token(client, f.staff(db, "csr")), "in-tx"))
    assert mine.status_code == 201 and "Idempotent-Replayed" not in mine.headers
    assert _count(db, model, action) == (rows + 2, history + 2)


def test_a_key_belongs_to_its_caller(db, client):
    one, two = f.token(client, f.staff(db, "csr")), f.token(client, f.staff(db, "csr"))
    a = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(one, "shared"))
    b = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(two, "shared"))
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    assert "Idempotent-Replayed" not in b.headers
    # a second token of the same staff user is the same caller
    user = f.staff(db, "csr")
    first = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(f.token(client, user), "mine"))
    second = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(f.token(client, user), "mine"))
    assert second.headers.get("Idempotent-Replayed") == "true" and second.json() == first.json()
    assert accounts(db) == 3


def test_an_expired_key_is_a_new_request_and_the_worker_forgets_it(db, client):
    staff = f.token(client, f.staff(db, "csr"))
    assert client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "old")).status_code == 201
    with db.transaction() as session:
        session.execute(update(IdempotencyKey).values(expires_at=utcnow() - timedelta(seconds=1)))
    again = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "old"))
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert accounts(db) == 2
    with db.transaction() as session:
        session.execute(update(IdempotencyKey).values(expires_at=utcnow() - timedelta(seconds=1)))
    worker = Worker(db, {}, poll_seconds=0.05)  # the outbox worker's periodic work forgets it
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while keys(db) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert keys(db) == 0


def test_final_refusals_are_kept_and_others_let_the_retry_run(db, client):
    staff = f.token(client, f.staff(db, "csr"))
    address = {"line1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "DE"}
    refused = client.post("/api/v1/accounts/999999/addresses", json=address, headers=keyed(staff, "gone"))
    assert refused.status_code == 404
    replay = client.post("/api/v1/accounts/999999/addresses", json=address, headers=keyed(staff, "gone"))
    assert replay.status_code == 404 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == refused.content
    # a body the schema refuses never reached the operation: nothing is kept, the corrected request may follow
    invalid = client.post("/api/v1/accounts", json={"name": "X", "currency": "XXY"}, headers=keyed(staff, "fix"))
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "validation_failed"
    assert client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "fix")).status_code == 201
    # not signed in: 401 is not final, the same key with a token then runs
    anonymous = client.post("/api/v1/accounts", json=ACCOUNT, headers={"Idempotency-Key": "late"})
    assert anonymous.status_code == 401
    assert client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "late")).status_code == 201
    bad_key = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "x" * 256))
    assert bad_key.status_code == 400 and bad_key.json()["error"]["code"] == "invalid_idempotency_key"
    assert accounts(db) == 2
    # a signed-out token gets no stored answer
    assert client.delete("/api/v1/staff/tokens/current", headers=staff).status_code == 204
    signed_out = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "late"))
    assert signed_out.status_code == 401 and "Idempotent-Replayed" not in signed_out.headers


def test_a_key_in_use_is_409_until_its_process_is_taken_for_dead(db, client):
    user = f.staff(db, "csr")
    staff = f.token(client, user)
    printed = idempotency.fingerprint(client.app.state.settings.secret_key, "POST", "/api/v1/accounts",
                                      b'{"name":"Retry Tools GmbH","email":"buy@retry.example"}', "application/json")
    held = idempotency.claim(db, lambda _conn: f"staff:{user.id}", "busy", printed, 24)  # a request running
    assert isinstance(held, idempotency.Claim)
    busy = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "busy"))
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "idempotency_key_in_use"
    assert 1 <= int(busy.headers["Retry-After"]) <= 5
    with db.transaction() as session:  # the process that held it died a while ago
        session.execute(update(IdempotencyKey).values(locked_at=utcnow() - idempotency.LOCK))
    taken = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "busy"))
    assert taken.status_code == 201 and accounts(db) == 1
    # had the first one still been alive, it could not store its answer over the new one
    with db.transaction() as session, pytest.raises(AppError) as refused:
        idempotency.store(session, held, 201, {}, b"{}")
    assert refused.value.code == "idempotency_key_in_use"
    if db.is_postgresql:  # an API request running there holds the key's advisory lock in its own transaction
        lock = {"lock": idempotency.advisory_lock_id(f"staff:{user.id}", "running")}
        with db.transaction() as running:
            running.execute(text("SELECT pg_advisory_xact_lock(:lock)"), lock)
            busy = client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "running"))
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "idempotency_key_in_use"
        assert busy.headers["Retry-After"] == "1" and accounts(db) == 1
        assert client.post("/api/v1/accounts", json=ACCOUNT, headers=keyed(staff, "running")).status_code == 201
        # one that checked the key just before another committed it cannot store its answer (nor its change)
        late = idempotency.Held(f"staff:{user.id}", "running", printed, 24)
        with db.transaction() as session, pytest.raises(AppError) as refused:
            idempotency.store(session, late, 201, {}, b"{}")
        assert refused.value.code == "idempotency_key_in_use" and accounts(db) == 2


@pytest.mark.parametrize("operation", ["account", "address"])
def test_twenty_at_once_with_one_key_make_one_change(db, live_server, operation):
    account = f.account(db) if operation == "address" else None
    url, body = ("/api/v1/accounts", ACCOUNT) if account is None else \
        (f"/api/v1/accounts/{account.id}/addresses", IN_TRANSACTION["address"][1])
    before = _count(db, Address, "address.added")[0]
    with httpx.Client(base_url=live_server, timeout=60) as http:
        token = http.post("/api/v1/staff/tokens", json={"email": f.staff(db, "csr").email, "password": f.PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Idempotency-Key": "twenty"}

        def send(_: int) -> httpx.Response:
            return http.post(url, json=body, headers=headers)

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(send, range(20)))
    assert accounts(db) == 1 and keys(db) == 1
    assert _count(db, Address, "address.added")[0] == before + (account is not None)
    created = [a for a in answers if a.status_code == 201]
    assert created and all(a.content == created[0].content for a in created)
    assert sum("Idempotent-Replayed" not in a.headers for a in created) == 1
    assert all(a.json()["error"]["code"] == "idempotency_key_in_use" and a.headers["Retry-After"]
               for a in answers if a.status_code != 201)


def test_an_anonymous_registration_retried_registers_once_and_mails_once(db, client):
    store = f.storefront(db, name="Retry Shop")
    body = {"company_name": "Acme Widgets Ltd", "first_name": "Ada", "last_name": "Lovelace",
            "email": "ada@example.com", "phone": "(217) 555-0142", "password": "Plum-Tiger-Cloud-9",
            "billing_address": {"line1": "1 Main Street", "city": "Springfield", "region": "IL",
                                "postcode": "62701", "country": "us"}}
    url = f"/api/v1/storefronts/{store.slug}/registrations"
    first = client.post(url, json=body, headers={"Idempotency-Key": "reg-1"})
    again = client.post(url, json=body, headers={"Idempotency-Key": "reg-1"})
    assert first.status_code == again.status_code == 202, first.text
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert "set-cookie" not in {k.lower() for k in again.headers}
    assert accounts(db) == 1
    with db.transaction() as session:  # one message: no "someone tried to register with your e-mail" for a retry
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    # another visitor with the same key but another body is refused, and learns nothing of the first answer
    other = client.post(url, json={**body, "email": "eve@example.com"}, headers={"Idempotency-Key": "reg-1"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_operations_document_the_header_and_its_answers(client):
    schema = client.get("/openapi.json").json()
    for path, method in [("/api/v1/accounts", "post"), ("/api/v1/storefronts/{slug}/registrations", "post"),
                         ("/api/v1/resellers/{reseller_id}/orders/{order_id}/accept", "post"),
                         ("/api/v1/erp/pushes/{message_id}/retry", "post")]:
        operation = schema["paths"][path][method]
        assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in operation["parameters"]), path
        assert "idempotency_key_in_use" in operation["responses"]["409"]["description"]
        assert "idempotency_key_reused" in operation["responses"]["422"]["description"]
    assert not any(p.get("name") == "Idempotency-Key" for p in schema["paths"]["/api/v1/accounts"]["get"].get(
        "parameters", []))


def _new_account_form(http: httpx.Client, company: str = "Double Click Ltd") -> dict[str, str]:
    page = http.get("/console/accounts/new")
    key = re.search(r'name="form_key" value="([^"]+)"', page.text).group(1)
    return {"csrf_token": csrf_of(page.text), "form_key": key, "company_name": company, "active": "on",
            "first_name": "Ada", "last_name": "Lovelace", "email": f"ada@{company.split()[0].lower()}.example",
            "phone": "+12175550142", "account": "new",
            "billing_address.line1": "5 Elm Road", "billing_address.city": "Springfield",
            "billing_address.postcode": "62701", "billing_address.country": "US", "billing_address.region": "IL"}


def test_a_console_form_sent_twice_creates_once(db, live_server):
    f.storefront(db)
    with httpx.Client(base_url=live_server, timeout=60) as http:
        console_sign_in(http, f.staff(db, "csr"))
        form = _new_account_form(http)
        with ThreadPoolExecutor(2) as pool:  # a double click: both POSTs on the wire at once
            answers = list(pool.map(lambda _: http.post("/console/accounts/new", data=form), range(2)))
        late = http.post("/console/accounts/new", data=form)  # the browser resends after a timeout
        assert [a.status_code for a in [*answers, late]] == [303, 303, 303]
        assert len({a.headers["location"] for a in [*answers, late]}) == 1
        assert late.headers["Idempotent-Replayed"] == "true"
        assert accounts(db) == 1
        changed = http.post("/console/accounts/new", data={**form, "company_name": "Another Ltd"})
        assert changed.status_code == 422 and "already sent with other values" in changed.text
        fresh = http.post("/console/accounts/new", data=_new_account_form(http, "Triple Click Ltd"))  # a new key
        assert fresh.status_code == 303 and accounts(db) == 2


def _serve(db, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = clean_environment(ACCOUNTDESK_DATABASE_URL=db.url, **extra)
    return subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _wait_until_up(port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("accountdesk serve did not start")


def test_a_process_killed_after_its_commit_leaves_the_answer_for_the_retry(db):
    crash = secrets.token_hex(24)
    user = f.staff(db, "csr")
    port_one, port_two = free_port(), free_port()
    # both started at once (an app process takes a while to start on a busy machine); only the first has the hook
    first = _serve(db, port_one, ACCOUNTDESK_TEST_CRASH_AFTER_COMMIT_TOKEN=crash)
    second = _serve(db, port_two)
    try:
        _wait_until_up(port_one)
        base = f"http://127.0.0.1:{port_one}"
        token = httpx.post(f"{base}/api/v1/staff/tokens", json={"email": user.email, "password": f.PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Idempotency-Key": "lost-answer"}
        # a wrong crash token is no crash
        assert httpx.get(f"{base}/healthz", headers={idempotency.CRASH_HEADER: "x" * 48}).status_code == 200
        with pytest.raises(httpx.TransportError):  # committed, then the process died before answering
            httpx.post(f"{base}/api/v1/accounts", json=ACCOUNT,
                       headers={**headers, idempotency.CRASH_HEADER: crash}, timeout=30)
        assert first.wait(timeout=30) == -signal.SIGKILL
        assert accounts(db) == 1
        _wait_until_up(port_two)
        retry = httpx.post(f"http://127.0.0.1:{port_two}/api/v1/accounts", json=ACCOUNT, headers=headers, timeout=30)
        assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
        assert retry.json()["name"] == ACCOUNT["name"] and accounts(db) == 1
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def test_a_storefront_registration_form_sent_twice_registers_once(db, live_server):
    store = f.storefront(db, name="Double Shop")
    with httpx.Client(base_url=live_server, timeout=60) as http:
        page = http.get(f"/s/{store.slug}/register")
        form = {"csrf_token": csrf_of(page.text),
                "form_key": re.search(r'name="form_key" value="([^"]+)"', page.text).group(1),
                "company_name": "Acme Widgets Ltd", "first_name": "Ada", "last_name": "Lovelace",
                "email": "ada@example.com", "phone": "(217) 555-0142", "billing_address.line1": "1 Main Street",
                "billing_address.city": "Springfield", "billing_address.country": "US",
                "billing_address.region": "US-IL", "billing_address.postcode": "62701",
                "password": "Plum-Tiger-Cloud-9", "password_confirm": "Plum-Tiger-Cloud-9"}
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: http.post(f"/s/{store.slug}/register", data=form), range(2)))
    assert [a.status_code for a in answers] == [303, 303], [a.text[:300] for a in answers]
    assert {a.headers["location"] for a in answers} == {f"/s/{store.slug}/register/received"}
    assert accounts(db) == 1
    with db.transaction() as session:  # one verification e-mail, no "someone tried your address" for the double
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # the key's row sent with the COMMIT: PostgreSQL's
def test_a_held_key_stored_with_the_commit_commits_only_when_its_row_is_written(db):
    """`store(..., commit=True)` sends the key's row and the COMMIT in one query: a new key commits the change with
    it; a key another request committed meanwhile fails the query before its COMMIT (nothing is committed); any
    other failure raises the driver's error and commits nothing either."""
    scope, printed = "staff:1", "f" * 64

    def attempt(key: str, fingerprint: str = printed) -> None:
        with db.transaction() as session:
            session.add(AuditEvent(actor_type="system", actor_label="test", subject_type="account", subject_id=1,
                                   action=f"try.{key}", changes={}))  # pending: flushed before the COMMIT
            held = idempotency.Held(scope, key, fingerprint, 24, checked=False)
            idempotency.store(session, held, 201, {"location": "/x?a='b'"}, b"{\"o'k\": \"\\\\\"}", commit=True)

    def tried(key: str) -> int:
        with db.transaction() as session:
            return session.scalar(select(func.count()).where(AuditEvent.action == f"try.{key}"))

    attempt("new")
    assert tried("new") == 1 and keys(db) == 1
    with db.transaction() as session:
        row = session.execute(select(IdempotencyKey)).scalar_one()
        assert (row.status, row.response_status, row.response_headers, row.response_body) == \
            ("complete", 201, {"location": "/x?a='b'"}, b"{\"o'k\": \"\\\\\"}")
    with pytest.raises(idempotency.Taken):
        attempt("new")
    with pytest.raises(psycopg.errors.StringDataRightTruncation):  # a fingerprint longer than its column
        attempt("long", "f" * 65)
    assert tried("new") == 1 and tried("long") == 0 and keys(db) == 1
