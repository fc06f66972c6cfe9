"""Idempotency keys (IETF draft "The Idempotency-Key HTTP Header Field"): a creating request sent again after a lost
answer (a 502, a timeout, a dropped connection, a double click) gets the first answer instead of a second change.

API operations opt in with `dependencies=[IDEMPOTENT]` on routers built with `route_class=ApiRoute`; page forms
carry a key of their own (`form_key_field()` next to the CSRF token; core.pages.PageRoute runs it). The flow:

1. the key is checked before the endpoint runs: a repeat while the first still runs answers 409
   `idempotency_key_in_use` with Retry-After, a repeat with another request (method, path or body) 422
   `idempotency_key_reused`, a finished one the stored status, headers and body with `Idempotent-Replayed: true`,
   and nothing runs again. On PostgreSQL an API operation checks in the request's own transaction (in the same
   thread hop as its session) when the operation changes things in that session: `pg_try_advisory_xact_lock` on
   the key says whether another request holds it, the same statement whether it has a row (read only then), and
   the row is only written at the end (`Held`); the lock goes with the commit or
   rollback, so a dead process leaves nothing behind. On SQLite an operation that also ends in that thread hop
   (`ApiRoute.ends_in_thread`) checks the same way after taking the write lock (core.db.serialise), which no other
   request's check passes before the commit (a repeat waits for the first one's answer, then gets it). Elsewhere
   (other SQLite operations, page forms) the key is claimed first by an INSERT committed alone, which a unique
   (scope, key) makes race-safe (`Claim`), and completed by an UPDATE. An API operation whose every effect is in
   its transaction (`IDEMPOTENT_IN_TRANSACTION`) is not checked before it runs: the statement that stores its
   answer is the check (`ApiRoute.checks_by_storing`), and a repeat's change is rolled back before it answers as
   above;
2. the endpoint runs in the request's transaction and its answer is stored IN THAT TRANSACTION, so the change and
   the stored answer are committed together: a process that dies after the commit leaves the answer to replay (on
   PostgreSQL a `Held` key's answer, stored as the transaction's last statement, goes in one query with the COMMIT,
   which runs only if the key's row was written: `KeptAndCommitted`);
3. a final refusal (400, 404, 409, 410, 422) is stored too; anything else (401/403, 429, 5xx, a crash) releases
   the key so that a retry runs again. A claimed key whose process died while running is taken over after LOCK.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import inspect
import json
import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from fastapi.utils import is_body_allowed_for_status_code
from markupsafe import Markup
from psycopg import errors as psycopg_errors
from psycopg import pq
from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    and_,
    bindparam,
    cast,
    delete,
    event,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from accountdesk.core import i18n
from accountdesk.core.db import NO_TRANSACTION, Database, serialise, utcnow, write_rows_kept_for_commit
from accountdesk.core.errors import AppError, BadRequest, Conflict, ValidationFailed
from accountdesk.core.i18n import _l
from accountdesk.core.models import AuthSession, IdempotencyKey
from accountdesk.core.security import token_digest
from accountdesk.core.web import (
    DbSession,
    ErrorBody,
    conflict_from_integrity_error,
    end_now,
    error_response,
    media_type,
    templates,
)

log = logging.getLogger("accountdesk.idempotency")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
FORM_FIELD = "form_key"
LOCK = timedelta(seconds=60)  # longer than any request may run: then its process is taken to be dead
STORED_HEADERS = ("content-type", "location")  # never Set-Cookie: a replay must not hand out a session
FINAL_REFUSALS = frozenset({400, 404, 409, 410, 422})
MAX_KEY = 255
# Test-only fault hook (see `arm_crash_hook`): never a setting, so no configuration file can turn it on.
CRASH_TOKEN_ENV = "ACCOUNTDESK_TEST_CRASH_AFTER_COMMIT_TOKEN"
CRASH_HEADER = "X-Accountdesk-Test-Crash-After-Commit"


@dataclass
class Claim:
    id: int
    lock_token: str
    stored: bool = False


@dataclass
class Held:
    """A key checked in the request's transaction (on PostgreSQL its advisory lock held by it, on SQLite the write
    lock), whose row is written by `store`; or, not `checked`, a key of an operation that checks it by storing its
    answer (`ApiRoute.checks_by_storing`)."""

    scope: str
    key: str
    fingerprint: str
    hours: int
    stored: bool = False
    checked: bool = True


@dataclass
class Pending:
    """An API request's key, checked by the session dependency (`_request_session`)."""

    key: str
    fingerprint: str


@dataclass
class Replay:
    status: int
    headers: dict[str, str]
    body: bytes

    def response(self) -> Response:
        return Response(self.body, status_code=self.status, headers={**self.headers, REPLAYED: "true"})


@dataclass
class InUse:
    retry_after: int


class Reused:
    pass


Outcome = Claim | Held | Replay | InUse | Reused


class Taken(Exception):  # noqa: N818 - not an error: the key of an unchecked `Held` turned out to be in use
    """Raised by `store` when an unchecked key has a row or a request holding it: the change must not count."""


