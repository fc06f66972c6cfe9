"""The outbox: rows written with the change that caused them, delivered by workers after the commit.

Workers claim rows with FOR UPDATE SKIP LOCKED (PostgreSQL) and mark them `sending` with a lease, so several
workers on several hosts never deliver one row twice; a worker that dies leaves a lease that expires.

Rows with the same `subject_key` are delivered one after the other in id order: a row is not due while an earlier
row of its subject is still waiting (pending, being sent or waiting for a retry), so no retry reorders them. So a
claimed batch never holds two rows of one subject, and a `BatchHandler` may deliver a batch's rows concurrently; it
records their outcomes in the one transaction that also finishes the rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import and_, bindparam, event, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from accountdesk.core.db import Database, utcnow
from accountdesk.core.idempotency import purge_expired
from accountdesk.core.models import OutboxMessage

log = logging.getLogger("accountdesk.outbox")

Handler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Claimed:
    """A row a worker holds: `attempts` counts this one."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    subject_key: str | None = None


Outcomes = dict[int, Exception | None]  # claimed row id → None when delivered, else why not
Recorder = Callable[[Session], Outcomes]


@runtime_checkable
class BatchHandler(Protocol):
    """Delivers a claimed batch at once (no two rows share a subject) and returns what records the outcomes: it is
    called in the transaction that finishes the rows, so a batch costs one write transaction besides its claim."""

    def deliver_batch(self, messages: list[Claimed]) -> Recorder: ...


Handlers = dict[str, Handler | BatchHandler]
BATCH = 20
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


# The statements of every pass, built once (a statement object reused keeps its cache key).
_EARLIER = aliased(OutboxMessage)
DUE = (select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.payload, OutboxMessage.attempts,
              OutboxMessage.subject_key)
       .where(or_(and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= bindparam("due_at")),
                  and_(OutboxMessage.status == "sending", OutboxMessage.locked_until < bindparam("now"))),
              or_(OutboxMessage.subject_key.is_(None), ~exists().where(  # the first waiting row of its subject
                  _EARLIER.subject_key == OutboxMessage.subject_key, _EARLIER.id < OutboxMessage.id,
                  _EARLIER.status.in_(WAITING))))
       .order_by(OutboxMessage.id).limit(bindparam("batch")).with_for_update(skip_locked=True))
_NOT_SYNCED = {"synchronize_session": False}
TAKE = (update(OutboxMessage).where(OutboxMessage.id.in_(bindparam("ids", expanding=True)))
        .values(status="sending", locked_until=bindparam("until"), attempts=OutboxMessage.attempts + 1)
        .execution_options(**_NOT_SYNCED))
SENT = (update(OutboxMessage).where(OutboxMessage.id.in_(bindparam("ids", expanding=True)))
        .values(status="sent", sent_at=bindparam("at"), last_error="", locked_until=None)
        .execution_options(**_NOT_SYNCED))


def claim(db: Database, batch: int = BATCH, due_at: datetime | None = None) -> list[Claimed]:
    """Up to `batch` rows due at `due_at` (default: now), marked `sending` under a lease."""
    now = utcnow()
    with db.transaction() as session:
        rows = session.execute(DUE, {"due_at": due_at or now, "now": now, "batch": batch}).all()
        if rows:
            session.execute(TAKE, {"ids": [row.id for row in rows], "until": now + LEASE})
        return [Claimed(row.id, row.kind, row.payload, row.attempts + 1, row.subject_key) for row in rows]


def _finish(session: Session, message: Claimed, error: Exception | None, max_attempts: int) -> None:
    values: dict[str, Any] = {"locked_until": None}
    if error is None:
        values.update(status="sent", sent_at=utcnow(), last_error="")
    else:
        values["last_error"] = f"{type(error).__name__}: {error}"[:2000]
        if isinstance(error, Retry):
            values.update(status="pending", next_attempt_at=utcnow() + error.delay)
        elif isinstance(error, PermanentFailure) or message.attempts >= max_attempts:
            values["status"] = "failed"
        else:
            values.update(status="pending", next_attempt_at=utcnow() + backoff(message.attempts))
    session.execute(update(OutboxMessage).where(OutboxMessage.id == message.id).values(**values)
                    .execution_options(synchronize_session=False))


def _finish_all(session: Session, messages: list[Claimed], outcomes: Outcomes, max_attempts: int) -> None:
    sent = [m.id for m in messages if m.id in outcomes and outcomes[m.id] is None]
    if sent:
        session.execute(SENT, {"ids": sent, "at": utcnow()})
    for message in messages:
        error = outcomes.get(message.id, PermanentFailure("the handler reported nothing"))
        if error is not None:
            log.warning("outbox %s %s failed: %s", message.kind, message.id, error)
            _finish(session, message, error, max_attempts)


def _deliver_one(handler: Handler | None, message: Claimed) -> Exception | None:
    try:
        if handler is None:
            raise PermanentFailure(f"no handler for {message.kind!r}")
        handler(message.payload)
    except Exception as exc:  # noqa: BLE001 — every failure is recorded (by _finish_all) and retried
        return exc
    return None


def _deliver_batch(db: Database, handler: BatchHandler, messages: list[Claimed], max_attempts: int) -> None:
    try:
        record = handler.deliver_batch(messages)
    except Exception as exc:  # noqa: BLE001 — a broken handler fails its rows, to be retried
        log.exception("outbox batch of %s failed", messages[0].kind)
        with db.transaction() as session:
            _finish_all(session, messages, dict.fromkeys((m.id for m in messages), exc), max_attempts)
        return
    with db.transaction() as session:
        _finish_all(session, messages, record(session), max_attempts)


def deliver_due(db: Database, handlers: Handlers, max_attempts: int = 8, batch: int = BATCH) -> int:
    """Deliver what is due now with the handler of each row's kind; returns how many rows were handled. A row whose
    handler is a BatchHandler goes out with the others of its kind in the batch; other rows one by one, their
    outcomes recorded together in one transaction. A row retried during the pass waits for a later pass, however
    short its delay. The pass claims again while a batch was full or had rows with a subject (their next rows may
    be due now)."""
    handled, started = 0, utcnow()
    while rows := claim(db, batch, started):
        kinds: dict[str, list[Claimed]] = {}
        for row in rows:
            kinds.setdefault(row.kind, []).append(row)
        singles: list[Claimed] = []
        outcomes: Outcomes = {}
        for kind, messages in kinds.items():
            handler = handlers.get(kind)
            if isinstance(handler, BatchHandler):
                _deliver_batch(db, handler, messages, max_attempts)
                continue
            for message in messages:
                outcomes[message.id] = _deliver_one(handler, message)
            singles.extend(messages)
        if singles:
            with db.transaction() as session:
                _finish_all(session, singles, outcomes, max_attempts)
        handled += len(rows)
        if len(rows) < batch and not any(row.subject_key for row in rows):
            # Every row due when this batch was claimed is in it, except rows waiting behind an earlier row of
            # their subject, and none of those can follow a row of this batch: no claim that would find nothing.
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
