"""Storefront API for headless storefronts: the policy, sign-in with bearer tokens, the password lifecycle.
No staff rights needed; a signed-in contact sends `Authorization: Bearer <token>`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.routing import Route

from accountdesk.contacts.models import Contact
from accountdesk.contacts.service import ACTIVATION, RESET
from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.web import (
    DbSession,
    Onward,
    answer_json,
    client_address,
    express_json,
    in_one_transaction,
)
from accountdesk.erp.deps import Erp, erp_gateway
from accountdesk.erp.gateway import ErpGateway
from accountdesk.signin import service
from accountdesk.signin.schemas import (
    AccountChoice,
    LinkCompletion,
    PasswordChange,
    PasswordResetRequest,
    SignInRequest,
)
from accountdesk.signin.session import (
    ApiContact,
    CurrentStorefront,
    api_sign_in_body,
    describe_account,
    describe_contact,
    sign_out,
    sign_out_everywhere,
    start_contact_session,
)
from accountdesk.storefronts.models import Storefront

router = APIRouter(route_class=ApiRoute, prefix="/api/v1/storefronts", tags=["storefront sign-in"])


def _signed_in(session: Session, request: Request, storefront: Storefront, contact: Contact, erp: ErpGateway,
               choice_token: str = "") -> dict[str, Any]:
    service.before_sign_in(session, storefront, contact, erp, base_url=request.app.state.settings.base_url)
    if choice_token:
        contact = service.choose(session, storefront, choice_token, contact.id)
    token = start_contact_session(session, contact, request.app.state.settings)
    return api_sign_in_body(token, contact, request.app.state.settings)


@router.get("/{slug}")
def read_policy(storefront: CurrentStorefront) -> dict[str, Any]:
    """The storefront's public sign-in and registration policy."""
    return service.policy_summary(storefront)


def _sign_in(session: Session, request: Request, slug: str, body: SignInRequest,
             erp: ErpGateway) -> tuple[int, dict[str, Any]]:
    """201 and a bearer token, or 200 and the accounts to choose from when several match."""
    found = service.find_candidates(session, request.app.state.rate_limits, slug, body.email,
                                    body.password, client_address(request), request.app.state.settings.base_url)
    if len(found.contacts) > 1:
        choice_token = service.offer_choice(session, found.storefront, found.contacts)
        return 200, service.describe_choice(choice_token, found.contacts)
    return 201, _signed_in(session, request, found.storefront, found.contacts[0], erp)


# response_model=None: the answer is not validated again, in another trip to the thread pool
@router.post("/{slug}/sessions", status_code=201, response_model=None)
def sign_in(slug: str, body: SignInRequest, request: Request, response: Response, session: DbSession,
            erp: Erp) -> dict[str, Any]:
    """Sign a contact in: a bearer token, or (200) the accounts to choose from when several match."""
    response.status_code, answer = _sign_in(session, request, slug, body, erp)
    return answer


async def express_sign_in(request: Request) -> Response:
    """`sign_in` ahead of the middleware and the routers (app.ExpressLane), where a sign-in costs little more than
    its hash: the same work and answer, without FastAPI's dependency solving, in one trip to a thread. A request
    out of the ordinary (see core.web.express_json) goes on to `sign_in`."""
    body = await express_json(request, SignInRequest)
    if body is None:
        return Onward(request)
    slug, erp = request.path_params["slug"], erp_gateway(request)
    status, answer = await in_one_transaction(request, lambda session: _sign_in(session, request, slug, body, erp))
    return answer_json(answer, status)


express = [Route(router.prefix + "/{slug}/sessions", express_sign_in, methods=["POST"])]  # app.EXPRESS


@router.post("/{slug}/sessions/choice", status_code=201)
def choose_account(slug: str, body: AccountChoice, request: Request, session: DbSession,
                   erp: Erp) -> dict[str, Any]:
    """Finish a sign-in by choosing one of the accounts offered."""
    storefront, contact = service.chosen_contact(session, slug, body.choice_token, body.contact_id)
    return _signed_in(session, request, storefront, contact, erp, body.choice_token)


@router.get("/{slug}/sessions/current")
def read_current(signed_in: ApiContact) -> dict[str, Any]:
    """Who is signed in with this token."""
    return {"contact": describe_contact(signed_in.contact), "account": describe_account(signed_in.contact)}


@router.delete("/{slug}/sessions/current", status_code=204)
def sign_out_current(request: Request, session: DbSession, signed_in: ApiContact) -> Response:
    """Sign out: this token stops working."""
    response = Response(status_code=204)
    sign_out(session, request, response, signed_in.storefront)
    return response


@router.delete("/{slug}/sessions", status_code=204)
def sign_out_all(session: DbSession, signed_in: ApiContact) -> Response:
    """Sign out everywhere: every session of the contact ends, this one included."""
    sign_out_everywhere(session, signed_in.contact)
    return Response(status_code=204)


@router.post("/{slug}/password-resets", status_code=202, dependencies=[IDEMPOTENT])
def request_reset(slug: str, body: PasswordResetRequest, request: Request, session: DbSession) -> dict[str, str]:
    """E-mail a reset link to every login with this e-mail; the same answer whether it exists or not."""
    service.request_password_reset(session, request.app.state.rate_limits, slug, body.email,
                                   client_address(request), request.app.state.settings)
    return {"status": "sent"}


@router.post("/{slug}/password-resets/complete")
def complete_reset(body: LinkCompletion, request: Request, session: DbSession,
                   storefront: CurrentStorefront) -> dict[str, str]:
    """Set a new password with the token of a reset link; the contact's sessions end."""
    service.complete_link(session, storefront, RESET, body.token, body.password, request.app.state.settings.base_url)
    return {"status": "password_changed"}


@router.post("/{slug}/activations")
def complete_activation(body: LinkCompletion, request: Request, session: DbSession,
                        storefront: CurrentStorefront) -> dict[str, str]:
    """Set the first password with the token of an activation link."""
    service.complete_link(session, storefront, ACTIVATION, body.token, body.password,
                          request.app.state.settings.base_url)
    return {"status": "activated"}


@router.put("/{slug}/account/password", status_code=204)
def change_password(body: PasswordChange, request: Request, session: DbSession, signed_in: ApiContact) -> Response:
    """Change the signed-in contact's password; their other sessions end. The current password is checked under
    the sign-in's limits (429)."""
    service.change_password(session, request.app.state.rate_limits, signed_in, body.current_password,
                            body.new_password, request.app.state.settings.base_url, client_address(request))
    return Response(status_code=204)
