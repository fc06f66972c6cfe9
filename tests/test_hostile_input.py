"""Hostile input never ends in a 500: ids beyond BIGINT and characters no database or mail header accepts are
refused at the edge with the one JSON error shape (API) or a readable error (pages), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from accountdesk.accounts.models import Account
from accountdesk.app import outbox_handlers
from accountdesk.core.models import OutboxMessage
from accountdesk.core.outbox import Handlers, deliver_due
from accountdesk.core.validation import MULTILINE_FIELDS
from accountdesk.core.web import template_dirs
from accountdesk.mail import service as mail
from tests import factories as f
from tests.conftest import free_port
from tests.mailbox import SmtpSink, start_smtp
from tests.reseller_world import console_sign_in, csrf_of
from tests.test_registration_api import body, url

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
    attribute = client.post("/api/v1/custom-attributes", json={"key": "size", "label": "Size", "type": "text",
                                                               "position": 2**40}, headers=headers)
    assert attribute.status_code == 422 and "position" in attribute.json()["error"]["fields"]


def test_console_pages_refuse_ids_beyond_bigint_readably(db, client):
    console_sign_in(client, f.staff(db, "admin"))
    record = client.get(f"/console/accounts/{TOO_BIG}")
    assert record.status_code == 400 and 'data-testid="error-page"' in record.text
    for storefront in (TOO_BIG, "²"):  # both look like digits to str.isdigit()
        queue = client.get("/console/approvals", params={"storefront": storefront})
        assert queue.status_code == 200, queue.text


def test_unstorable_text_is_refused_wherever_a_request_carries_it(db, client):
    store = f.storefront(db, registration_mode="approval")
    headers = f.token(client, f.staff(db, "admin"))
    refused = {
        "e-mail with NUL": client.post(f"/api/v1/storefronts/{store.slug}/sessions",
                                       json={"email": "a\u0000@example.com", "password": "whatever-it-is"}),
        "search with NUL": client.get("/api/v1/accounts?q=%00", headers=headers),
        "slug with NUL": client.get("/api/v1/storefronts/a%00b"),
        "name on two lines": client.post(url(store), json=body(company_name="Acme\r\nBcc: all@example.com")),
        "lone surrogate": client.post(f"/api/v1/storefronts/{store.slug}/sessions",
                                      content=b'{"email": "\\ud800@example.com", "password": "whatever-it-is"}',
                                      headers={"Content-Type": "application/json"}),
        "control character deep in a body": client.post(url(store), json=body(billing_address={"city": "\x07"})),
        "control character in a key": client.post(url(store), json={**body(), "x\x00": 1}),
    }
    for case, answer in refused.items():
        assert answer.status_code == 422, (case, answer.text)
        assert answer.json()["error"]["code"] == "invalid_text", case
    assert refused["name on two lines"].json()["error"]["fields"] == {
        "company_name": "Keep this on one line: remove the line breaks and tabs."}
    assert "billing_address.city" in refused["control character deep in a body"].json()["error"]["fields"]
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0


def test_multi_line_fields_keep_their_lines_but_no_control_characters(db, client):
    store = f.storefront(db, registration_mode="approval")
    headers = f.token(client, f.staff(db, "admin"))
    assert client.post(url(store), json=body()).status_code == 202
    with db.transaction() as session:
        account_id = session.scalar(select(Account.id))
    nul = client.post(f"/api/v1/registrations/{account_id}/reject", json={"reason": "No.\x00"}, headers=headers)
    assert nul.status_code == 422 and nul.json()["error"]["code"] == "invalid_text"
    reason = "We only sell to pharmacies.\r\n\tPlease call us."
    rejected = client.post(f"/api/v1/registrations/{account_id}/reject", json={"reason": reason}, headers=headers)
    assert rejected.status_code == 200, rejected.text


def test_pages_answer_unstorable_text_with_a_readable_page(db, client):
    store = f.storefront(db)
    sign_in = client.get(f"/s/{store.slug}/sign-in")
    posted = client.post(f"/s/{store.slug}/sign-in", data={"csrf_token": csrf_of(sign_in.text),
                                                          "email": "a\x00@example.com", "password": "x"})
    assert posted.status_code == 422 and 'data-testid="error-page"' in posted.text
    assert "Check email: Remove the invisible character U+0000" in posted.text
    console_sign_in(client, f.staff(db, "admin"))
    search = client.get("/console/accounts", params={"q": "\x00"})
    assert search.status_code == 422 and "Check q:" in search.text and 'data-testid="error-page"' in search.text


def test_a_nul_deep_in_nested_json_is_found(db, client):
    store = f.storefront(db)
    deep = b"{\"email\": " + b"[" * 800 + b"\"\\u0000\"" + b"]" * 800 + b"}"
    answer = client.post(f"/api/v1/storefronts/{store.slug}/sessions", content=deep,
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_text", answer.text


def test_every_textarea_is_a_multi_line_field():
    """A <textarea> whose name is not in MULTILINE_FIELDS would have every line break refused."""
    names = {name for folder in template_dirs() for path in folder.rglob("*.html")
             for name in re.findall(r'<textarea[^>]*\bname="([^"]+)"', path.read_text())}
    assert names and names <= MULTILINE_FIELDS, names - MULTILINE_FIELDS


@pytest.fixture
def smtp_handlers(settings, db) -> Iterator[tuple[Handlers, SmtpSink]]:
    """The outbox handlers of the app, delivering to a real SMTP server on loopback."""
    port = free_port()
    controller, sink = start_smtp(port)
    try:
        yield outbox_handlers(settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"}), db), sink
    finally:
        controller.stop()


def _staff_notice(db, **context: str) -> int:
    """The "new account request" mail as registration queues it (the name came from before the edge check, or
    from the ERP)."""
    with db.transaction() as session:
        row = mail.send(session, "new_account_request", ["sales@shop.test"], context={
            "name": "Shop team", "storefront_name": "Shop", "account_number": "W000001", "registrant_name": "Ada",
            "registrant_email": "ada@example.com", "review_link": "http://testserver/console/approvals/1",
            **context})
        session.flush()
        return row.id


def _row(db, row_id: int) -> OutboxMessage:
    with db.transaction() as session:
        return session.get(OutboxMessage, row_id)


def test_a_company_name_on_two_lines_still_reaches_staff(db, smtp_handlers):
    handlers, sink = smtp_handlers
    row_id = _staff_notice(db, company_name="Acme Ltd\r\nBcc: spy@evil.example")
    deliver_due(db, handlers)
    assert _row(db, row_id).status == "sent", _row(db, row_id).last_error
    [received] = sink.received
    assert received.envelope_to == ["sales@shop.test"]
    assert received.message["Subject"] == "New account request on Shop: Acme Ltd Bcc: spy@evil.example"
    assert received.message["Bcc"] is None


def test_a_message_that_can_never_be_sent_fails_at_once_and_shows_in_the_console(db, client, smtp_handlers):
    handlers, sink = smtp_handlers
    row_id = _staff_notice(db)  # no company_name: the template cannot be rendered, today or on any retry
    deliver_due(db, handlers)
    row = _row(db, row_id)
    assert (row.status, row.attempts) == ("failed", 1) and "cannot be built" in row.last_error
    assert sink.received == []
    console_sign_in(client, f.staff(db, "admin"))
    shown = client.get("/console/erp")
    assert f'data-testid="mail-{row_id}"' in shown.text and "new_account_request" in shown.text
    assert "cannot be built" in shown.text and "sales@shop.test" in shown.text
