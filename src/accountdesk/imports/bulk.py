"""New rows written a chunk at a time, as the database takes them fastest: ids for the whole chunk in one statement,
then one COPY (PostgreSQL) or one executemany of a single prepared INSERT (SQLite). Values go through the columns'
own types (SQLAlchemy's bind processing) and missing ones get the columns' defaults, as an ORM or Core INSERT would
give them; what SQLAlchemy would add per row (statement rendering, parameter dictionaries) is left out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from enum import Enum
from operator import itemgetter
from types import TracebackType
from typing import Any

from sqlalchemy import Column, Connection, Table, text
from sqlalchemy.orm import Session

_MISSING = object()


class JsonText(str):
    """A JSON column's value given as its JSON text, as the column's type would write it (json.dumps): stored as it
    is, without being parsed or written again."""


class Writer:
    """PostgreSQL's COPYs sent from a thread of their own, one after another in the order given, so that the
    importing process goes on (makes the next table's rows, reads and checks the next chunk) while the database
    takes them in: a COPY into a table with trigram indexes and foreign keys keeps the database busy for as long as
    making its rows keeps Python busy, and the two otherwise took turns. The connection is the thread's until
    wait() returns: nothing else may use it meanwhile (wait() first; leaving the `with` block waits too). The thread
    only streams rows already made; an error in a COPY is raised by the next wait()."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._sent: list[Future[None]] = []

    def send(self, job: Callable[[], None]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="import-copy")
        self._sent.append(self._pool.submit(job))

    def wait(self) -> None:
        """Until every COPY sent has been taken in; the first one's error, if any (the transaction is then broken,
        and the COPYs after it failed too)."""
        sent, self._sent = self._sent, []
        errors = [e for e in (future.exception() for future in sent) if e is not None]
        if errors:
            raise errors[0]

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            if error is None:
                self.wait()
            else:  # the connection is given back (to be rolled back) only once the thread is done with it
                for future in self._sent:
                    future.exception()
        finally:
            if self._pool is not None:
                self._pool.shutdown()


def take_ids(session: Session, table: Table, count: int) -> list[int]:
    """`count` new ids of `table`, for insert_rows(given_ids=): taken before COPYs are sent to a Writer (which then
    has the connection)."""
    return _take_ids(session.connection(), table, count) if count else []


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]], *, ids: bool = False,
                same: Mapping[str, Any] | None = None, given_ids: Sequence[int] | None = None,
                writer: Writer | None = None) -> list[int]:
    """Insert `rows` into `table`, each with the values of `same` too (the chunk's time, who imports: given once);
    with `ids`, return the new rows' ids in the order of `rows` (taken here, or `given_ids`, see take_ids). With a
    `writer` (PostgreSQL), the rows are made here and sent to it: the caller has flushed the session and takes no
    ids meanwhile."""
    if not rows:
        return []
    if writer is None:
        session.flush()  # anything the ORM holds goes first, as it would with session.execute
    connection = session.connection()
    same = same or {}
    given = set().union(*rows)
    columns = [c for c in table.c if c.name != "id" and (
        c.name in given or c.name in same or (c.default is not None and not c.default.is_sequence))]
    ids = ids or given_ids is not None
    new_ids = list(given_ids) if given_ids is not None else _take_ids(connection, table, len(rows)) if ids else []
    names = (["id"] if ids else []) + [c.name for c in columns]
    given_values = _given_values(rows, given)

    def column_values(column: Column[Any]) -> Sequence[Any]:
        if column.name in same:
            return [same[column.name]] * len(rows)
        return given_values.get(column.name) or [row.get(column.name, _MISSING) for row in rows]

    values = zip(*([new_ids] if ids else []), *(_column(connection, c, column_values(c)) for c in columns),
                 strict=True)
    quote = connection.dialect.identifier_preparer.quote
    columns_sql = ", ".join(quote(name) for name in names)
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        statement = f"COPY {quote(table.name)} ({columns_sql}) FROM STDIN"
        if writer is None:
            _copy(driver, statement, values)
        else:
            made = list(values)
            writer.send(lambda: _copy(driver, statement, made))
    else:
        marks = ", ".join("?" for _ in names)
        driver.cursor().executemany(f"INSERT INTO {quote(table.name)} ({columns_sql}) VALUES ({marks})", values)
    return new_ids


def _copy(driver: Any, statement: str, values: Any) -> None:
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in values:
            copy.write_row(row)


def _given_values(rows: list[dict[str, Any]], given: set[str]) -> dict[str, tuple[Any, ...]]:
    """Each given column's values, when every row gives every one of them (the usual case: rows made alike), read
    out of the rows and turned into columns in C; else nothing (each column is then read row by row)."""
    if len(given) < 2 or len(set(map(len, rows))) != 1 or len(rows[0]) != len(given):
        return {}
    names = list(given)
    return dict(zip(names, zip(*map(itemgetter(*names), rows), strict=True), strict=True))


def _column(connection: Connection, column: Column[Any], values: Sequence[Any]) -> Sequence[Any]:
    """One column's values for every row, as the driver takes them: a column at a time, so that each step (the
    default for a missing value, an enum's value, the type's bind processing) is one pass in C, or is skipped."""
    default, process = column.default, column.type._cached_bind_processor(connection.dialect)
    if _MISSING in values:
        if default is not None and default.is_callable:
            values = [default.arg(None) if v is _MISSING else v for v in values]
        else:
            scalar = default.arg if default is not None and default.is_scalar else None
            values = [scalar if v is _MISSING else v for v in values]
    kinds = set(map(type, values))
    if JsonText in kinds and process is not None:
        return values if kinds == {JsonText} else [v if type(v) is JsonText else process(v) for v in values]
    if any(issubclass(kind, Enum) for kind in kinds):
        values = [v.value if isinstance(v, Enum) else v for v in values]
    if process is None:
        return values
    if len(set(map(id, values))) == 1:  # the very same value throughout (a chunk's time, a default): once
        return [process(values[0])] * len(values)
    return list(map(process, values))


def _take_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """`count` ids the table's own counter would give: PostgreSQL's sequence, advanced in one statement; SQLite's
    next rowids (the import's transaction began IMMEDIATE, so no other writer comes in between)."""
    if connection.dialect.name == "postgresql":
        query = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)")
        return sorted(connection.execute(query, {"table": table.name, "count": count}).scalars())
    last = connection.execute(text(f"SELECT coalesce(max(id), 0) FROM {table.name}")).scalar_one()
    return list(range(last + 1, last + 1 + count))
