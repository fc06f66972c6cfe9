"""Registration API: self-registration and account claims for headless storefronts (no staff rights), and the
approval queue for staff."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.routing import Route

from accountdesk.core import idempotency, validation
from accountdesk.core.errors import NotFound
from accountdesk.core.i18n import request_language, speaking
from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import (
    DbSession,
    Onward,
    answer_json,
    client_address,
    express_json,
    headers_only,
    in_one_transaction,
)
from accountdesk.erp.deps import Erp
from accountdesk.registration import instant, service
from accountdesk.registration.schemas import (
    AccountRequestOut,
    AccountRequestPage,
    ClaimAnswer,
    ClaimContactIn,
    ClaimIn,
    ContactRequestOut,
    EmailVerificationIn,
    InstantLoginIn,
    InstantOfferOut,
    InstantRequestIn,
    RegistrationAnswer,
    RegistrationIn,
    RejectIn,
    SubdivisionsOut,
)
from accountdesk.signin.session import (
    api_sign_in_body,
    sign_in_contact,
    start_contact_session,
)
from accountdesk.staff.deps import api_staff
from accountdesk.staff.service import APPROVE, StaffPrincipal
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.policy import by_slug

router = APIRouter(route_class=ApiRoute, prefix="/api/v1")
Approver = Annotated[StaffPrincipal, Depends(api_staff(APPROVE))]
STOREFRONT = ["storefront registration"]
APPROVALS = ["approvals"]


def _base_url(request: Request) -> str:
    return request.app.state.settings.base_url


def _sign_in(session: Session, request: Request, response: Response, storefront: Storefront,
             outcome: service.Outcome) -> None:
    if outcome.sign_in is not None:
        sign_in_contact(session, response, storefront, outcome.sign_in, request=request)


@router.get("/countries/{code}/subdivisions", response_model=SubdivisionsOut, tags=STOREFRONT)
def subdivisions(code: str, request: Request) -> dict[str, Any]:
    """The states/provinces (ISO 3166-2) of a country, named in the Accept-Language (sorted by those names), and
    whether its addresses need one: what the address forms offer."""
    try:
        country = validation.country_code(code)
    except ValueError as exc:
        raise NotFound(validation.reason(exc), code="country_not_found") from exc
    with speaking(request_language(request)):
        items = validation.subdivision_options(country)
    return {"country": country, "required": validation.region_required(country),
            "subdivisions": [{"code": c, "name": n} for c, n in items]}


# response_model=None: the answer is not validated again, in another trip to the thread pool
@router.post("/storefronts/{slug}/registrations", status_code=202, response_model=None, tags=STOREFRONT,
             responses={202: {"model": RegistrationAnswer, "description": "Received"}},
             dependencies=[IDEMPOTENT])
def register(slug: str, body: RegistrationIn, request: Request, response: Response,
             session: DbSession) -> dict[str, Any]:
    """Create an account and its first contact under the storefront's registration policy (the same answer, after
    as long, for a known e-mail). The registrant then signs in; only where the policy signs registrants in at once
    does an `open`-mode answer carry this storefront's session cookie (which a known e-mail's does not)."""
    return _register(session, request, response, slug, body)


def _register(session: Session, request: Request, response: Response, slug: str,
              body: RegistrationIn) -> dict[str, Any]:
    storefront = service.registration_storefront(session, slug)
    applicant, password = service.prepare_registration(session, request.app.state.rate_limits, storefront, body,
                                                       client_address(request))
    timed = service.evenly_timed(session)
    outcome = timed(service.register(session, storefront.id, applicant, password, _base_url(request)))
    _sign_in(session, request, response, storefront, outcome)
    return outcome.answer


async def express_register(request: Request) -> Response:
    """`register` ahead of the middleware and the routers (app.ExpressLane): the same work and answer, without
    FastAPI's dependency solving, in one trip to a thread. A request with an Idempotency-Key (the API route's
    ApiRoute keeps its answer) or out of the ordinary (see core.web.express_json) goes on to `register`."""
    body = None if idempotency.HEADER in request.headers else await express_json(request, RegistrationIn)
    if body is None:
        return Onward(request)
    slug, cookies = request.path_params["slug"], headers_only()
    answer = await in_one_transaction(request, lambda session: _register(session, request, cookies, slug, body))
    return answer_json(answer, 202, cookies)


express = [Route(router.prefix + "/storefronts/{slug}/registrations", express_register, methods=["POST"])]


@router.post("/storefronts/{slug}/email-verifications", tags=STOREFRONT)
def verify_email(slug: str, body: EmailVerificationIn, session: DbSession) -> dict[str, str]:
    """Confirm a contact's e-mail address with the token from the verification e-mail (single use)."""
    service.verify_email(session, by_slug(session, slug), body.token)
    return {"status": "verified"}


@router.post("/storefronts/{slug}/account-claims", response_model=ClaimAnswer, tags=STOREFRONT,
             dependencies=[IDEMPOTENT])
def claim_account(slug: str, body: ClaimIn, request: Request, session: DbSession) -> dict[str, Any]:
    """Prove an existing account (number, billing postcode, recent invoice number) to add a contact to it."""
    storefront = service.claim_storefront(session, slug)
    account_id = service.match_account(session, request.app.state.rate_limits, storefront, body,
                                       client_address(request))
    return service.issue_claim(session, storefront, account_id)


@router.post("/storefronts/{slug}/account-claims/{token}/contacts", status_code=202, tags=STOREFRONT,
             dependencies=[IDEMPOTENT])
