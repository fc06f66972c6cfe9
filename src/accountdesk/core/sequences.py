"""Never-reused counters (account numbers per prefix, order numbers), taken in the caller's transaction by one
statement that creates the counter or moves it on and returns the new value. The counter row stays locked until
that transaction ends, so take a number as late in it as you can; a number whose transaction rolls back is taken
again by the next one (numbers are never reused by committed rows, and gaps do not occur)."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from accountdesk.core.models import NumberSequence


def next_value(session: Session, name: str) -> int:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(NumberSequence).values(name=name, last_value=1)
    stmt = stmt.on_conflict_do_update(index_elements=[NumberSequence.name],
                                      set_={"last_value": NumberSequence.last_value + 1})
    return session.execute(stmt.returning(NumberSequence.last_value)).scalar_one()
