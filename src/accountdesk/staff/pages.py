"""Console sign-in and sign-out for staff: a server-side session in an HttpOnly cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from accountdesk.core import sessions
from accountdesk.core.errors import TooManyRequests
from accountdesk.core.forms import redirect, verify_csrf
from accountdesk.core.pages import PageRoute, flash_redirect, form_fields, page, safe_next
from accountdesk.core.web import DbSession, client_address, get_db
from accountdesk.staff import service
from accountdesk.staff.models import StaffUser
from accountdesk.staff.deps import CONSOLE_COOKIE, CONSOLE_SIGN_IN, console_staff

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)
Fields = Annotated[dict[str, str], Depends(form_fields)]
HOME = "/console/accounts"
WRONG = "E-mail or password is not right."


def home_for(user: StaffUser) -> str:
    """Where a staff user starts: reseller staff at their My Customers, operator staff at the customer search."""
    return f"/console/resellers/{user.reseller_account_id}/customers" if user.is_reseller_staff else HOME


@router.get("")
def console_home(request: Request, session: DbSession) -> Response:
    """The console starts at the customer search (reseller staff: My Customers)."""
    principal = console_staff(request, session)
    return redirect(home_for(principal.user) if principal else HOME)


@router.get("/sign-in")
def sign_in_form(request: Request, session: DbSession, next: str = "") -> Response:
    """The staff sign-in form (straight on when already signed in)."""
    if console_staff(request, session) is not None:
        return redirect(safe_next(next, HOME, "/console"))
    return page(request, "staff/sign_in.html", {"next": safe_next(next, "", "/console"), "email": ""})


@router.post("/sign-in", dependencies=[Depends(verify_csrf)])
def sign_in(request: Request, session: DbSession, form: Fields) -> Response:
    """Check e-mail and password (under the sign-in limits shared with the API) and open a console session."""
    email, target = form.get("email", "").strip().lower(), safe_next(form.get("next"), HOME, "/console")
    context = {"next": target if target != HOME else "", "email": email}
    try:
        user = service.authenticate(get_db(request), request.app.state.rate_limits, email, form.get("password", ""),
                                    client_address(request))
    except TooManyRequests as exc:
        return _too_many(request, context, exc)
    if user is None:
        return page(request, "staff/sign_in.html", {**context, "error": WRONG}, 400)
    _end_current(request, session)
    token, _ = service.start_session(session, user, "console", request.app.state.settings)
    response = redirect(home_for(user) if target == HOME else target)
    response.set_cookie(CONSOLE_COOKIE, token, path="/console", httponly=True, samesite="lax",
                        secure=request.app.state.settings.cookie_secure)
    return response


def _too_many(request: Request, context: dict[str, str], exc: TooManyRequests) -> Response:
    minutes = max(1, round(exc.retry_after / 60))
    error = f"Too many attempts to sign in. Try again in about {minutes} minute{'s' if minutes > 1 else ''}."
    response = page(request, "staff/sign_in.html", {**context, "error": error}, 429)
    response.headers.update(exc.headers)
    return response


@router.post("/sign-out", dependencies=[Depends(verify_csrf)])
def sign_out(request: Request, session: DbSession) -> Response:
    """End this console session."""
    _end_current(request, session)
    response = flash_redirect(request, CONSOLE_SIGN_IN, "You are signed out.")
    response.delete_cookie(CONSOLE_COOKIE, path="/console")
    return response


def _end_current(request: Request, session: DbSession) -> None:
    principal = console_staff(request, session)
    if principal is not None:
        sessions.close_session(session, principal.auth)
