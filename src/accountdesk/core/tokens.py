"""Single-use link tokens: issued as random strings, kept as digests, consumed once before they expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from accountdesk.core.db import utcnow
from accountdesk.core.models import SingleUseToken
from accountdesk.core.security import new_token, token_digest

# Built once and sent on the session's connection (Core): nothing reads a new token back in the transaction that made
# it, so the row is written, not tracked, and costs the commit no unit of work. (The person a token is for has an id,
# so its row is already written.)
ISSUE = insert(SingleUseToken.__table__)


def issue(session: Session, purpose: str, lifetime: timedelta, *, contact_id: int | None = None,
          staff_user_id: int | None = None, data: dict[str, Any] | None = None, supersede: bool = True) -> str:
    """Create a token; by default earlier unused tokens of the same purpose for the same person stop working."""
    if supersede and (contact_id or staff_user_id):
        session.execute(update(SingleUseToken)
                        .where(SingleUseToken.purpose == purpose, SingleUseToken.used_at.is_(None),
                               SingleUseToken.contact_id == contact_id,
                               SingleUseToken.staff_user_id == staff_user_id)
                        .values(used_at=utcnow()))
    token = new_token()
    session.connection().execute(ISSUE, {
        "token_digest": token_digest(token), "purpose": purpose, "contact_id": contact_id,
        "staff_user_id": staff_user_id, "data": data or {}, "expires_at": utcnow() + lifetime})
    return token


def peek(session: Session, purpose: str, token: str) -> SingleUseToken | None:
    """The token if it is valid now, without using it (to show a form before the final step)."""
    row = session.scalar(select(SingleUseToken).where(SingleUseToken.token_digest == token_digest(token),
                                                      SingleUseToken.purpose == purpose))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def consume(session: Session, purpose: str, token: str) -> SingleUseToken | None:
    """Use a token once: the conditional UPDATE lets exactly one of two racing requests win."""
    now = utcnow()
    token_id = session.execute(
        update(SingleUseToken)
        .where(SingleUseToken.token_digest == token_digest(token), SingleUseToken.purpose == purpose,
               SingleUseToken.used_at.is_(None), SingleUseToken.expires_at > now)
        .values(used_at=now).returning(SingleUseToken.id)
    ).scalar_one_or_none()
    return session.get(SingleUseToken, token_id) if token_id is not None else None
