"""The outbox: rows commit with the change, workers deliver with retries and backoff, never twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from accountdesk.app import outbox_handlers
from accountdesk.core.db import utcnow
from accountdesk.core.models import OutboxMessage
from accountdesk.core.outbox import PermanentFailure, Retry, Worker, deliver_due, enqueue
from accountdesk.mail import service as mail
from tests.conftest import free_port
from tests.mailbox import start_smtp, wait_for


def _rows(db):
    with db.transaction() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_rolled_back_change_sends_nothing(db):
    with pytest.raises(RuntimeError):
        with db.transaction() as session:
            enqueue(session, "note", {"n": 1})
            raise RuntimeError("the change failed")
    assert _rows(db) == []


def test_failure_is_retried_with_backoff_then_marked_failed(db):
    calls: list[int] = []

    def flaky(payload):
        calls.append(payload["n"])
        raise ConnectionError("smtp down")

    with db.transaction() as session:
        enqueue(session, "note", {"n": 1})
    assert deliver_due(db, {"note": flaky}, max_attempts=3) == 1
    [row] = _rows(db)
    assert row.status == "pending" and row.attempts == 1 and "smtp down" in row.last_error
    assert row.next_attempt_at > utcnow() + timedelta(seconds=3)
    assert deliver_due(db, {"note": flaky}, max_attempts=3) == 0  # not due yet: backoff holds it
    for _ in range(2):
        with db.transaction() as session:
            session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
        deliver_due(db, {"note": flaky}, max_attempts=3)
    [row] = _rows(db)
    assert row.status == "failed" and row.attempts == 3 and calls == [1, 1, 1]


def test_permanent_failure_is_not_retried(db):
    def refuse(payload):
        raise PermanentFailure("no such mailbox")

    with db.transaction() as session:
        enqueue(session, "note", {})
    deliver_due(db, {"note": refuse})
    assert _rows(db)[0].status == "failed"


def test_several_workers_never_deliver_one_row_twice(db):
    with db.transaction() as session:
        for n in range(300):
            enqueue(session, "note", {"n": n})
    seen: list[int] = []
    lock = threading.Lock()

    def record(payload):
        with lock:
            seen.append(payload["n"])

    threads = [threading.Thread(target=deliver_due, args=(db, {"note": record})) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(300))
    with db.transaction() as session:
        assert session.scalar(select(func.count()).where(OutboxMessage.status == "sent")) == 300


def test_expired_lease_is_taken_over(db):
    with db.transaction() as session:
        enqueue(session, "note", {"n": 7})
        session.flush()
        session.execute(update(OutboxMessage).values(status="sending", locked_until=utcnow() - timedelta(seconds=1)))
    got: list[int] = []
    deliver_due(db, {"note": lambda p: got.append(p["n"])})
    assert got == [7]


def test_worker_thread_delivers_over_smtp_after_commit(db, settings):
    port = free_port()
    controller, sink = start_smtp(port)
    smtp_settings = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}", "outbox_poll_seconds": 5})
    worker = Worker(db, outbox_handlers(smtp_settings), smtp_settings.outbox_poll_seconds)
    worker.start()
    try:
        with db.transaction() as session:
            mail.send(session, "registration_approved", "ada@example.com", language="fr",
                      cc=["boss@example.com"], bcc=["audit@example.com"],
                      context={"name": "Ada", "storefront_name": "Boutique", "account_name": "Ada SARL",
                               "sign_in_link": "http://shop/s/main/sign-in"})
        # the commit wakes the worker at once: no need to wait for the 5 s poll
        received = wait_for(lambda: sink.received, timeout=4)
    finally:
        worker.stop()
        controller.stop()
    [message] = received
    assert set(message.envelope_to) == {"ada@example.com", "boss@example.com", "audit@example.com"}
    assert "Bcc" not in message.message and message.message["Cc"] == "boss@example.com"
    assert message.message["Content-Language"] == "fr"
    assert _rows(db)[0].status == "sent"


def test_smtp_down_then_up_delivers_once(db, settings):
    port = free_port()
    smtp_settings = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"})
    handlers = outbox_handlers(smtp_settings)
    with db.transaction() as session:
        mail.send(session, "registration_received", "bo@example.com",
                  context={"name": "Bo", "storefront_name": "S", "account_name": "A"})
    deliver_due(db, handlers)
    assert _rows(db)[0].status == "pending" and _rows(db)[0].attempts == 1
    controller, sink = start_smtp(port)
    try:
        with db.transaction() as session:
            session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
        deliver_due(db, handlers)
        deliver_due(db, handlers)
    finally:
        controller.stop()
    assert len(sink.received) == 1 and _rows(db)[0].status == "sent"


def test_rows_about_one_subject_go_out_in_order_whatever_the_retries(db):
    """A row waits while an earlier row of its subject is pending (even for a retry far ahead); other subjects and
    rows without a subject are not held up. A handler's Retry sets its own delay, past max_attempts."""
    sent: list[str] = []
    failing = {"a1"}

    def handler(payload):
        if payload["n"] in failing:
            raise Retry("receiver down", timedelta(hours=1))
        sent.append(payload["n"])

    with db.transaction() as session:
        for n, subject in (("a1", "a"), ("b1", "b"), ("a2", "a"), ("x", None), ("a3", "a")):
            enqueue(session, "hook", {"n": n}, subject)
    for _ in range(3):
        deliver_due(db, {"hook": handler}, max_attempts=1)
    assert sent == ["b1", "x"]
    first = _rows(db)[0]
    assert (first.status, first.attempts) == ("pending", 1)  # Retry outlives max_attempts

    failing.clear()
    with db.transaction() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == first.id).values(next_attempt_at=utcnow()))
    deliver_due(db, {"hook": handler})
    assert sent == ["b1", "x", "a1", "a2", "a3"]
