"""FastAPI dependencies that put the signed-in staff user on a route and enforce roles."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from accountdesk.core.cookies import host_cookie
from accountdesk.core.errors import Forbidden, NotAuthenticated
from accountdesk.core.pages import SignInRequired, sign_in_required
from accountdesk.core.web import DbSession
from accountdesk.staff import second_factor
from accountdesk.staff.models import StaffRole
from accountdesk.staff.service import StaffPrincipal, principal_for

CONSOLE_COOKIE = "accountdesk_console"


def console_cookie(request: Request) -> str:
    """The console session cookie's name (`__Host-` with secure cookies)."""
    return host_cookie(CONSOLE_COOKIE, request.app.state.settings.cookie_secure)


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api_staff(roles: frozenset[StaffRole]) -> Callable[..., StaffPrincipal]:
    """An API route's staff user, from the bearer token; 401 without one, 403 with the wrong role."""

    def dependency(request: Request, session: DbSession) -> StaffPrincipal:
        principal = principal_for(session, "api", bearer_token(request))
        if principal is None:
            raise NotAuthenticated("Send a staff access token: Authorization: Bearer <token>.",
                                   headers={"WWW-Authenticate": "Bearer"})
        if second_factor.must_enrol(principal.user, request.app.state.settings):
            raise Forbidden(second_factor.ENROLMENT_REQUIRED, code="totp_enrolment_required")
        if not principal.may(roles):
            raise Forbidden(f"The {principal.user.role} role may not do this.", code="role_forbidden")
        return principal

    return dependency


def console_staff(request: Request, session: DbSession) -> StaffPrincipal | None:
    return principal_for(session, "console", request.cookies.get(console_cookie(request)))


CONSOLE_SIGN_IN = "/console/sign-in"
TOTP_SETUP = "/console/account/totp"


def console_page(roles: frozenset[StaffRole], *, enrolling: bool = False) -> Callable[..., StaffPrincipal]:
    """A console page's staff user, from the console cookie: no valid session redirects to the sign-in page
    (coming back afterwards), the wrong role gets a 403 page. An admin who must set up a second factor first is
    sent to its setup from every page but those marked `enrolling`. Use on routers with core.pages.PageRoute."""

    def dependency(request: Request, session: DbSession) -> StaffPrincipal:
        principal = console_staff(request, session)
        if principal is None:
            raise sign_in_required(request, CONSOLE_SIGN_IN, strict_cookie=True)
        if not enrolling and second_factor.must_enrol(principal.user, request.app.state.settings):
            raise SignInRequired(TOTP_SETUP)
        request.state.page_context = {"staff": principal}  # error pages keep the console navigation
        if not principal.may(roles):
            raise Forbidden(f"Your role ({principal.user.role}) may not do this. Ask an administrator.",
                            code="role_forbidden")
        return principal

    return dependency
