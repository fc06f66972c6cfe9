"""Audit history: record who changed what on which record, in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from accountdesk.core.models import AuditEvent

SECRET_FIELDS = {"password", "password_hash"}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user, a contact, a visitor or the system."""

    type: str
    id: int | None = None
    label: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls("system", None, "system")


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


_AS_THEY_ARE = frozenset({str, int, float, bool, type(None)})  # what _plain gives back unchanged, known at a glance


def created(values: dict[str, Any]) -> dict[str, list[Any]]:
    """The change list of a new record: every field from nothing to its value."""
    return {k: [None, "•••" if k in SECRET_FIELDS else v if type(v) in _AS_THEY_ARE else _plain(v)]
            for k, v in values.items()}


def apply_changes(target: object, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Set attributes on a record and return {field: [old, new]} for those that really changed."""
    changes: dict[str, list[Any]] = {}
    for field, new in values.items():
        old = getattr(target, field)
        if old != new:
            setattr(target, field, new)
            changes[field] = ["•••", "•••"] if field in SECRET_FIELDS else [_plain(old), _plain(new)]
    return changes


def record(session: Session, actor: Actor, action: str, *, subject_type: str, subject_id: int,
           account_id: int | None, changes: dict[str, Any] | None = None, note: str = "") -> AuditEvent:
    event = AuditEvent(actor_type=actor.type, actor_id=actor.id, actor_label=actor.label, subject_type=subject_type,
                       subject_id=subject_id, account_id=account_id, action=action, changes=changes or {}, note=note)
    session.add(event)
    return event
