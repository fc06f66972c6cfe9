"""Staff API for webhook endpoints (administrators): register, change, rotate secrets, the delivery log, replay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from accountdesk.core.errors import field_error
from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import api_staff
from accountdesk.staff.service import ADMIN, StaffPrincipal
from accountdesk.storefronts.models import Storefront
from accountdesk.webhook_admin.schemas import EndpointCreate, EndpointUpdate, SecretRotation
from accountdesk.webhooks import service
from accountdesk.webhooks.events import EVENTS

router = APIRouter(route_class=ApiRoute, prefix="/api/v1/webhooks", tags=["webhooks"])
Admin = Annotated[StaffPrincipal, Depends(api_staff(ADMIN))]


def check_storefront(session: Session, storefront_id: int | None) -> None:
    if storefront_id is not None and session.get(Storefront, storefront_id) is None:
        raise field_error("storefront_id", "No such storefront.")


@router.get("/event-types")
def list_event_types(staff: Admin) -> list[dict[str, str]]:
    """The events an endpoint can ask for (`login.signed_in` only when named)."""
    return [{"type": name, "description": text} for name, (_, text) in EVENTS.items()]


@router.get("/endpoints")
def list_endpoints(session: DbSession, staff: Admin, storefront_id: Id | None = None) -> list[dict[str, Any]]:
    """Every endpoint (or a storefront's own); operator-wide ones have no storefront."""
    return [service.describe_endpoint(e) for e in service.list_endpoints(session, storefront_id)]


@router.post("/endpoints", status_code=201)
def create_endpoint(body: EndpointCreate, request: Request, session: DbSession, staff: Admin) -> dict[str, Any]:
    """Register an endpoint; the answer holds its signing secret, shown this once."""
    check_storefront(session, body.storefront_id)
    endpoint, secret = service.create_endpoint(
        session, staff.actor, request.app.state.settings, url=body.url, event_types=list(body.event_types),
        storefront_id=body.storefront_id, description=body.description or "",
        owner_email=body.owner_email or staff.user.email, staff_id=staff.user.id)
    return service.describe_endpoint(endpoint) | {"secret": secret}


@router.get("/endpoints/{endpoint_id}")
def read_endpoint(endpoint_id: Id, session: DbSession, staff: Admin) -> dict[str, Any]:
    return service.describe_endpoint(service.get_endpoint(session, endpoint_id))


@router.patch("/endpoints/{endpoint_id}")
def update_endpoint(endpoint_id: Id, body: EndpointUpdate, request: Request, session: DbSession,
                    staff: Admin) -> dict[str, Any]:
    """Change the URL, events, description, owner, or enable/disable the endpoint."""
    endpoint = service.get_endpoint(session, endpoint_id)
    service.update_endpoint(session, staff.actor, request.app.state.settings, endpoint,
                            body.model_dump(exclude_unset=True, exclude_none=True))
    return service.describe_endpoint(endpoint)


@router.delete("/endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: Id, session: DbSession, staff: Admin) -> Response:
    service.delete_endpoint(session, staff.actor, service.get_endpoint(session, endpoint_id))
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/secret")
def rotate_secret(endpoint_id: Id, body: SecretRotation, request: Request, session: DbSession,
                  staff: Admin) -> dict[str, Any]:
    """A new signing secret (shown this once); the old one also signs until `previous_secret_until`."""
    endpoint = service.get_endpoint(session, endpoint_id)
    secret = service.rotate_secret(session, staff.actor, request.app.state.settings, endpoint, body.overlap_hours)
    return service.describe_endpoint(endpoint) | {"secret": secret}


@router.get("/endpoints/{endpoint_id}/deliveries")
def list_deliveries(endpoint_id: Id, session: DbSession, staff: Admin,
                    before: Annotated[Id | None, Query(description="Page on: the last id of the previous page")] = None,
                    ) -> list[dict[str, Any]]:
    """The delivery log, newest first, 50 at a time."""
    endpoint = service.get_endpoint(session, endpoint_id)
    return [service.describe_delivery(d) for d in service.deliveries(session, endpoint, before)]


@router.get("/deliveries/{delivery_id}")
def read_delivery(delivery_id: Id, session: DbSession, staff: Admin) -> dict[str, Any]:
    """One delivery with every attempt (response status, error, duration)."""
    delivery = service.get_delivery(session, delivery_id)
    return service.describe_delivery(delivery, service.attempts(session, delivery))


@router.post("/deliveries/{delivery_id}/replay", status_code=202, dependencies=[IDEMPOTENT])
def replay_delivery(delivery_id: Id, session: DbSession, staff: Admin) -> dict[str, Any]:
    """Send the event again (same webhook-id), after any delivery of its subject still waiting."""
    delivery = service.replay(session, staff.actor, service.get_delivery(session, delivery_id))
    return service.describe_delivery(delivery)
