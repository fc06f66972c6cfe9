"""Never-reused counters (account numbers per prefix, order numbers).

On PostgreSQL a number is taken in a short transaction of its own, so concurrent registrations never queue on the
counter row while their own transactions run; a number whose transaction later rolls back is skipped, never reused.
On SQLite every write transaction already holds the database's write lock, so the number is taken in it."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accountdesk.core.models import NumberSequence


def next_value(session: Session, name: str, count: int = 1) -> int:
    """The next value, or with `count` the last of a block of `count` values taken at once (a bulk import)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return _next(session.connection(), name, count)
    with bind.engine.connect() as conn:
        value = _next(conn, name, count)
        conn.commit()
        return value


def peek(session: Session, name: str) -> int:
    """The last value taken, taking none (a dry run shows the numbers a real run would most likely give)."""
    return session.scalar(select(NumberSequence.last_value).where(NumberSequence.name == name)) or 0


def _next(conn: Connection, name: str, count: int = 1) -> int:
    stmt = (update(NumberSequence).where(NumberSequence.name == name)
            .values(last_value=NumberSequence.last_value + count).returning(NumberSequence.last_value))
    value = conn.execute(stmt).scalar_one_or_none()
    if value is not None:
        return value
    try:
        with conn.begin_nested():
            conn.execute(insert(NumberSequence).values(name=name, last_value=0))
    except IntegrityError:
        pass  # another transaction created it first; the UPDATE below waits for it
    return conn.execute(stmt).scalar_one()