class Answered(Exception):  # noqa: N818 - not an error: the check answered without running the operation
    """Raised by the session dependency when the key's check answers the request (replay, 409, 422)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(type(outcome).__name__)
        self.outcome = outcome


def parse_key(raw: str) -> str:
    """The key as the draft sends it (a structured-field string, `"…"`) or bare, as most clients do."""
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not key or len(key) > MAX_KEY or not key.isascii() or not key.isprintable():
        raise BadRequest(_l("%(header)s must be 1 to %(count)s printable ASCII characters (a UUID is a good choice).",
                            header=HEADER, count=MAX_KEY),
                         code="invalid_idempotency_key")
    return key


_SORTED_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # json.dumps builds one per call with these


def _canonical(body: bytes, content_type: str) -> bytes:
    """The body in one spelling, so that a client re-serialising the same JSON or form is the same request."""
    kind = media_type(content_type)
    try:
        if kind == "application/x-www-form-urlencoded":
            pairs = [(k, v) for k, v in parse_qsl(body.decode(), keep_blank_values=True) if k != FORM_FIELD]
            return json.dumps(sorted(pairs)).encode()
        if body and (not kind or kind.endswith("json")):
            return _SORTED_JSON.encode(json.loads(body)).encode()
    except ValueError:
        pass
    return body


def fingerprint(secret: str, method: str, target: str, body: bytes, content_type: str) -> str:
    """Keyed (the body may hold a password): nobody who reads the table can test guesses against it."""
    message = f"{method} {target}\n".encode() + _canonical(body, content_type)
    return hmac.digest(secret.encode(), message, "sha256").hex()  # one call into OpenSSL: hmac.new's digest


KEYS = IdempotencyKey.__table__  # Core statements: this runs on every keyed request, the ORM adds nothing here


FRESH = ("fingerprint", "status", "lock_token", "locked_at", "response_status", "response_headers", "response_body",
         "created_at", "expires_at")
# Built once (each dialect's ON CONFLICT): a statement object reused keeps its compiled form and cache key.
CLAIMS = {dialect: insert(KEYS).values({name: bindparam(name) for name in ("scope", "key", *FRESH)})
          .on_conflict_do_nothing(index_elements=["scope", "key"]).returning(KEYS.c.id)
          for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}

STORE = (update(KEYS).where(KEYS.c.id == bindparam("held_id"), KEYS.c.lock_token == bindparam("held_lock"))
         .values(status="complete", lock_token=None, locked_at=None, response_status=bindparam("response_status"),
                 response_headers=bindparam("response_headers"), response_body=bindparam("response_body")))


# PostgreSQL: whether another transaction holds the key (a request running) and whether it has a row, in one round
# trip; the row itself is read only when there is one (a replay, a reuse, an expired key): the common case of a new
# key carries two booleans back, not the eight columns of an empty row.
# On SQLite the request holds the write lock (core.db.serialise) when it checks: no other request's check runs.
CHECK = {"postgresql": text("SELECT pg_try_advisory_xact_lock(:lock) AS free, EXISTS (SELECT FROM idempotency_keys "
                            "AS k WHERE k.scope = :scope AND k.key = :key) AS found"),
         "sqlite": text("SELECT 1 AS free, EXISTS (SELECT 1 FROM idempotency_keys AS k WHERE k.scope = :scope "
                        "AND k.key = :key) AS found")}
ROW = select(*(KEYS.c[name] for name in ("fingerprint", "status", "locked_at", "response_status", "response_headers",
                                         "response_body", "expires_at"))).where(
    KEYS.c.scope == bindparam("scope"), KEYS.c.key == bindparam("key"))

COMPLETE = literal_column("'complete'")  # constants in the SQL: every parameter sent costs its adaptation
KEPT = ("scope", "key", "fingerprint", "response_status", "response_headers", "response_body", "created_at",
        "expires_at")


def _kept(insert: Callable[..., Any], locked: bool) -> Any:
    """The finished row of a `Held` key in one statement: a new row, or one replacing an expired row or a claim
    whose process died. No row counted (rowcount 0): another request committed the key meanwhile (on PostgreSQL
    between the check's snapshot and its lock), and this change must not count. On PostgreSQL (`locked`) only the
    holder of the key's advisory lock writes: the statement takes it, or holds it already from the check; a request
    that did not check first (`Held.checked`) learns so that another one with the key is running, without waiting
    for that one's commit."""
    values = {name: bindparam(name, type_=KEYS.c[name].type) for name in KEPT}
    # the headers as JSON text: the driver's adaptation of a JSON value costs more than the rest of the row's
    values["response_headers"] = bindparam("response_headers", type_=String)
    if locked:
        values["response_headers"] = cast(values["response_headers"], KEYS.c.response_headers.type)
        lock = func.pg_try_advisory_xact_lock(bindparam("lock", type_=BigInteger))
        kept = insert(KEYS).from_select([*KEPT, "status"], select(*values.values(), COMPLETE).where(lock))
    else:
        kept = insert(KEYS).inline().values({**values, "status": COMPLETE})
    return kept.on_conflict_do_update(
        index_elements=["scope", "key"],
        set_={**{name: kept.excluded[name] for name in FRESH if name not in ("lock_token", "locked_at")},
              "lock_token": null(), "locked_at": null()},
        where=or_(KEYS.c.expires_at <= kept.excluded.created_at,
                  and_(KEYS.c.status != COMPLETE,
                       or_(KEYS.c.locked_at.is_(None), KEYS.c.locked_at <= bindparam("stale")))))


KEEP = {"postgresql": _kept(pg_insert, locked=True), "sqlite": _kept(sqlite_insert, locked=False)}


@dataclass(frozen=True)
class _Form:
    sql: str
    names: tuple[str, ...] | None  # the parameters' names, for a dialect that takes them by name
    params: list[tuple[str, bool, Any, Any]]  # name, required, default, bind processor


class Sent:
    """A statement of every keyed request (one per dialect, or the same for both), rendered once per dialect and
    sent as its SQL with `exec_driver_sql`, which still passes the engine's events (SQLite's BEGIN, statement
    counts): SQLAlchemy's work per execution of a compiled statement (cache key, parameters, result set-up) costs
    more CPU than the round trip itself, ~80 µs of the ~210 µs PostgreSQL's store took (issue 13: a key must add
    under 5 % to an account creation). Parameters go through their types' bind processors, as SQLAlchemy would send
    them; rows come back as the driver reads them (only booleans here: the caller reads `rowcount` otherwise)."""

    def __init__(self, statements: Any) -> None:
        self.statements = statements
        self.forms: dict[str, _Form] = {}

    def _form(self, dialect: Any) -> _Form:
        statement = self.statements[dialect.name] if isinstance(self.statements, dict) else self.statements
        compiled = statement.compile(dialect=dialect)
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(binds)
        params = [(name, binds[name].required, binds[name].value,
                   binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
        form = self.forms[dialect.name] = _Form(compiled.string, None if compiled.positional else names, params)
        return form

    def __call__(self, conn: Connection, values: dict[str, Any]) -> Any:
        form = self.forms.get(conn.dialect.name) or self._form(conn.dialect)
        sent = [(values[name] if required or name in values else default) if process is None
                else process(values[name] if required or name in values else default)
                for name, required, default, process in form.params]
        return conn.exec_driver_sql(form.sql, tuple(sent) if form.names is None
                                    else dict(zip(form.names, sent, strict=True)))


SEND_CHECK, SEND_KEEP, SEND_STORE = Sent(CHECK), Sent(KEEP), Sent(STORE)


class KeptAndCommitted:
    """PostgreSQL: a `Held` key's row (KEEP) and the transaction's COMMIT in ONE round trip, for a request whose
    answer is stored as its last statement (`ApiRoute.ends_in_thread`): one simple-protocol query
    `WITH kept AS (KEEP … RETURNING 1) SELECT 1 / count(*) FROM kept; COMMIT`. When the key's row is not written
    (another request holds its lock or committed it) the division by zero fails the statement, and PostgreSQL skips
    the COMMIT of a query whose earlier statement failed: the transaction is left aborted, nothing is committed,
    and the caller rolls it back as before. A key adds no round trip of its own to the request then (issue 13: under
    5 % more CPU on an account creation; a round trip through SQLAlchemy and psycopg costs the app ~150 µs of CPU).

    The simple protocol takes no parameters: the values are written into the SQL as literals. Text is quoted by
    libpq's PQescapeLiteral (`pq.Escaping`), the one quoting that knows the connection's encoding and string
    settings; what is written here needs no quoting: numbers are Python ints, times ISO 8601 (digits and `-:.+T`
    only), bytes hex digits in an E'' string (its backslash means the same whatever standard_conforming_strings
    says; PQescapeLiteral's scan of an answer's thousand hex digits cost more than the rest of the row's literals).
    Sent with libpq's PQexec, which releases the GIL while it waits; psycopg reads the transaction's state from
    libpq, so its `commit()` that SQLAlchemy calls next sends nothing."""

    TAKEN = b"22012"  # division_by_zero: the key's row was not written (the only division in the statement)

    def __init__(self) -> None:
        self.template: bytes | None = None

    def _template(self, dialect: Any) -> bytes:
        compiled = KEEP["postgresql"].returning(literal_column("1")).compile(dialect=dialect)
        if compiled.positional or dialect.paramstyle != "pyformat":
            raise RuntimeError("KeptAndCommitted needs the psycopg dialect's %(name)s parameters")
        self.template = (f"WITH kept AS ({compiled.string}) SELECT 1 / count(*) FROM kept; COMMIT").encode()
        return self.template

    def __call__(self, conn: Connection, values: dict[str, Any]) -> bool:
        """Whether the row was written (and the transaction committed); raises the driver's error for any other
        failure (the COMMIT's included)."""
        template = self.template or self._template(conn.dialect)
        driver = conn.connection.driver_connection
        pgconn, encoding = driver.pgconn, driver.info.encoding
        quote = pq.Escaping(pgconn).escape_literal
        literals: dict[bytes, bytes] = {}
        for name, value in values.items():
            if isinstance(value, str):
                literal = quote(value.encode(encoding))
            elif isinstance(value, bytes):
                literal = b"E'\\\\x" + value.hex().encode() + b"'::bytea"
            elif isinstance(value, datetime):
                utc = value if value.tzinfo is UTC else value.astimezone(UTC)
                literal = b"'" + utc.isoformat().encode() + b"'::timestamptz"
            elif type(value) is int:
                literal = str(value).encode()
            else:
                raise TypeError(f"{name}: {type(value).__name__} is not written as a literal here")
            literals[name.encode()] = literal
        with driver.lock:
            result = pgconn.exec_(template % literals)
        if result.status == pq.ExecStatus.COMMAND_OK:
            return True
        if result.status == pq.ExecStatus.FATAL_ERROR \
                and result.error_field(pq.DiagnosticField.SQLSTATE) == self.TAKEN:
            return False
        raise psycopg_errors.error_from_result(result, encoding=encoding)


KEEP_AND_COMMIT = KeptAndCommitted()


def advisory_lock_id(scope: str, key: str) -> int:
    """The key's PostgreSQL advisory lock: a signed 64-bit digest of (scope, key)."""
    digest = hashlib.blake2b(f"{scope}\n{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def _short_transaction(db: Database) -> Iterator[Connection]:
    """The claim's statements, each committed by itself: the INSERT that claims a fresh key is the whole work and
    every UPDATE below is conditional, so no BEGIN/COMMIT round trips are needed (on SQLite no BEGIN IMMEDIATE:
    each statement takes the write lock for itself)."""
    options = {"isolation_level": "AUTOCOMMIT"} if db.is_postgresql else NO_TRANSACTION
    with db.engine.connect().execution_options(**options) as conn:
        yield conn


def check(conn: Connection, scope: str, key: str, print_: str, hours: int) -> Outcome:
    """In the request's transaction: the key's advisory lock on PostgreSQL (on SQLite the caller holds the write
    lock) and its row (see the module's docstring)."""
    now = utcnow()
    free, found = SEND_CHECK(conn, {"lock": advisory_lock_id(scope, key), "scope": scope, "key": key}).one()
    if not free:
        return InUse(1)
    held = Held(scope, key, print_, hours)
    row = conn.execute(ROW, {"scope": scope, "key": key}).first() if found else None
    if row is None or row.expires_at <= now:
        return held
    if row.fingerprint != print_:
        return Reused()
    if row.status == "complete":
        return Replay(row.response_status, dict(row.response_headers), bytes(row.response_body or b""))
    if row.locked_at is None or row.locked_at <= now - LOCK:  # a page's claim whose process died: replaced
        return held
    return InUse(max(1, min(int((row.locked_at + LOCK - now).total_seconds()) + 1, 5)))


def _after_taken(conn: Connection, held: Held) -> Outcome:
    """What an unchecked key's request answers once its store found the key taken, checked now in a transaction
    of its own. The caller was signed in a moment ago (the operation ran), so a stored answer is replayed as it
    is; a key that is free again (its holder rolled back) answers 409 as well: the retry then runs."""
    outcome = check(conn, held.scope, held.key, held.fingerprint, held.hours)
    return InUse(1) if isinstance(outcome, Held) else outcome


def claim(db: Database, scope_of: Callable[[Connection], str], key: str, print_: str, hours: int) -> Outcome:
    """Claim `key` for this request in one short transaction of its own (see the module's docstring)."""
    now, token = utcnow(), secrets.token_hex(16)
    with _short_transaction(db) as conn:
        scope = scope_of(conn)
        fresh = dict(fingerprint=print_, status="in_progress", lock_token=token, locked_at=now, response_status=None,
                     response_headers={}, response_body=None, created_at=now, expires_at=now + timedelta(hours=hours))
        inserted = conn.scalar(CLAIMS[conn.dialect.name], {"scope": scope, "key": key, **fresh})
        if inserted is not None:
            return Claim(inserted, token)
        row = conn.execute(select(KEYS).where(KEYS.c.scope == scope, KEYS.c.key == key)).one()
        if row.expires_at <= now:  # kept past its time and not yet cleaned up: a new request
            taken = conn.execute(update(KEYS).where(KEYS.c.id == row.id, KEYS.c.expires_at == row.expires_at)
                                 .values(**fresh)).rowcount
            return Claim(row.id, token) if taken else InUse(1)
        if row.fingerprint != print_:
            return Reused()
        if row.status == "complete":
            return Replay(row.response_status, dict(row.response_headers), bytes(row.response_body or b""))
        if row.locked_at is None or row.locked_at <= now - LOCK:  # its process died: take it over
            taken = conn.execute(update(KEYS).where(KEYS.c.id == row.id, KEYS.c.lock_token == row.lock_token)
                                 .values(lock_token=token, locked_at=now)).rowcount
            if taken:
                return Claim(row.id, token)
        left = (row.locked_at + LOCK - now).total_seconds() if row.locked_at else 1
        return InUse(max(1, min(int(left) + 1, 5)))


def store(session: Session, held: Claim | Held, status: int, headers: dict[str, str], body: bytes, *,
          commit: bool = False) -> None:
    """Keep the answer in the transaction of the change. A lock taken over meanwhile (this request ran longer than
    LOCK), or a `Held` key another request committed first, refuses, and the change rolls back with it: only one of
    the two may count. With `commit` (the caller commits right after: nothing else is sent in the transaction), a
    `Held` key on PostgreSQL is kept with the COMMIT in one round trip (`KeptAndCommitted`); the session's pending
    changes are flushed first, so that the commit has them all."""
    answer = {"response_status": status, "response_headers": headers, "response_body": body}
    if isinstance(held, Held):
        now, conn = utcnow(), session.connection()
        values = {"scope": held.scope, "key": held.key, "fingerprint": held.fingerprint, "created_at": now,
                  "expires_at": now + timedelta(hours=held.hours), "stale": now - LOCK, **answer,
                  "response_headers": json.dumps(headers)}
        postgresql = conn.dialect.name == "postgresql"
        if postgresql:
            values["lock"] = advisory_lock_id(held.scope, held.key)
        if postgresql and commit:  # what the session's commit would write first, then flush
            write_rows_kept_for_commit(session)
            session.flush()
            done = KEEP_AND_COMMIT(conn, values)
        else:
            done = SEND_KEEP(conn, values).rowcount > 0
    else:
        done = SEND_STORE(session.connection(), {"held_id": held.id, "held_lock": held.lock_token,
                                                 **answer}).rowcount > 0
    if not done:
        if isinstance(held, Held) and not held.checked:
            raise Taken
        raise Conflict("Another request with this Idempotency-Key took over; try again.",
                       code="idempotency_key_in_use", headers={"Retry-After": "1"})
    held.stored = True


def release(session: Session, held: Claim) -> None:
    session.connection().execute(delete(KEYS).where(KEYS.c.id == held.id, KEYS.c.lock_token == held.lock_token))


def purge_expired(db: Database, batch: int = 1000) -> int:
    """Forget keys past their time (the outbox worker calls it now and then); returns how many went."""
    with db.engine.begin() as conn:
        ids = list(conn.scalars(select(KEYS.c.id).where(KEYS.c.expires_at <= utcnow()).limit(batch)))
        if ids:
            conn.execute(delete(KEYS).where(KEYS.c.id.in_(ids)))
        return len(ids)


def storable(response: Response) -> bool:
    """A final answer: a success or a refusal that the same request would get again; not 401/403 (signing in may
    change them), 429 or anything else with a Retry-After, nor a 5xx."""
    status = response.status_code
    return (status < 400 or status in FINAL_REFUSALS) and "retry-after" not in response.headers


def _stored_headers(response: Response) -> dict[str, str]:
    """STORED_HEADERS as `response.headers[name]` gives them (the first of a name), in one pass over its raw list."""
    stored: dict[str, str] = {}
    for raw_name, raw_value in response.raw_headers:
        name = raw_name.decode("latin-1")
        if name in STORED_HEADERS and name not in stored:
            stored[name] = raw_value.decode("latin-1")
    return stored


_CRASH_TOKEN = os.environ.get(CRASH_TOKEN_ENV, "")  # read once: a missing variable costs a KeyError per lookup


def _crash_hook_armed(request: Request) -> bool:
    """The fault test's hook: the process kills itself right after the commit, before answering. Only when the
    environment the process started with names a token of 32+ characters AND the request sends it; never with
    secure cookies (production)."""
    token = _CRASH_TOKEN
    if len(token) < 32 or request.app.state.settings.cookie_secure:
        return False
    return hmac.compare_digest(request.headers.get(CRASH_HEADER, "").encode(), token.encode())


def _keep(request: Request, session: Session, held: Claim | Held, status: int, headers: dict[str, str],
          body: bytes, *, commit: bool = False) -> None:
    try:
        store(session, held, status, headers, body, commit=commit)
    except Taken:
        session.rollback()  # the change goes; the key's first answer (or a 409 while its request runs) comes instead
        try:
            outcome = _after_taken(session.connection(), held)
        finally:
            session.rollback()  # the check's transaction (and on PostgreSQL the key's lock) ends here
        raise Answered(outcome) from None
    if _crash_hook_armed(request):
        log.warning("test crash hook: this process ends after the commit")
        event.listen(session, "after_commit", lambda _s: os.kill(os.getpid(), signal.SIGKILL))


def store_answer(request: Request, session: Session, body: Any, status: int | None = None) -> None:
    """For an endpoint that commits its own transaction: store its JSON answer in that transaction (call it inside
    the `with db.transaction()` block). Without a claimed key it does nothing."""
    held: Claim | Held | None = getattr(request.state, "idempotency", None)
    if held is None:
        return
    route = request.scope.get("route")
    code = status or getattr(route, "status_code", None) or 200
    _keep(request, session, held, code, {"content-type": "application/json"},
          json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


class _Owners:
    """Token digest -> "staff:ID" / "contact:ID", the newest 10,000 (a dict keeps insertion order)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size, self.items, self.lock = size, dict[str, str](), threading.Lock()

    def get(self, digest: str) -> str | None:
        return self.items.get(digest)

    def put(self, digest: str, owner: str) -> None:
        with self.lock:
            self.items[digest] = owner
            while len(self.items) > self.size:
                self.items.pop(next(iter(self.items)))


OWNERS = _Owners()
# Other kinds of bearer tokens (a storefront's backend credential): (connection, token digest) -> "kind:id" or None.
TOKEN_OWNERS: list[Callable[[Connection, str], str | None]] = []


def _owner(conn: Connection, digest: str) -> str | None:
    row = conn.execute(select(AuthSession.staff_user_id, AuthSession.contact_id)
                       .where(AuthSession.token_digest == digest)).first()
    if row is not None:
        return f"staff:{row.staff_user_id}" if row.staff_user_id else f"contact:{row.contact_id}"
    return next((owner for find in TOKEN_OWNERS if (owner := find(conn, digest)) is not None), None)


def _scope(request: Request) -> Callable[[Connection], str]:
    """The caller the key belongs to: the staff user or contact of the bearer token (or the storefront client of a
    backend credential, see TOKEN_OWNERS), else an anonymous visitor of
    the storefront in the path (registration, claims, resets). Visitors share one scope per storefront; the keyed
    fingerprint covers the whole body, so only someone who sends the very same request (password and all) can get
    its stored answer, which tells them nothing they did not send."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    slug = str(request.path_params.get("slug", ""))[:60]

    def scope_of(conn: Connection) -> str:
        if scheme.lower() == "bearer" and token.strip():
            digest = token_digest(token.strip())
            owner = OWNERS.get(digest)
            if owner is None:
                owner = _owner(conn, digest)
                if owner is not None:  # a token's owner never changes: kept (whether it still works is not ours)
                    OWNERS.put(digest, owner)
            if owner is not None:
                return owner
        for name, value in request.cookies.items():  # a storefront's browser session calling the API
            if name.removeprefix("__Host-").startswith("accountdesk_sf_"):
                return f"session:{token_digest(value)[:40]}"
        return f"visitor:{slug}"

    return scope_of


def _credential(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return next((value for name, value in request.cookies.items()
                 if name.removeprefix("__Host-").startswith("accountdesk_sf_")), None)


def _credential_works(request: Request, conn: Connection) -> bool:
    """Before a replay: the token or session cookie the key's scope came from is still signed in (scopes are
    cached per token, and a stored answer is no less private than the operation)."""
    token = _credential(request)
    if token is None:
        return True
    row = conn.execute(select(AuthSession.revoked_at, AuthSession.expires_at)
                       .where(AuthSession.token_digest == token_digest(token))).first()
    return row is None or (row.revoked_at is None and row.expires_at > utcnow())


KEY_CHECK = "accountdesk_key_check"  # session.info: the key's check, left for the endpoint's thread (ApiRoute)
KEEPS_ANSWER = "accountdesk_keeps_answer"  # session.info: the request of a held key, whose answer is stored before
# the commit


async def _request_session(request: Request, session: DbSession) -> None:
    """The request's session, and the check of its Idempotency-Key: the key is held (`request.state.idempotency`)
    or `Answered` says what to answer instead of running the operation. The check runs in the thread hop of the
    endpoint when its route ends the transaction there (`ApiRoute.ends_in_thread`), else in one of its own; a
    request without a key goes to no thread for it."""
    request.state.idempotent_session = session
    pending: Pending | None = getattr(request.state, "idempotency_pending", None)
    if pending is None:
        return
    if getattr(request.scope.get("route"), "ends_in_thread", False):
        session.info[KEY_CHECK] = partial(_check_key, request, session, pending)
        return
    await run_in_threadpool(_check_key, request, session, pending)


def _check_key(request: Request, session: Session, pending: Pending) -> None:
    db, hours = request.app.state.db, request.app.state.settings.idempotency_key_hours
    works = False
    route = request.scope.get("route")
    if getattr(route, "checks_by_storing", False):
        request.state.idempotency = Held(_scope(request)(session.connection()), pending.key, pending.fingerprint,
                                         hours, checked=False)
        session.info[KEEPS_ANSWER] = request
        return
    if getattr(route, "in_session", False) and (db.is_postgresql or getattr(route, "ends_in_thread", False)):
        serialise(session)  # SQLite: the write lock, from here to the commit (PostgreSQL: the check's own lock)
        conn = session.connection()
        outcome = check(conn, _scope(request)(conn), pending.key, pending.fingerprint, hours)
        works = isinstance(outcome, Replay) and _credential_works(request, conn)
    else:
        outcome = claim(db, _scope(request), pending.key, pending.fingerprint, hours)
        if isinstance(outcome, Replay):
            with _short_transaction(db) as conn:
                works = _credential_works(request, conn)
    if isinstance(outcome, Claim | Held):
        request.state.idempotency = outcome
        session.info[KEEPS_ANSWER] = request
    elif not isinstance(outcome, Replay) or works:
        raise Answered(outcome)
    # else a signed-out token: no stored answer, the operation runs without the key (and says 401)


# Documented by ApiRoute (`openapi_extra`) and read by it: a header parameter would be parsed and validated by
# FastAPI on every request that sends it, for nothing
KEY_PARAMETER = {"name": HEADER, "in": "header", "required": False,
                 "description": "A unique value per operation (a UUID); the same key again within "
                                "ACCOUNTDESK_IDEMPOTENCY_KEY_HOURS gets the first answer (with "
                                f"`{REPLAYED}: true`) instead of a second change",
                 "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY, "title": HEADER}}


async def idempotency_key() -> None:
    """Marks an operation that accepts an Idempotency-Key; ApiRoute does the work (and never calls this)."""


async def idempotency_key_in_transaction() -> None:
    """`idempotency_key` of an operation whose every effect is in the request's transaction (see ApiRoute)."""


MARKERS = (idempotency_key, idempotency_key_in_transaction)
IDEMPOTENT = Depends(idempotency_key)
# For an operation that changes nothing outside the request's transaction (rows, outbox messages; no ERP call, no
# mail sent by itself, no rate limit spent): its key is checked by storing its answer (`ApiRoute.checks_by_storing`)
IDEMPOTENT_IN_TRANSACTION = Depends(idempotency_key_in_transaction)
RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "`idempotency_key_in_use`: a request with this Idempotency-Key is "
                                             "still running; retry after Retry-After (or another conflict)"},
    422: {"model": ErrorBody, "description": "`idempotency_key_reused`: this Idempotency-Key was sent with another "
                                             "request (method, path or body) (or invalid fields)"},
}


class ApiRoute(APIRoute):
    """Route class of the JSON API: an operation with `dependencies=[IDEMPOTENT]` accepts an Idempotency-Key.

    A sync endpoint that takes the request's session (`session: DbSession`) runs its key's check, itself, the
    rendering of its answer (validated by its response model and serialised as FastAPI would, `rendered`), the
    storing of that answer with a held key, and the commit in one trip to the thread pool (`ends_in_thread`):
    FastAPI would have taken one more for the commit, one for the response model's validation and one to store the
    key's answer. Not where a dependency other than the endpoint may set the answer's status or headers (a
    `Response` parameter): there FastAPI renders the answer, which is stored and committed in one more trip
    (`finish`).

    Such an endpoint marked `IDEMPOTENT_IN_TRANSACTION` checks its key by storing its answer (`checks_by_storing`):
    no statement before it runs; the one that stores the answer writes the key's row only if the key is new (or
    expired, or its claim's process died) and, on PostgreSQL, free (its advisory lock). Otherwise the change is
    rolled back and the request answers as a checked one would have: the first answer, 422 for another request,
    409 while the first one runs. A repeat costs a run of the operation, a new key one statement instead of two, and
    on PostgreSQL no round trip of its own: that statement goes with the COMMIT (`KeptAndCommitted`) (issue 13: a
    key adds under 5 % to an account creation). Marked so: creating an account, adding a contact, an address, an
    invoice or a payment method."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, dependencies: Any = None, responses: Any = None,
                 **kwargs: Any) -> None:
        markers = [d.dependency for d in dependencies or [] if getattr(d, "dependency", None) in MARKERS]
        dependencies = [d for d in dependencies or [] if getattr(d, "dependency", None) not in MARKERS]
        self.idempotent = bool(markers)
        if self.idempotent:
            extra = kwargs.get("openapi_extra") or {}
            kwargs["openapi_extra"] = {**extra, "parameters": [*extra.get("parameters", []), KEY_PARAMETER]}
            if not any(getattr(d, "dependency", None) is _request_session for d in dependencies):
                dependencies.insert(0, Depends(_request_session))
            responses = {**RESPONSES, **(responses or {})}
        self.ends_in_thread, self.checks_by_storing, self.session_parameter = False, False, ""
        sync = not inspect.iscoroutinefunction(endpoint)
        super().__init__(path, self._in_one_hop(endpoint) if sync else endpoint, dependencies=dependencies,
                         responses=responses, **kwargs)
        # The change is made in the request's session (not in a transaction of the endpoint's own, whose second
        # connection a key held by the session's transaction would keep waiting in a burst): a `Held` key fits.
        session = DbSession.__metadata__[0].dependency
        self.session_parameter = next((d.name for d in self.dependant.dependencies if d.call is session and d.name),
                                      None) or ""
        self.in_session = bool(self.session_parameter)
        self.ends_in_thread = sync and self.in_session and not any(
            d.response_param_name for d in _dependants(self.dependant) if d is not self.dependant)
        self.checks_by_storing = self.ends_in_thread and idempotency_key_in_transaction in markers

    def _in_one_hop(self, endpoint: Callable[..., Any]) -> Callable[..., Any]:
        route = self

        @functools.wraps(endpoint)
        def run(**values: Any) -> Any:
            if not route.ends_in_thread:
                return endpoint(**values)
            session: Session = values[route.session_parameter]
            key_check = session.info.pop(KEY_CHECK, None)
            if key_check is not None:
                key_check()
            answer = endpoint(**values)
            name = route.dependant.response_param_name
            response = route.rendered(answer, values[name] if name else None)  # before the commit: a refused
            request: Request | None = session.info.pop(KEEPS_ANSWER, None)      # answer changes nothing
            if request is not None:
                if not storable(response):
                    return response  # `finish` releases the key and commits
                _keep(request, session, request.state.idempotency, response.status_code, _stored_headers(response),
                      bytes(response.body), commit=True)  # PostgreSQL: with the COMMIT; end_now then sends none
            end_now(session)
            return response  # FastAPI sends a Response as it is; `finish` sees the key's answer stored

        return run

    def rendered(self, answer: Any, sub: Response | None) -> Response:
        """The answer as FastAPI renders what an endpoint returns (routing's get_request_handler): validated and
        serialised by the response model (or as JSON without one), with the route's status code and what the
        endpoint set on its `Response`."""
        if isinstance(answer, Response):
            return answer
        status = self.status_code or (sub.status_code if sub is not None else None)
        if sub is not None and sub.status_code:
            status = sub.status_code
        args = {"status_code": status} if status else {}
        default = isinstance(self.response_class, DefaultPlaceholder)
        kind = self.response_class.value if isinstance(self.response_class, DefaultPlaceholder) \
            else self.response_class
        field = self.response_field
        response: Response
        if field is None:
            response = kind(jsonable_encoder(answer), **args)
        else:
            value, errors = field.validate(answer, {}, loc=("response",))
            if errors:
                raise ResponseValidationError(errors=errors, body=answer)
            options = {"include": self.response_model_include, "exclude": self.response_model_exclude,
                       "by_alias": self.response_model_by_alias, "exclude_unset": self.response_model_exclude_unset,
                       "exclude_defaults": self.response_model_exclude_defaults,
                       "exclude_none": self.response_model_exclude_none}
            response = Response(field.serialize_json(value, **options), media_type="application/json", **args) \
                if default else kind(field.serialize(value, **options), **args)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        if sub is not None:
            response.headers.raw.extend(sub.headers.raw)
        return response

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.idempotent:
            return handler

        async def idempotent_handler(request: Request) -> Response:
            raw = request.headers.get(HEADER)
            if raw is None:
                return await handler(request)
            request.state.idempotency_pending = Pending(parse_key(raw), await request_fingerprint(request))
            try:
                return await run_claimed(request, handler)
            except Answered as answered:
                outcome = answered.outcome
            if isinstance(outcome, InUse):
                raise Conflict("A request with this Idempotency-Key is still running; try again shortly.",
                               code="idempotency_key_in_use", headers={"Retry-After": str(outcome.retry_after)})
            if isinstance(outcome, Reused):
                raise ValidationFailed("This Idempotency-Key was used for another request; send a new key.",
                                       code="idempotency_key_reused")
            assert isinstance(outcome, Replay)
            return outcome.response()

        return idempotent_handler


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    stack = [dependant]
    while stack:
        item = stack.pop()
        yield item
        stack.extend(item.dependencies)


def _target(request: Request) -> str:
    """`request.url`'s path and query, as fingerprints have always been made of, without building the URL."""
    path = request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query = request.scope.get("query_string", b"").decode()
    return f"{path}?{query}" if query else path


async def request_fingerprint(request: Request) -> str:
    target = _target(request)
    return fingerprint(request.app.state.settings.secret_key, request.method, target, await request.body(),
                       request.headers.get("content-type", ""))


async def claim_for(request: Request, key: str, scope: str) -> Outcome:
    """A page form's key, claimed before the page runs (its scope is the browser)."""
    print_ = await request_fingerprint(request)
    return await run_in_threadpool(claim, request.app.state.db, lambda _conn: scope, key, print_,
                                   request.app.state.settings.idempotency_key_hours)


def _session_of(request: Request) -> Session | None:
    return getattr(request.state, "idempotent_session", None) or getattr(request.state, "page_session", None)


async def _release(request: Request, held: Claim | Held | None) -> None:
    session = _session_of(request)
    if session is not None:
        session.rollback()  # first: on SQLite its write lock would keep our own release waiting; a Held key goes
    if not isinstance(held, Claim):
        return

    def work() -> None:
        with request.app.state.db.transaction() as own:
            release(own, held)

    await run_in_threadpool(work)


async def finish(request: Request, held: Claim | Held, response: Response, keep: bool) -> None:
    """Store `response` (or, when not `keep`, release the key) in the request's transaction, committed with the
    change; without one (an error before any session), in a transaction of its own."""
    if held.stored:
        return
    session = _session_of(request)

    def work(target: Session) -> None:
        if keep:
            _keep(request, target, held, response.status_code, _stored_headers(response), bytes(response.body))
        elif isinstance(held, Claim):
            release(target, held)

    if session is not None:
        ends = session is getattr(request.state, "idempotent_session", None) \
            and getattr(request.scope.get("route"), "ends_in_thread", False)
        await run_in_threadpool(partial(_work_and_end, work) if ends else work, session)
    else:
        def own() -> None:
            with request.app.state.db.transaction() as fresh:
                work(fresh)

        await run_in_threadpool(own)


def _work_and_end(work: Callable[[Session], None], session: Session) -> None:
    work(session)
    end_now(session)


async def run_claimed(request: Request, handler: Callable[[Request], Coroutine[Any, Any, Response]],
                      held: Claim | None = None, keep: Callable[[Response], bool] = storable) -> Response:
    """Run the request that holds the key (a page's `held` claim, or what the session dependency holds) and keep
    its answer when `keep` says it is final; release the key otherwise, or when anything goes wrong, so that a
    retry runs again."""
    if held is not None:
        request.state.idempotency = held
    try:
        response = await handler(request)
    except Answered:
        raise
    except (AppError, IntegrityError) as exc:
        held = getattr(request.state, "idempotency", None)
        if held is None:
            raise
        error = conflict_from_integrity_error(exc) if isinstance(exc, IntegrityError) else exc
        response = error_response(error.status_code, error.code, error.message, error.fields, error.headers,
                                  language=i18n.request_language(request))
        if not storable(response):
            await _release(request, held)
            raise
        session = _session_of(request)
        if session is not None:
            session.rollback()  # the refused change goes; the stored refusal is committed alone
        await finish(request, held, response, keep=True)
        return response
    except BaseException:
        await _release(request, getattr(request.state, "idempotency", None))
        raise
    held = getattr(request.state, "idempotency", None)
    if held is None:
        return response
    try:
        await finish(request, held, response, keep=keep(response))
    except BaseException:
        await _release(request, held)
        raise
    return response


async def wait_for_answer(request: Request, key: str, scope: str, seconds: float = 10.0) -> Outcome:
    """A page's double submit: the second POST waits for the first one's answer, which the browser then shows."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        outcome = await claim_for(request, key, scope)
        if not isinstance(outcome, InUse) or asyncio.get_running_loop().time() > deadline:
            return outcome
        await asyncio.sleep(0.05)


def form_key_field() -> Markup:
    """A form's hidden key (next to its CSRF token): a double click or a browser's resend of the form changes
    nothing twice and shows the first answer."""
    return Markup(f'<input type="hidden" name="{FORM_FIELD}" value="{secrets.token_urlsafe(18)}">')


templates.env.globals["form_key_field"] = form_key_field
