"""Webhook endpoints: register, change, rotate the secret, enable or disable, remove; the delivery log and replay.

Secrets follow the Standard Webhooks format (`whsec_` + base64 of 32 random bytes); they are shown once, when made,
and kept sealed. After a rotation the old secret stays valid for an overlap (deliveries carry both signatures)."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accountdesk.core import audit, outbox
from accountdesk.core.audit import Actor
from accountdesk.core.crypto import seal, unseal
from accountdesk.core.db import utcnow
from accountdesk.core.errors import Conflict, NotFound, field_error
from accountdesk.core.i18n import _l
from accountdesk.core.models import OutboxMessage
from accountdesk.core.settings import Settings
from accountdesk.webhooks.events import EVENTS, KIND, outbox_payload, subject_key
from accountdesk.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from accountdesk.webhooks.targets import TargetRefused, check_url

SEALED = "webhook-secret"
# why an endpoint is disabled, as a code (its words: core.history.VALUES["disabled_reason"])
DISABLED_BY_STAFF = "by_staff"
DISABLED_BY_FAILURES = "failing"
PAGE = 50


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one during the overlap."""
    found = [unseal(endpoint.secret, SEALED)]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > utcnow():
        found.append(unseal(endpoint.previous_secret, SEALED))
    return [s for s in found if s]


def _log(session: Session, actor: Actor, action: str, endpoint: WebhookEndpoint,
         changes: dict[str, Any] | None = None, note: str = "") -> None:
    audit.record(session, actor, action, subject_type="webhook_endpoint", subject_id=endpoint.id, account_id=None,
                 changes=changes, note=note or endpoint.url)


def _checked(values: dict[str, Any], settings: Settings) -> dict[str, Any]:
    if "url" in values:
        values["url"] = (values["url"] or "").strip()
        try:
            check_url(values["url"], settings)
        except TargetRefused as exc:
            raise field_error("url", str(exc), code="webhook_target_refused") from exc
    if "event_types" in values:
        chosen = list(dict.fromkeys(values["event_types"] or []))
        unknown = [t for t in chosen if t not in EVENTS]
        if unknown or not chosen:
            raise field_error("event_types", _l("Unknown event type: %(types)s.", types=", ".join(unknown)) if unknown
                              else _l("Choose at least one event type."))
        values["event_types"] = chosen
    return values


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", code="webhook_endpoint_not_found")
    return endpoint


def list_endpoints(session: Session, storefront_id: int | None = None) -> list[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if storefront_id is not None:
        stmt = stmt.where(WebhookEndpoint.storefront_id == storefront_id)
    return list(session.scalars(stmt))


def create_endpoint(session: Session, actor: Actor, settings: Settings, *, url: str, event_types: list[str],
                    storefront_id: int | None, description: str = "", owner_email: str = "",
                    staff_id: int | None = None) -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint and its secret (the only time the secret is shown)."""
    values = _checked({"url": url, "event_types": event_types}, settings)
    secret = new_secret()
    endpoint = WebhookEndpoint(storefront_id=storefront_id, description=description.strip(),
                               secret=seal(secret, SEALED), owner_email=owner_email.strip(),
                               created_by_staff_id=staff_id, **values)
    session.add(endpoint)
    session.flush()
    _log(session, actor, "webhook_endpoint.created", endpoint, audit.created(
        {"url": endpoint.url, "storefront_id": storefront_id, "event_types": endpoint.event_types}))
    return endpoint, secret


def update_endpoint(session: Session, actor: Actor, settings: Settings, endpoint: WebhookEndpoint,
                    values: dict[str, Any]) -> dict[str, list[Any]]:
    values = _checked(dict(values), settings)
    enabled = values.pop("enabled", None)
    changes = audit.apply_changes(endpoint, values)
    if enabled is not None and enabled != endpoint.enabled:
        if enabled:
            endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, "", None
        else:
            disable(session, endpoint, DISABLED_BY_STAFF)
        changes["enabled"] = [not enabled, enabled]
    if changes:
        _log(session, actor, "webhook_endpoint.updated", endpoint, changes)
    return changes


def rotate_secret(session: Session, actor: Actor, settings: Settings, endpoint: WebhookEndpoint,
                  overlap_hours: float | None = None) -> str:
    """A new secret; the current one keeps signing too for `overlap_hours` (the setting when None)."""
    hours = settings.webhook_secret_overlap_hours if overlap_hours is None else overlap_hours
    secret = new_secret()
    endpoint.previous_secret, endpoint.secret = endpoint.secret, seal(secret, SEALED)
    endpoint.previous_secret_until = utcnow() + timedelta(hours=hours)
    _log(session, actor, "webhook_endpoint.secret_rotated", endpoint, note=f"old secret valid for {hours:g} h")
    return secret


def delete_endpoint(session: Session, actor: Actor, endpoint: WebhookEndpoint) -> None:
    _drop_waiting(session, endpoint, "endpoint removed")
    _log(session, actor, "webhook_endpoint.deleted", endpoint)
    session.delete(endpoint)


def _drop_waiting(session: Session, endpoint: WebhookEndpoint, reason: str) -> None:
    """Its deliveries still waiting fail now (a replay sends them once it is enabled again)."""
    session.execute(update(OutboxMessage).where(
        OutboxMessage.kind == KIND, OutboxMessage.status == "pending",
        OutboxMessage.subject_key.like(subject_key(endpoint.id, "%"))).values(status="failed", last_error=reason)
        .execution_options(synchronize_session=False))
    session.execute(update(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id,
                                                  WebhookDelivery.status == "pending")
                    .values(status="failed", last_error=reason).execution_options(synchronize_session=False))


def disable(session: Session, endpoint: WebhookEndpoint, reason: str) -> None:
    """`reason`: DISABLED_BY_STAFF or DISABLED_BY_FAILURES."""
    endpoint.enabled, endpoint.disabled_reason = False, reason
    _drop_waiting(session, endpoint, f"endpoint disabled ({reason})")


# --- the delivery log -----------------------------------------------------------------------------------------------

def deliveries(session: Session, endpoint: WebhookEndpoint, before: int | None = None,
               limit: int = PAGE) -> list[WebhookDelivery]:
    """The endpoint's deliveries, newest first (`before`: the page after the one ending with that id)."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if before is not None:
        stmt = stmt.where(WebhookDelivery.id < before)
    return list(session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)))


