"""Never-reused counters (account numbers per prefix, order numbers).

On PostgreSQL a number is taken in a short transaction of its own, so concurrent registrations never queue on the
counter row while their own transactions run; a number whose transaction later rolls back is skipped, never reused.
On SQLite every write transaction already holds the database's write lock, so the number is taken in it."""

from __future__ import annotations

from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accountdesk.core.models import NumberSequence


def next_value(session: Session, name: str) -> int:
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return _next(session.connection(), name)
    with bind.engine.connect() as conn:
        value = _next(conn, name)
        conn.commit()
        return value


def _next(conn: Connection, name: str) -> int:
    stmt = (update(NumberSequence).where(NumberSequence.name == name)
            .values(last_value=NumberSequence.last_value + 1).returning(NumberSequence.last_value))
    value = conn.execute(stmt).scalar_one_or_none()
    if value is not None:
        return value
    try:
        with conn.begin_nested():
            conn.execute(insert(NumberSequence).values(name=name, last_value=0))
    except IntegrityError:
        pass  # another transaction created it first; the UPDATE below waits for it
    return conn.execute(stmt).scalar_one()
