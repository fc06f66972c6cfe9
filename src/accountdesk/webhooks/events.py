"""The events endpoints can subscribe to, their payloads (small, versioned JSON) and `emit`, which services call in
the transaction of the change: one delivery row and one outbox row per endpoint that wants the event.

Every event of one account (its contacts, sign-ins, orders and ERP pushes too) shares a subject, and deliveries to one
endpoint about one subject go out in the order they were emitted (core.outbox orders rows by `subject_key`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import bindparam, event, or_, select
from sqlalchemy.orm import Session, SessionTransaction

from accountdesk.core import outbox
from accountdesk.core.db import utcnow
from accountdesk.webhooks.models import WebhookDelivery, WebhookEndpoint

KIND = "webhook"  # outbox kind
ENDPOINTS_READ = "webhook_endpoints"  # session.info key: the endpoints read in this transaction
VERSION = 1


class AccountData(BaseModel):
    account_id: int
    number: str
    kind: str
    status: str
    storefront_id: int | None


class ContactData(BaseModel):
    contact_id: int
    account_id: int
    account_number: str
    email: str
    role: str
    status: str
    storefront_id: int


class SignInData(BaseModel):
    contact_id: int
    account_id: int
    account_number: str
    storefront_id: int


class OrderData(BaseModel):
    order_id: int
    number: str
    account_id: int
    account_number: str
    status: str
    currency: str
    total_amount: str | None = Field(description="Decimal as text; null while the order is not priced")


class ErasedData(BaseModel):
    contact_id: int
    account_id: int
    storefront_id: int


class ErpPushData(BaseModel):
    account_id: int
    number: str
    erp_code: str | None = Field(description="The ERP customer code written back (succeeded)")
    error: str = Field("", description="Why the ERP refused the customer (failed)")


EVENTS: dict[str, tuple[type[BaseModel], str]] = {
    "account.created": (AccountData, "An account was created (by staff, a reseller, a registration or the ERP)."),
    "account.approved": (AccountData, "Staff approved a registration: the account is active."),
    "account.rejected": (AccountData, "Staff rejected a registration."),
    "account.updated": (AccountData, "Fields of an account changed (or it was activated again)."),
    "account.deactivated": (AccountData, "An account was deactivated."),
    "contact.created": (ContactData, "A login (contact) was created."),
    "contact.activated": (ContactData, "A login may sign in again, or was approved."),
    "contact.deactivated": (ContactData, "A login was deactivated or its request rejected."),
    "contact.expired": (ContactData, "A login unused for the storefront's inactivity period expired."),
    "contact.reverified": (ContactData, "An expired login confirmed its e-mail and is active again."),
    "contact.erased": (ErasedData, "A person's data was erased: the login keeps only its ids (forget what you hold)."),
    "login.signed_in": (SignInData, "A login signed in (only to endpoints that ask for it by name)."),
    "order.placed": (OrderData, "An order was placed."),
    "order.accepted": (OrderData, "A pending order was accepted."),
    "order.canceled": (OrderData, "A pending order was canceled."),
    "erp_push.succeeded": (ErpPushData, "A web account was created in the ERP; its ERP code is written back."),
    "erp_push.failed": (ErpPushData, "The ERP refused a web account (retries of an unreachable ERP are not failures)."),
}
EVENT_TYPES = tuple(EVENTS)
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


def event_body(event_type: str, data: dict[str, Any], at: datetime) -> str:
    """The JSON text sent (and signed): {"type", "timestamp", "version", "data"}."""
    stamp = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": stamp, "version": VERSION, "data": data},
                      separators=(",", ":"), ensure_ascii=False)


def subject_key(endpoint_id: int, subject: str) -> str:
    return f"webhook-{endpoint_id}-{subject}"


def outbox_payload(delivery: WebhookDelivery) -> dict[str, Any]:
    """What the worker needs to send a delivery without reading it back: its ids and the exact body."""
    return {"delivery_id": delivery.id, "endpoint_id": delivery.endpoint_id, "message_id": delivery.message_id,
            "body": delivery.body}


def wants(endpoint: WebhookEndpoint | Any, event_type: str) -> bool:
    return event_type in (endpoint.event_types or ())


def emit(session: Session, event_type: str, data: dict[str, Any] | Callable[[], dict[str, Any]], *,
         storefront_id: int | None, subject: str) -> list[WebhookDelivery]:
    """Queue the event for every enabled endpoint that wants it (the storefront's and the operator-wide ones), in
    the caller's transaction: nothing is sent unless the change commits. `data` may be a function, called only when
    some endpoint wants the event."""
    if event_type not in EVENTS:
        raise ValueError(f"unknown webhook event {event_type!r}")
    endpoints = [e for e in _enabled_endpoints(session, storefront_id) if wants(e, event_type)]
    if not endpoints:
        return []
    fields = data() if callable(data) else data
    body = event_body(event_type, EVENTS[event_type][0].model_validate(fields).model_dump(mode="json"), utcnow())
    message_id = f"msg_{uuid.uuid4().hex}"  # the same for every endpoint: one event, one id
    made = []
    for endpoint in endpoints:
        delivery = WebhookDelivery(endpoint_id=endpoint.id, message_id=message_id, event_type=event_type,
                                   subject=subject, body=body)
        session.add(delivery)
        session.flush()
        outbox.enqueue(session, KIND, outbox_payload(delivery), subject_key(endpoint.id, subject))
        made.append(delivery)
    return made


_ENDPOINTS = WebhookEndpoint.__table__.c
_OPERATOR_WIDE = _ENDPOINTS.storefront_id.is_(None)
# The enabled endpoints (the id and the events each wants: all `emit` needs): operator-wide only, or also a
# storefront's. Built once and sent on the session's connection (Core, rows as tuples): every sign-in asks.
ENABLED = {scoped: select(_ENDPOINTS.id, _ENDPOINTS.event_types).where(_ENDPOINTS.enabled, or_(
    _OPERATOR_WIDE, _ENDPOINTS.storefront_id == bindparam("storefront_id")) if scoped else _OPERATOR_WIDE)
    .order_by(_ENDPOINTS.id) for scoped in (False, True)}


def _enabled_endpoints(session: Session, storefront_id: int | None) -> list[Any]:
    """The storefront's and the operator-wide enabled endpoints (`id`, `event_types`), read once per transaction (a
    registration emits several events)."""
    known = session.info.setdefault(ENDPOINTS_READ, {})
    if storefront_id not in known:
        known[storefront_id] = session.connection().execute(ENABLED[storefront_id is not None],
                                                            {"storefront_id": storefront_id}).all()
    return known[storefront_id]


@event.listens_for(Session, "after_transaction_end")
def _forget_endpoints(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the next transaction reads them afresh
        session.info.pop(ENDPOINTS_READ, None)


# --- one call per kind of record, for the services (duck-typed: this package sits below them) ---------------------

def account_subject(account_id: int) -> str:
    return f"account-{account_id}"


def account_event(session: Session, event_type: str, account: Any) -> None:
    emit(session, event_type, {"account_id": account.id, "number": account.number, "kind": account.kind,
                               "status": account.status, "storefront_id": account.storefront_id},
         storefront_id=account.storefront_id, subject=account_subject(account.id))


def contact_event(session: Session, event_type: str, contact: Any, account_number: str | None = None) -> None:
    def data() -> dict[str, Any]:
        number = account_number if account_number is not None else contact.account.number
        found = {"contact_id": contact.id, "account_id": contact.account_id, "account_number": number,
                 "storefront_id": contact.storefront_id}
        if event_type != "login.signed_in":
            found |= {"email": contact.email, "role": contact.role, "status": contact.status}
        return found

    emit(session, event_type, data, storefront_id=contact.storefront_id, subject=account_subject(contact.account_id))


def erased_event(session: Session, contact: Any) -> None:
    """Ids only: the person's data is gone (and earlier deliveries' bodies are scrubbed by the erasure)."""
    emit(session, "contact.erased", {"contact_id": contact.id, "account_id": contact.account_id,
                                     "storefront_id": contact.storefront_id},
         storefront_id=contact.storefront_id, subject=account_subject(contact.account_id))


def order_event(session: Session, event_type: str, order: Any, account: Any) -> None:
    emit(session, event_type, {"order_id": order.id, "number": order.number, "account_id": account.id,
                               "account_number": account.number, "status": order.status, "currency": order.currency,
                               "total_amount": None if order.total_amount is None else str(order.total_amount)},
         storefront_id=account.storefront_id, subject=account_subject(account.id))


def erp_push_event(session: Session, event_type: str, account: Any, error: str = "") -> None:
    emit(session, event_type, {"account_id": account.id, "number": account.number, "erp_code": account.erp_code,
                               "error": error[:500]},
         storefront_id=account.storefront_id, subject=account_subject(account.id))