def get_delivery(session: Session, delivery_id: int) -> WebhookDelivery:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound("No such webhook delivery.", code="webhook_delivery_not_found")
    return delivery


def attempts(session: Session, delivery: WebhookDelivery) -> list[WebhookAttempt]:
    return list(session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
                                .order_by(WebhookAttempt.id)))


def replay(session: Session, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivered or failed event again (same webhook-id, so a receiver that has it can tell)."""
    endpoint = get_endpoint(session, delivery.endpoint_id)
    if not endpoint.enabled:
        raise Conflict("Enable the endpoint before replaying its deliveries.", code="webhook_endpoint_disabled")
    moved = session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id,
                                                          WebhookDelivery.status != "pending")
                            .values(status="pending").execution_options(synchronize_session=False))
    if moved.rowcount != 1:
        raise Conflict("This delivery is still on its way.", code="webhook_delivery_pending")
    session.refresh(delivery)
    outbox.enqueue(session, KIND, outbox_payload(delivery), subject_key(endpoint.id, delivery.subject))
    _log(session, actor, "webhook_delivery.replayed", endpoint, note=f"{delivery.event_type} {delivery.message_id}")
    return delivery


def describe_endpoint(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "storefront_id": endpoint.storefront_id, "url": endpoint.url,
            "description": endpoint.description, "event_types": list(endpoint.event_types or []),
            "enabled": endpoint.enabled, "disabled_reason": endpoint.disabled_reason,
            "owner_email": endpoint.owner_email,
            "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
            "previous_secret_until": (endpoint.previous_secret_until.isoformat()
                                      if endpoint.previous_secret_until else None),
            "created_at": endpoint.created_at.isoformat()}


def describe_delivery(delivery: WebhookDelivery, tries: list[WebhookAttempt] | None = None) -> dict[str, Any]:
    found = {"id": delivery.id, "endpoint_id": delivery.endpoint_id, "message_id": delivery.message_id,
             "event_type": delivery.event_type, "status": delivery.status, "attempts": delivery.attempts,
             "response_status": delivery.response_status, "last_error": delivery.last_error,
             "created_at": delivery.created_at.isoformat(),
             "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
             "event": delivery.event}
    if tries is not None:
        found["attempt_log"] = [{"attempted_at": a.attempted_at.isoformat(), "response_status": a.response_status,
                                 "error": a.error, "duration_ms": a.duration_ms} for a in tries]
    return found