def add_contact(slug: str, token: str, body: ClaimContactIn, request: Request, response: Response,
                session: DbSession) -> dict[str, Any]:
    """Create the visitor's login on the claimed account: active at once or waiting for approval, per policy (the
    same answer, after as long, for an e-mail the account already has; a session cookie only as for `register`)."""
    storefront = service.claim_storefront(session, slug)
    person, password = service.prepare_new_contact(session, storefront, token, body)
    timed = service.evenly_timed(session)
    outcome = timed(service.add_claimed_contact(session, storefront.id, token, person, password,
                                                _base_url(request)))
    _sign_in(session, request, response, storefront, outcome)
    return outcome.answer


@router.post("/storefronts/{slug}/instant-registrations", status_code=202, response_model=RegistrationAnswer,
             tags=STOREFRONT, dependencies=[IDEMPOTENT])
def request_instant_registration(slug: str, body: InstantRequestIn, request: Request, session: DbSession,
                                 erp: Erp) -> dict[str, Any]:
    """Instant registration (erp_verified): e-mail a link when the address is a trade contact in the ERP; the same
    answer for every address (503 with Retry-After when the ERP cannot be asked)."""
    storefront, matches = instant.look_up(session, request.app.state.rate_limits, erp, slug,
                                          body.email, client_address(request))
    return instant.send_link(session, storefront, body.email, matches, _base_url(request))


@router.get("/storefronts/{slug}/instant-registrations/{token}", response_model=InstantOfferOut, tags=STOREFRONT)
def read_instant_registration(slug: str, token: str, session: DbSession, erp: Erp) -> dict[str, Any]:
    """The ERP accounts the link may still create a login for (404 when the link is spent or expired)."""
    storefront = instant.instant_storefront(session, slug)
    return instant.describe_offer(instant.offer(session, erp, storefront, token))


@router.post("/storefronts/{slug}/instant-registrations/{token}", status_code=201, tags=STOREFRONT)
def complete_instant_registration(slug: str, token: str, body: InstantLoginIn, request: Request,
                                  session: DbSession, erp: Erp) -> dict[str, Any]:
    """Create the login for the chosen ERP account (its local account made from the ERP's data), signed in."""
    storefront = instant.instant_storefront(session, slug)
    new = instant.prepare_login(session, erp, storefront, token, body.account_code, body.password, body.first_name,
                                body.last_name)
    contact = instant.create_login(session, storefront.id, token, new)
    access_token = start_contact_session(session, contact, request.app.state.settings)
    return api_sign_in_body(access_token, contact, request.app.state.settings)


@router.get("/registrations", response_model=AccountRequestPage, tags=APPROVALS)
def list_registrations(session: DbSession, staff: Approver,
                       status: Literal["pending_approval", "rejected"] = "pending_approval",
                       storefront: Id | None = None, q: Annotated[str, Query(max_length=200)] = "",
                       page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                       per_page: Annotated[int, Query(ge=1, le=100)] = 25) -> dict[str, Any]:
    """Self-registered accounts waiting for a decision (or rejected), oldest first, by storefront and search."""
    rows, total = service.account_requests(session, status=status, storefront_id=storefront, q=q, page=page,
                                           per_page=per_page)
    return {"items": service.describe_requests(session, rows), "total": total, "page": page,
            "per_page": per_page}


@router.get("/registrations/{account_id}", response_model=AccountRequestOut, tags=APPROVALS)
def read_registration(account_id: Id, session: DbSession, staff: Approver) -> dict[str, Any]:
    """One registration: company, contacts, billing address, when it was made, its status."""
    return service.describe_request(session, service.get_request(session, account_id))


@router.post("/registrations/{account_id}/approve", response_model=AccountRequestOut, tags=APPROVALS,
             dependencies=[IDEMPOTENT])
def approve(account_id: Id, request: Request, session: DbSession, staff: Approver) -> dict[str, Any]:
    """Approve a registration; exactly one of several simultaneous decisions wins (409 already_decided)."""
    account = service.approve_account(session, staff.actor, account_id, request.app.state.settings)
    return service.describe_request(session, account)


@router.post("/registrations/{account_id}/reject", response_model=AccountRequestOut, tags=APPROVALS,
             dependencies=[IDEMPOTENT])
def reject(account_id: Id, body: RejectIn, session: DbSession, staff: Approver) -> dict[str, Any]:
    """Reject a registration with a reason that is e-mailed to the registrant."""
    return service.describe_request(session, service.reject_account(session, staff.actor, account_id, body.reason))


@router.get("/contact-requests", response_model=list[ContactRequestOut], tags=APPROVALS)
def list_contact_requests(session: DbSession, staff: Approver, storefront: Id | None = None,
                          q: Annotated[str, Query(max_length=200)] = "") -> list[dict[str, Any]]:
    """New contacts of existing accounts waiting for approval."""
    rows = service.contact_requests(session, storefront_id=storefront, q=q)
    return service.describe_contact_requests(session, rows)


@router.post("/contact-requests/{contact_id}/approve", response_model=ContactRequestOut, tags=APPROVALS,
             dependencies=[IDEMPOTENT])
def approve_contact(contact_id: Id, request: Request, session: DbSession, staff: Approver) -> dict[str, Any]:
    """Let a new contact of an existing account sign in (409 already_decided when someone was faster)."""
    contact = service.approve_contact(session, staff.actor, contact_id, _base_url(request))
    return service.describe_contact_request(session, contact)


@router.post("/contact-requests/{contact_id}/reject", response_model=ContactRequestOut, tags=APPROVALS,
             dependencies=[IDEMPOTENT])
def reject_contact(contact_id: Id, body: RejectIn, session: DbSession, staff: Approver) -> dict[str, Any]:
    """Refuse a new contact of an existing account, with a reason that is e-mailed to them."""
    contact = service.reject_contact(session, staff.actor, contact_id, body.reason)
    return service.describe_contact_request(session, contact)
