"""New rows written a chunk at a time, as the database takes them fastest: ids for the whole chunk in one statement,
then one COPY (PostgreSQL) or one executemany of a single prepared INSERT (SQLite). Values go through the columns'
own types (SQLAlchemy's bind processing) and missing ones get the columns' defaults, as an ORM or Core INSERT would
give them; what SQLAlchemy would add per row (statement rendering, parameter dictionaries) is left out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Connection, Table, text
from sqlalchemy.orm import Session

_MISSING = object()


class JsonText(str):
    """A JSON column's value given as its JSON text, as the column's type would write it (json.dumps): stored as it
    is, without being parsed or written again."""


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]], *, ids: bool = False,
                same: Mapping[str, Any] | None = None) -> list[int]:
    """Insert `rows` into `table`, each with the values of `same` too (the chunk's time, who imports: given once);
    with `ids`, return the new rows' ids in the order of `rows`."""
    if not rows:
        return []
    session.flush()  # anything the ORM holds goes first, as it would with session.execute
    connection = session.connection()
    same = same or {}
    given = set().union(*rows)
    columns = [c for c in table.c if c.name != "id" and (
        c.name in given or c.name in same or (c.default is not None and not c.default.is_sequence))]
    new_ids = _take_ids(connection, table, len(rows)) if ids else []
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
        with driver.cursor() as cursor, cursor.copy(f"COPY {quote(table.name)} ({columns_sql}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in names)
        driver.cursor().executemany(f"INSERT INTO {quote(table.name)} ({columns_sql}) VALUES ({marks})", values)
    return new_ids


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
