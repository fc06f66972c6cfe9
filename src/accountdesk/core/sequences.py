"""Never-reused counters. The UPDATE takes a row lock (PostgreSQL) or the write lock (SQLite) until commit."""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accountdesk.core.models import NumberSequence


def next_value(session: Session, name: str) -> int:
    stmt = (update(NumberSequence).where(NumberSequence.name == name)
            .values(last_value=NumberSequence.last_value + 1).returning(NumberSequence.last_value))
    value = session.execute(stmt).scalar_one_or_none()
    if value is not None:
        return value
    try:
        with session.begin_nested():
            session.execute(insert(NumberSequence).values(name=name, last_value=0))
    except IntegrityError:
        pass  # another transaction created it first; the UPDATE below waits for it
    return session.execute(stmt).scalar_one()
