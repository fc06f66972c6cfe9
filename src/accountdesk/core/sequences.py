"""Never-reused counters (account numbers per prefix, order numbers), taken in the caller's transaction by one
statement that creates the counter or moves it on and returns the new value. The counter row stays locked until
that transaction ends, so take a number as late in it as you can; a number whose transaction rolls back is taken
again by the next one (numbers are never reused by committed rows, and gaps do not occur)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from accountdesk.core.models import NumberSequence


def next_value(session: Session, name: str, count: int = 1) -> int:
    """The next value, in the request's own transaction; with `count` the last of a block of `count` values (a bulk
    import). A block is taken in its own short transaction on PostgreSQL: the import's long transaction would
    otherwise hold the sequence's row, and with it every other number, until it ends."""
    bind = session.get_bind()
    values = {"name": name, "count": count}
    # on the session's connection (Core): the ORM's handling of a statement on a mapped table costs more than the
    # statement itself, and there is nothing of the session's to flush first or to load back
    if bind.dialect.name != "postgresql":
        return session.connection().execute(TAKE["sqlite"], values).scalar_one()
    if count == 1:
        return session.connection().execute(TAKE["postgresql"], values).scalar_one()
    with bind.engine.connect() as conn:
        value = conn.execute(TAKE["postgresql"], values).scalar_one()
        conn.commit()
        return value


def _take(dialect: Any) -> Insert:
    stmt = dialect.insert(NumberSequence).values(name=bindparam("name"), last_value=bindparam("count"))
    stmt = stmt.on_conflict_do_update(index_elements=[NumberSequence.name],
                                      set_={"last_value": NumberSequence.last_value + bindparam("count")})
    return stmt.returning(NumberSequence.last_value)


# Built once: a statement object reused keeps its cache key (every account and order number takes one).
TAKE = {"sqlite": _take(sqlite), "postgresql": _take(postgresql)}


def peek(session: Session, name: str) -> int:
    """The last value taken, taking none (a dry run shows the numbers a real run would most likely give)."""
    return session.scalar(select(NumberSequence.last_value).where(NumberSequence.name == name)) or 0
