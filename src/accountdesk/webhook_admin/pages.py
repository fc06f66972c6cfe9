"""Console pages for webhook endpoints (administrators): the list with a form for a new one, and an endpoint with its
delivery log, replay, secret rotation, enabling and removal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.core.confirmations import Confirmation, confirmation_page, confirmed
from accountdesk.core.cookies import path_cookie
from accountdesk.core.crypto import seal, unseal
from accountdesk.core.errors import field_error
from accountdesk.core.i18n import _l, filled
from accountdesk.core.pages import Form, PageRoute, attempt, flash_redirect, form_fields, page
from accountdesk.core.validation import Id, parse_id
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import ADMIN, StaffPrincipal
from accountdesk.storefronts.models import Storefront
from accountdesk.webhook_admin.routes import check_storefront
from accountdesk.webhooks import service
from accountdesk.webhooks.events import EVENTS
from accountdesk.webhooks.models import WebhookEndpoint

router = APIRouter(prefix="/console/webhooks", route_class=PageRoute, include_in_schema=False)
Admin = Annotated[StaffPrincipal, Depends(console_page(ADMIN))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
DEFAULT_EVENTS = [name for name in EVENTS if name != "login.signed_in"]
SECRET_COOKIE = "accountdesk_webhook_secret"
SECRET_SEAL = "webhook-secret-once"
SECRET_SECONDS = 120


def _with_secret(request: Request, endpoint_id: int, secret: str, message: str) -> Response:
    """Redirect to the endpoint's page, which shows the new secret once: it travels sealed in a short-lived cookie
    scoped to that page, so that reloading the page neither shows it again nor sends the form twice."""
    response = flash_redirect(request, f"/console/webhooks/{endpoint_id}", message)
    secure = request.app.state.settings.cookie_secure
    response.set_cookie(path_cookie(SECRET_COOKIE, secure), seal(secret, SECRET_SEAL), max_age=SECRET_SECONDS,
                        path=f"/console/webhooks/{endpoint_id}", httponly=True, samesite="strict", secure=secure)
    return response


def _secret_once(request: Request, response: Response, endpoint_id: int) -> None:
    secure = request.app.state.settings.cookie_secure
    name = path_cookie(SECRET_COOKIE, secure)
    if name in request.cookies:
        response.delete_cookie(name, path=f"/console/webhooks/{endpoint_id}", secure=secure, httponly=True,
                               samesite="strict")


def _storefronts(session: Session) -> list[Storefront]:
    return list(session.scalars(select(Storefront).order_by(Storefront.name)))


def _list_page(request: Request, session: Session, staff: StaffPrincipal, storefront_id: int | None,
               form: Form | None = None, status: int = 200) -> Response:
    storefronts = _storefronts(session)
    return page(request, "webhooks/list.html", {
        "staff": staff, "endpoints": service.list_endpoints(session, storefront_id), "storefront_id": storefront_id,
        "storefronts": storefronts, "names": {s.id: s.name for s in storefronts}, "events": EVENTS,
        "chosen": DEFAULT_EVENTS, "form": form or Form()}, status)


def _endpoint_page(request: Request, session: Session, staff: StaffPrincipal, endpoint: WebhookEndpoint,
                   secret: str | None = None) -> Response:
    storefront = session.get(Storefront, endpoint.storefront_id) if endpoint.storefront_id else None
    return page(request, "webhooks/endpoint.html", {
        "staff": staff, "endpoint": endpoint, "storefront": storefront, "secret": secret,
        "deliveries": service.deliveries(session, endpoint), "events": EVENTS, "form": Form()})


@router.get("")
def list_endpoints(request: Request, session: DbSession, staff: Admin, storefront_id: str = "") -> Response:
    """Every webhook endpoint (or one storefront's), and a form for a new one."""
    return _list_page(request, session, staff, parse_id(storefront_id))


def _create(session: Session, request: Request, staff: StaffPrincipal, fields: dict[str, str]) -> tuple:
    storefront_id = parse_id(fields.get("storefront_id", "")) if fields.get("storefront_id") else None
    if fields.get("storefront_id") and storefront_id is None:
        raise field_error("storefront_id", "No such storefront.")
    check_storefront(session, storefront_id)
    return service.create_endpoint(
        session, staff.actor, request.app.state.settings, url=fields.get("url", "")[:2000],
        event_types=[name for name in EVENTS if f"event_{name}" in fields], storefront_id=storefront_id,
        description=fields.get("description", "")[:200], owner_email=staff.user.email, staff_id=staff.user.id)


@router.post("")
def create_endpoint(request: Request, session: DbSession, staff: Admin, fields: Fields) -> Response:
    """Register an endpoint; the page that follows shows its secret, this once."""
    created, errors = attempt(session, lambda: _create(session, request, staff, fields))
    if errors:
        return _list_page(request, session, staff, None, Form.refused(fields, errors), 422)
    endpoint, secret = created
    return _with_secret(request, endpoint.id, secret, "Endpoint created.")


@router.get("/{endpoint_id}")
def show_endpoint(endpoint_id: Id, request: Request, session: DbSession, staff: Admin) -> Response:
    """The endpoint and its delivery log, newest first (and a new secret, right after it was made)."""
    sealed = request.cookies.get(path_cookie(SECRET_COOKIE, request.app.state.settings.cookie_secure), "")
    secret = unseal(sealed, SECRET_SEAL, max_age_seconds=SECRET_SECONDS) if sealed else None
    response = _endpoint_page(request, session, staff, service.get_endpoint(session, endpoint_id), secret)
    _secret_once(request, response, endpoint_id)
    return response


@router.post("/{endpoint_id}/secret")
def rotate_secret(endpoint_id: Id, request: Request, session: DbSession, staff: Admin) -> Response:
    """A new secret, shown once; the old one keeps signing during the overlap."""
    endpoint = service.get_endpoint(session, endpoint_id)
    secret = service.rotate_secret(session, staff.actor, request.app.state.settings, endpoint)
    return _with_secret(request, endpoint_id, secret, "New secret made.")


@router.post("/{endpoint_id}/enabled")
def set_enabled(endpoint_id: Id, request: Request, session: DbSession, staff: Admin, fields: Fields) -> Response:
    endpoint = service.get_endpoint(session, endpoint_id)
    wanted = fields.get("enabled") == "on"
    service.update_endpoint(session, staff.actor, request.app.state.settings, endpoint, {"enabled": wanted})
    return flash_redirect(request, f"/console/webhooks/{endpoint_id}",
                          _l("Endpoint enabled.") if wanted else _l("Endpoint disabled."))


@router.post("/{endpoint_id}/delete")
def delete_endpoint(endpoint_id: Id, request: Request, session: DbSession, staff: Admin, fields: Fields) -> Response:
    """Remove the endpoint and its delivery log, once confirmed."""
    endpoint = service.get_endpoint(session, endpoint_id)
    if not confirmed(fields):
        here = f"/console/webhooks/{endpoint_id}"
        return confirmation_page(request, Confirmation(
            _l("Remove this endpoint?"),
            filled(_l("%(url)s gets no more events, and its delivery log goes for good."), url=endpoint.url),
            _l("Yes, remove"), f"{here}/delete", here, danger=True), {"staff": staff})
    service.delete_endpoint(session, staff.actor, endpoint)
    return flash_redirect(request, "/console/webhooks", _l("Endpoint removed."))


@router.post("/deliveries/{delivery_id}/replay")
def replay(delivery_id: Id, request: Request, session: DbSession, staff: Admin) -> Response:
    """Send a delivered or failed event again."""
    delivery = service.get_delivery(session, delivery_id)
    _, errors = attempt(session, lambda: service.replay(session, staff.actor, delivery))
    message = next(iter(errors.values()), "") if errors else _l("Replay queued.")
    return flash_redirect(request, f"/console/webhooks/{delivery.endpoint_id}", message or _l("Replay refused."))

