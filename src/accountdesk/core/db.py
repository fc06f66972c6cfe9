"""Engine, declarative base and the request-scoped session that commits or rolls back as one unit.

Transactions on SQLite work as PostgreSQL's READ COMMITTED does: reads take no lock (WAL, each read sees what was
committed when it ran), and a transaction begins, with `BEGIN IMMEDIATE`, at its first write: concurrent writers
queue for the write lock on busy_timeout, and a transaction never has to upgrade a read snapshot to a write (which
SQLite refuses once another writer committed in between). A request that decides on what it reads and then
writes takes the lock first: `serialise`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Insert,
    Integer,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite so that it stays the rowid alias and autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _sqlite_begin_at_first_write)
        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    # No server-side prepared statements: a generic plan chosen after five runs ignores the search words.
    kwargs.setdefault("connect_args", {"prepare_threshold": None})
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin_at_first_write)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_READS = ("SELECT", "PRAGMA", "EXPLAIN")
NO_TRANSACTION = {"accountdesk_no_transaction": True}  # execution options: on SQLite each statement commits alone


def _sqlite_begin_at_first_write(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    # Reads run on their own (no lock held); the first write (or savepoint) begins the transaction with the write
    # lock, which the transaction then holds until it ends. COMMIT and ROLLBACK are the driver's. With NO_TRANSACTION
    # a write commits by itself.
    if not cursor.connection.in_transaction and not statement.lstrip()[:7].upper().startswith(_READS) \
            and not conn.get_execution_options().get("accountdesk_no_transaction"):
        cursor.execute("BEGIN IMMEDIATE")


def serialise(session: Session, *keys: str) -> None:
    """Make the transactions that pass one of the same `keys` take turns from here until they end, so that what one
    reads next and decides on is not changed by another before it commits: PostgreSQL takes a transaction-level
    advisory lock on each key (in one order, in one statement); SQLite begins the write transaction now (its one
    write lock serialises every writer).

    Take it before the reads it protects, and only while no other request could need a thread of this one's to
    release it: every lock waiter holds a thread of the pool, which is why the pool is larger than the requests an
    app process takes at once (app.py)."""
    if session.get_bind().dialect.name == "postgresql":
        if not keys:
            return
        digests = (hashlib.blake2b(key.encode(), digest_size=8).digest() for key in sorted(set(keys)))
        session.connection().execute(  # on the connection (Core): no ORM handling of a statement that loads nothing
            select(*(func.pg_advisory_xact_lock(int.from_bytes(d, signed=True)) for d in digests)))
        return
    connection = session.connection().connection.dbapi_connection
    if connection is not None and not connection.in_transaction:
        connection.execute("BEGIN IMMEDIATE")


@event.listens_for(Session, "do_orm_execute")
def _sqlite_lock_for_update(state: ORMExecuteState) -> None:
    # SQLite has no SELECT … FOR UPDATE: a read meant to lock its rows begins the write transaction instead.
    if getattr(state.statement, "_for_update_arg", None) is not None and state.is_select \
            and state.session.get_bind().dialect.name == "sqlite":
        serialise(state.session)


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction has committed (not when it rolls back)."""
    session.info.setdefault("after_commit", []).append(action)


WRITTEN_AT_COMMIT = "written_at_commit"  # session.info: the rows `write_at_commit` was given


def write_at_commit(session: Session, row: Base) -> None:
    """`row`, just added, is one that nothing reads back through its object (an audit event, an e-mail): if it is
    still unwritten when the transaction (or savepoint) commits, it is written with the others of its table by one
    Core INSERT rather than by the unit of work, whose flush at commit cost more than its statements. Its object then
    leaves the session without an id. A flush before the commit writes it as any other row."""
    session.info.setdefault(WRITTEN_AT_COMMIT, []).append(row)


def flush_before_insert(session: Session) -> None:
    """Before an INSERT sent past the unit of work: write what the session holds unwritten, as an autoflush would,
    unless that is only rows kept for the commit (`write_at_commit`), which then stay in its one INSERT per table."""
    later = {id(row) for row in session.info.get(WRITTEN_AT_COMMIT, ())}
    if session.deleted or session.dirty or any(id(row) not in later for row in session.new):
        session.flush()


@event.listens_for(Session, "before_commit")
def write_rows_kept_for_commit(session: Session) -> None:
    """Write the rows given to `write_at_commit` that are still unwritten, one INSERT per table: before every commit
    of a session, and by whoever sends a COMMIT past the session (core.idempotency.KeptAndCommitted)."""
    rows = [row for row in session.info.pop(WRITTEN_AT_COMMIT, ()) if inspect(row).pending]
    batches: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}  # per table, in each the rows' order
    for table, values in map(_insert_values, rows):
        batches.setdefault((table, tuple(values)), []).append(values)
    for (table, _), batch in batches.items():
        session.connection().execute(_insert_into(table), batch)
    for row in rows:
        session.expunge(row)


@cache
def _insert_into(table: Table) -> Insert:
    return insert(table)


def _insert_values(row: Base) -> tuple[Table, dict[str, Any]]:
    """The row's table and the column values set on it (the columns' defaults fill in the rest, as in a flush)."""
    state = inspect(row)
    columns = state.mapper.column_attrs
    return state.mapper.local_table, {columns[key].columns[0].key: value for key, value in state.dict.items()
                                      if key in columns}


@contextmanager
def kept(session: Session) -> Iterator[Session]:
    """A step of its own, committed when the block ends whatever becomes of the request's `session`: for what a
    refusal must leave behind (a login marked expired and its e-mail, a warning to an owner). Pass it ids, not rows.
    It runs on another connection, so take it before `session` writes; on SQLite, once `session` holds the write
    lock, another connection would wait for the request's own lock, so the step then joins the request's
    transaction (a savepoint) and stays only if the request commits."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite" and session.in_transaction():
        connection = session.connection().connection.dbapi_connection
        if connection is not None and connection.in_transaction:
            with session.begin_nested():
                yield session
            return
    with Session(bind, expire_on_commit=False) as step:
        try:
            yield step
            step.commit()
        except BaseException:
            step.rollback()
            raise


class Database:
    """One engine and its session factory; the app, the worker and the tests each hold one."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @cached_property
    def unwaited(self) -> Engine:
        """Connections for writes that are cheap to make again, sent as statements that each commit by themselves
        and whose commits need not wait for the disk (a crash may lose the last few milliseconds of them): an issued
        access token, which then simply does not work. No BEGIN, COMMIT or SET LOCAL round trips.

        PostgreSQL: an engine of its own, autocommit with synchronous_commit off for its sessions, server-side
        prepared statements (reads by unique keys and INSERTs: a generic plan is the right one), and
        no ping when a connection is taken from the pool (a round trip on every grant): a connection the server has
        closed fails its first statement, which invalidates the pool, and the caller may run its write again.
        SQLite: the app's engine, each statement committing alone (in WAL with synchronous=NORMAL no commit waits
        for the disk)."""
        if not self.is_postgresql:
            return self.engine.execution_options(**NO_TRANSACTION)
        return make_engine(self.url, isolation_level="AUTOCOMMIT", pool_size=5, max_overflow=15, pool_pre_ping=False,
                           connect_args={"options": "-c synchronous_commit=off"})  # (prepare_threshold: psycopg's)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back when it raises; then runs the session's
        `after_commit` actions."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            for action in session.info.pop("after_commit", ()):
                action()

    def dispose(self) -> None:
        if "unwaited" in self.__dict__ and self.is_postgresql:
            self.unwaited.dispose()
        self.engine.dispose()
