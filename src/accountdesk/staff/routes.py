"""Staff API: exchange e-mail and password for a bearer token; revoke it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from accountdesk.core import sessions
from accountdesk.core.errors import NotAuthenticated
from accountdesk.core.web import DbSession, client_address
from accountdesk.staff import second_factor, service
from accountdesk.staff.deps import api_staff
from accountdesk.staff.schemas import TokenRequest, TokenResponse
from accountdesk.staff.service import READ, StaffPrincipal

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])


@router.post("/tokens", response_model=TokenResponse, status_code=201)
def create_token(body: TokenRequest, request: Request, session: DbSession) -> TokenResponse:
    """Sign a staff user in and return a bearer token for the API (under the sign-in limits shared with the
    console: 429)."""
    user = service.authenticate(session, request.app.state.rate_limits, body.email, body.password,
                                client_address(request))
    if user is None:
        raise NotAuthenticated("E-mail or password is not right.", code="invalid_credentials")
    second_factor.check_for_token(session, request.app.state.rate_limits, request.app.state.settings, user,
                                  body.totp_code)
    settings = request.app.state.settings
    token = service.start_session(session, user, "api", settings)
    return TokenResponse(access_token=token, expires_in=settings.api_token_hours * 3600, role=user.role)


@router.delete("/tokens/current", status_code=204)
def revoke_token(session: DbSession, principal: Annotated[StaffPrincipal, Depends(api_staff(READ))]) -> Response:
    """Revoke the token used for this request."""
    sessions.close_session(session, session.merge(principal.auth))
    return Response(status_code=204)
