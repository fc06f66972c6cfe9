"""Audit history: record who changed what on which record, in the same transaction as the change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any

from sqlalchemy.orm import Session

from accountdesk.core.db import write_at_commit
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


def created_json(values: dict[str, Any]) -> str:
    """json.dumps(created(values)), the very same text, written without the change list's lists and dict (bulk
    writers make thousands of them at a time)."""
    if not SECRET_FIELDS.isdisjoint(values):
        return json.dumps(created(values))
    return "{" + ", ".join([f"{_quoted(k)}: [null, {_quoted(v) if type(v) is str else _json_value(v)}]"
                            for k, v in values.items()]) + "}"


def _json_value(value: Any) -> str:
    if isinstance(value, str):  # a StrEnum's member
        return _quoted(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(_plain(value))


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
    write_at_commit(session, event)
    return event
