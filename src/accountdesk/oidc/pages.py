"""Console pages of a storefront's OpenID Connect clients: the list, registering one (its secret shown once) and
removing one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from accountdesk.core.confirmations import Confirmation, confirmation_page, confirmed
from accountdesk.core.i18n import _l, filled
from accountdesk.core.pages import Form, PageRoute, attempt, flash_redirect, form_fields, page
from accountdesk.core.web import DbSession
from accountdesk.oidc import clients
from accountdesk.oidc.claims import SCOPES
from accountdesk.oidc.schemas import ClientIn
from accountdesk.oidc.server import issuer
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import ADMIN, OPERATOR, StaffPrincipal
from accountdesk.storefronts import policy
from accountdesk.storefronts.models import Storefront

router = APIRouter(prefix="/console/storefronts/{slug}/oidc-clients", route_class=PageRoute,
                   include_in_schema=False)
Operator = Annotated[StaffPrincipal, Depends(console_page(OPERATOR))]
Admin = Annotated[StaffPrincipal, Depends(console_page(ADMIN))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
DEFAULT_SCOPES = ("openid", "profile", "email", "account")


def _list_page(request: Request, session: DbSession, staff: StaffPrincipal, storefront: Storefront,
               form: Form | None = None, created: dict[str, Any] | None = None, status: int = 200) -> Response:
    return page(request, "oidc/clients.html", {
        "staff": staff, "storefront": storefront, "clients": clients.list_clients(session, storefront),
        "form": form or Form(), "created": created, "scopes": SCOPES, "default_scopes": DEFAULT_SCOPES,
        "issuer": issuer(request.app.state.settings, storefront), "may_edit": staff.may(ADMIN)}, status)


def _client_in(fields: dict[str, str]) -> ClientIn:
    return ClientIn.model_validate({
        "name": fields.get("name", ""), "kind": fields.get("kind", "confidential"),
        "redirect_uris": fields.get("redirect_uris", "").split(),
        "post_logout_redirect_uris": fields.get("post_logout_redirect_uris", "").split(),
        "backchannel_logout_uri": fields.get("backchannel_logout_uri", "").strip() or None,
        "scopes": [scope for scope in SCOPES if f"scope.{scope}" in fields]})


@router.get("")
def list_clients(slug: str, request: Request, session: DbSession, staff: Operator) -> Response:
    """The storefront's clients, its issuer, and (administrators) a form to register one."""
    return _list_page(request, session, staff, policy.by_slug(session, slug))


@router.post("")
def register_client(slug: str, request: Request, session: DbSession, staff: Admin, fields: Fields) -> Response:
    """Register a client; the page shows its secret this once."""
    storefront = policy.by_slug(session, slug)
    made, errors = attempt(session, lambda: clients.register(session, staff.actor, storefront, _client_in(fields),
                                                                  request.app.state.settings))
    if errors:
        return _list_page(request, session, staff, storefront, Form.refused(fields, errors), status=422)
    client, secret = made
    return _list_page(request, session, staff, storefront, created=clients.describe(client, secret), status=201)


@router.post("/{client_id}/remove")
def remove_client(slug: str, client_id: str, request: Request, session: DbSession, staff: Admin,
                  fields: Fields) -> Response:
    """Remove a client, once confirmed: its tokens stop working at once."""
    storefront = policy.by_slug(session, slug)
    client = clients.get_client(session, storefront, client_id)
    if not confirmed(fields):
        here = f"/console/storefronts/{slug}/oidc-clients"
        return confirmation_page(request, Confirmation(
            filled(_l("Remove %(name)s?"), name=client.name),
            _l("Its tokens stop working at once: the shop's buyers are signed out of it and its backend can no "
               "longer call the API. This cannot be undone."),
            _l("Yes, remove"), f"{here}/{client_id}/remove", here, danger=True), {"staff": staff})
    clients.remove(session, staff.actor, client)
    return flash_redirect(request, f"/console/storefronts/{slug}/oidc-clients", _l("Client removed."))
