"""Server-side sessions for the console and storefronts and staff API tokens: revocable, stored as digests."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from accountdesk.core.db import utcnow
from accountdesk.core.models import AuthSession
from accountdesk.core.security import new_token, token_digest

# Called with (session, contact_id, keep_id) whenever a contact is signed out everywhere (deactivated, expired,
# password changed, "sign out everywhere"), in the same transaction: the OpenID Connect provider ends the sessions of
# the storefront's relying parties too. Domains register here because core may not import them.
CONTACT_SIGN_OUT_HOOKS: list[Callable[[Session, int, int | None], None]] = []


# Built once and sent on the session's connection (Core): the row is written, not tracked, so a sign-in's commit has no
# unit of work to sort and flush (which cost more than the statement itself).
OPEN = insert(AuthSession.__table__)


def open_session(session: Session, kind: str, lifetime: timedelta, *, staff_user_id: int | None = None,
                 contact_id: int | None = None, data: dict[str, Any] | None = None) -> str:
    """A new session id every time (sign-in never reuses one), written in the session's transaction; returns the
    token for the cookie or header. Rows the session still holds unwritten are written first, so that the writes
    keep the order in which they were made."""
    token = new_token()
    session.flush()
    session.connection().execute(OPEN, {
        "token_digest": token_digest(token), "kind": kind, "staff_user_id": staff_user_id, "contact_id": contact_id,
        "csrf_token": secrets.token_urlsafe(24), "expires_at": utcnow() + lifetime, "data": data or {}})
    return token


def find_session(session: Session, kind: str, token: str | None) -> AuthSession | None:
    if not token:
        return None
    row = session.scalar(select(AuthSession).where(AuthSession.token_digest == token_digest(token),
                                                   AuthSession.kind == kind))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    return row


def close_session(session: Session, row: AuthSession) -> None:
    row.revoked_at = utcnow()


def end_sessions(session: Session, *, contact_id: int | None = None, staff_user_id: int | None = None,
                 keep_id: int | None = None) -> int:
    """Sign a person out everywhere (optionally keeping the session that asked for it)."""
    stmt = update(AuthSession).where(AuthSession.revoked_at.is_(None))
    if contact_id is not None:
        stmt = stmt.where(AuthSession.contact_id == contact_id)
    elif staff_user_id is not None:
        stmt = stmt.where(AuthSession.staff_user_id == staff_user_id)
    else:
        raise ValueError("whose sessions?")
    if keep_id is not None:
        stmt = stmt.where(AuthSession.id != keep_id)
    ended = session.execute(stmt.values(revoked_at=utcnow())).rowcount or 0
    if contact_id is not None:
        for hook in CONTACT_SIGN_OUT_HOOKS:
            hook(session, contact_id, keep_id)
    return ended
