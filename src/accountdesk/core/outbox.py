"""The outbox: rows written with the change that caused them, delivered by workers after the commit.

Workers claim rows with FOR UPDATE SKIP LOCKED (PostgreSQL) and mark them `sending` with a lease, so several
workers on several hosts never deliver one row twice; a worker that dies leaves a lease that expires.

Rows with the same `subject_key` are delivered one after the other in id order: a row is not due while an earlier
row of its subject is still waiting (pending, being sent or waiting for a retry), so no retry reorders them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, event, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from accountdesk.core.db import Database, utcnow
from accountdesk.core.idempotency import purge_expired
from accountdesk.core.models import OutboxMessage

log = logging.getLogger("accountdesk.outbox")

Handler = Callable[[dict[str, Any]], None]
Handlers = dict[str, Handler]
wakeup = threading.Event()
LEASE = timedelta(minutes=5)
GATHER = 0.05  # seconds a woken worker waits for more messages before it claims them


class PermanentFailure(Exception):
    """A delivery that can never succeed (a refused address): no retry."""


class Retry(Exception):
    """A failed delivery its handler wants tried again after `delay`, however many attempts it took: the handler,
    not the outbox, decides when to give up (by raising PermanentFailure)."""

    def __init__(self, message: str, delay: timedelta) -> None:
        super().__init__(message)
        self.delay = delay


WAITING = ("pending", "sending")


def enqueue(session: Session, kind: str, payload: dict[str, Any], subject_key: str | None = None) -> OutboxMessage:
    message = OutboxMessage(kind=kind, payload=payload, subject_key=subject_key)
    session.add(message)
    session.info["outbox_enqueued"] = True
    return message


def waiting(session: Session, kind: str, subject_key: str) -> bool:
    """Whether a message of this kind about this subject is still to be delivered (one indexed lookup)."""
    return bool(session.scalar(select(exists().where(OutboxMessage.subject_key == subject_key,
                                                     OutboxMessage.kind == kind,
                                                     OutboxMessage.status.in_(WAITING)))))


@event.listens_for(Session, "after_commit")
def _wake_worker(session: Session) -> None:
    if session.info.pop("outbox_enqueued", False):
        wakeup.set()


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** (attempts - 1), 3600))


def claim(db: Database, batch: int = 20) -> list[OutboxMessage]:
    now = utcnow()
    with db.transaction() as session:
        due = or_(and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
                  and_(OutboxMessage.status == "sending", OutboxMessage.locked_until < now))
        earlier = aliased(OutboxMessage)
        first_of_subject = or_(OutboxMessage.subject_key.is_(None), ~exists().where(
            earlier.subject_key == OutboxMessage.subject_key, earlier.id < OutboxMessage.id,
            earlier.status.in_(WAITING)))
        rows = list(session.scalars(select(OutboxMessage).where(due, first_of_subject).order_by(OutboxMessage.id)
                                    .limit(batch)
                                    .with_for_update(skip_locked=True)))
        for row in rows:
            row.status = "sending"
            row.locked_until = now + LEASE
            row.attempts += 1
        return rows


def _finish(db: Database, outcomes: dict[int, Exception | None], max_attempts: int) -> None:
    """Record a batch's deliveries in one transaction: one UPDATE for the messages sent, each failure on its own."""
    now = utcnow()
    with db.transaction() as session:
        sent = [message_id for message_id, error in outcomes.items() if error is None]
        if sent:
            session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(sent))
                            .values(status="sent", sent_at=now, last_error="", locked_until=None))
        for message_id, error in outcomes.items():
            row = session.get(OutboxMessage, message_id) if error is not None else None
            if row is None:
                continue
            row.locked_until = None
            row.last_error = f"{type(error).__name__}: {error}"[:2000]
            if isinstance(error, Retry):
                row.status, row.next_attempt_at = "pending", now + error.delay
            elif isinstance(error, PermanentFailure) or row.attempts >= max_attempts:
                row.status = "failed"
            else:
                row.status, row.next_attempt_at = "pending", now + backoff(row.attempts)


def deliver_due(db: Database, handlers: Handlers, max_attempts: int = 8, batch: int = 20) -> int:
    """Deliver what is due now with the handler of each row's kind; returns how many rows were handled."""
    handled = 0
    while rows := claim(db, batch):
        outcomes: dict[int, Exception | None] = {}
        for row in rows:
            handler = handlers.get(row.kind)
            error: Exception | None = None
            try:
                if handler is None:
                    raise PermanentFailure(f"no handler for {row.kind!r}")
                handler(row.payload)
            except Exception as exc:  # noqa: BLE001 — every failure is recorded and retried
                log.warning("outbox %s %s failed: %s", row.kind, row.id, exc)
                error = exc
            outcomes[row.id] = error
        _finish(db, outcomes, max_attempts)
        handled += len(rows)
        if len(rows) < batch:  # nothing more was due when this batch was claimed
            break
    return handled


def failed(session: Session, kind: str, limit: int = 50) -> list[OutboxMessage]:
    """The newest rows of a kind that were given up on (shown in the console)."""
    stmt = select(OutboxMessage).where(OutboxMessage.kind == kind, OutboxMessage.status == "failed")
    return list(session.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit)))


def retry(session: Session, message_id: int) -> OutboxMessage | None:
    row = session.get(OutboxMessage, message_id)
    if row is not None and row.status == "failed":
        row.status, row.next_attempt_at, row.attempts = "pending", utcnow(), 0
        session.info["outbox_enqueued"] = True
    return row


Chore = Callable[[], object]
CHORE_SECONDS = 3600.0


class Worker:
    """Polls the outbox until stopped; `serve` runs one in a thread, `accountdesk worker` runs it in the foreground.
    It also runs the periodic `chores` (clean-ups) when it starts and every `chore_seconds` after."""

    def __init__(self, db: Database, handlers: Handlers, poll_seconds: float = 1.0, max_attempts: int = 8,
                 chores: Sequence[Chore] = (), chore_seconds: float = CHORE_SECONDS) -> None:
        self.db, self.handlers, self.poll_seconds, self.max_attempts = db, handlers, poll_seconds, max_attempts
        self.chores = (partial(purge_expired, db), *chores)  # expired idempotency keys, and the caller's clean-ups
        self.chore_seconds, self.chores_due = chore_seconds, 0.0
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                deliver_due(self.db, self.handlers, self.max_attempts)
            except Exception:  # noqa: BLE001 — a database hiccup must not kill the worker
                log.exception("outbox worker pass failed")
            self.run_chores()
            if wakeup.wait(self.poll_seconds):
                self.stopping.wait(GATHER)  # let the commits of a burst arrive, to deliver them in one batch
            wakeup.clear()

    def run_chores(self) -> None:
        if time.monotonic() < self.chores_due:
            return
        self.chores_due = time.monotonic() + self.chore_seconds
        for chore in self.chores:
            try:
                chore()
            except Exception:  # noqa: BLE001 — a failed clean-up is tried again next time
                log.exception("worker chore %s failed", getattr(chore, "__qualname__", chore))

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="outbox-worker", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        wakeup.set()
        if self.thread:
            self.thread.join(timeout=10)
