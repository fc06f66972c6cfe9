"""Console sign-in and sign-out for staff: a server-side session in an HttpOnly cookie."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from accountdesk.core import sessions, tokens
from accountdesk.core.errors import NotAuthenticated, TooManyRequests
from accountdesk.core.forms import redirect
from accountdesk.core.i18n import _l, later
from accountdesk.core.pages import PageRoute, flash_redirect, form_fields, page, safe_next
from accountdesk.core.web import DbSession, client_address
from accountdesk.staff import second_factor, service
from accountdesk.staff.deps import CONSOLE_SIGN_IN, console_cookie, console_staff
from accountdesk.staff.models import StaffUser

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)
Fields = Annotated[dict[str, str], Depends(form_fields)]
HOME = "/console/accounts"
WRONG = "E-mail or password is not right."
CODE_STEP = "/console/sign-in/code"
STEP_COOKIE = "accountdesk_console_step"
SIGN_IN_STEP = "staff_sign_in_step"  # single-use token between the password and the code
STEP_LIFETIME = timedelta(minutes=5)
TOO_MANY_CODES = _l("Too many wrong codes. Wait a few minutes, then sign in again.")


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


@router.post("/sign-in")
def sign_in(request: Request, session: DbSession, form: Fields) -> Response:
    """Check e-mail and password (under the sign-in limits shared with the API) and open a console session."""
    email, target = form.get("email", "").strip().lower(), safe_next(form.get("next"), HOME, "/console")
    context = {"next": target if target != HOME else "", "email": email}
    try:
        user = service.authenticate(session, request.app.state.rate_limits, email, form.get("password", ""),
                                    client_address(request))
    except TooManyRequests as exc:
        return _too_many(request, context, exc)
    if user is None:
        return page(request, "staff/sign_in.html", {**context, "error": WRONG}, 400)
    if user.totp_enabled:
        return _ask_for_code(request, session, user, target)
    return open_console(request, session, user, target)


def open_console(request: Request, session: DbSession, user: StaffUser, target: str = HOME) -> Response:
    """Open a console session (ending the one this browser had) and go on to `target`."""
    _end_current(request, session)
    token = service.start_session(session, user, "console", request.app.state.settings)
    response = redirect(home_for(user) if target == HOME else target)
    # Strict: a request from another site never carries the console session (see core.pages.sign_in_required).
    response.set_cookie(console_cookie(request), token, path="/", httponly=True, samesite="strict",
                        secure=request.app.state.settings.cookie_secure)
    return response


def _ask_for_code(request: Request, session: DbSession, user: StaffUser, target: str) -> Response:
    """The password was right; the second step is the code. Until then the browser holds only a short-lived,
    single-use step token bound to this user, never a session."""
    token = tokens.issue(session, SIGN_IN_STEP, STEP_LIFETIME, staff_user_id=user.id, data={"next": target})
    response = redirect(CODE_STEP)
    response.set_cookie(STEP_COOKIE, token, path=CODE_STEP, max_age=int(STEP_LIFETIME.total_seconds()),
                        httponly=True, samesite="strict", secure=request.app.state.settings.cookie_secure)
    return response


def _step_user(request: Request, session: DbSession) -> StaffUser | None:
    row = tokens.peek(session, SIGN_IN_STEP, request.cookies.get(STEP_COOKIE, ""))
    user = session.get(StaffUser, row.staff_user_id) if row is not None and row.staff_user_id else None
    return user if user is not None and user.active and user.totp_enabled else None


def _start_again(request: Request) -> Response:
    response = flash_redirect(request, CONSOLE_SIGN_IN, _l("Your sign-in took too long. Please start again."))
    response.delete_cookie(STEP_COOKIE, path=CODE_STEP)
    return response


@router.get("/sign-in/code")
def code_form(request: Request, session: DbSession) -> Response:
    """The second step of signing in: the code of the authenticator app, or a recovery code."""
    if _step_user(request, session) is None:
        return _start_again(request)
    return page(request, "staff/sign_in_code.html")


@router.post("/sign-in/code")
def sign_in_with_code(request: Request, session: DbSession, form: Fields) -> Response:
    """Check the code (each works once; wrong ones are limited per user) and open the console session."""
    user = _step_user(request, session)
    if user is None:
        return _start_again(request)
    try:
        second_factor.check_code(session, request.app.state.rate_limits, user, form.get("code", ""))
    except TooManyRequests as exc:
        response = page(request, "staff/sign_in_code.html", {"error": TOO_MANY_CODES}, 429)
        response.headers.update(exc.headers)
        return response
    except NotAuthenticated as exc:
        return page(request, "staff/sign_in_code.html", {"error": later(exc.message)}, 400)
    step = tokens.consume(session, SIGN_IN_STEP, request.cookies.get(STEP_COOKIE, ""))
    if step is None:
        return _start_again(request)
    response = open_console(request, session, user, step.data.get("next") or HOME)
    response.delete_cookie(STEP_COOKIE, path=CODE_STEP)
    return response


def _too_many(request: Request, context: dict[str, str], exc: TooManyRequests) -> Response:
    minutes = max(1, round(exc.retry_after / 60))
    error = f"Too many attempts to sign in. Try again in about {minutes} minute{'s' if minutes > 1 else ''}."
    response = page(request, "staff/sign_in.html", {**context, "error": error}, 429)
    response.headers.update(exc.headers)
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: DbSession) -> Response:
    """End this console session."""
    _end_current(request, session)
    response = flash_redirect(request, CONSOLE_SIGN_IN, _l("You are signed out."))
    response.delete_cookie(console_cookie(request), path="/", httponly=True, samesite="strict",
                           secure=request.app.state.settings.cookie_secure)
    return response


def _end_current(request: Request, session: DbSession) -> None:
    principal = console_staff(request, session)
    if principal is not None:
        sessions.close_session(session, principal.auth)
