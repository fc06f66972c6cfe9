"""A staff user's own pages: accepting the invitation (first password), My account (change the password) and
two-step sign-in (set up from a QR code, recovery codes shown once, turn off). Rules: staff_admin.service and
staff.second_factor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from accountdesk.core.errors import field_error
from accountdesk.core.i18n import _l
from accountdesk.core.languages import LANGUAGES
from accountdesk.core.pages import Form, LinkToken, PageRoute, attempt, flash_redirect, form_fields, page
from accountdesk.core.web import DbSession, client_address
from accountdesk.staff import second_factor
from accountdesk.staff.deps import TOTP_SETUP, console_page
from accountdesk.staff.models import StaffUser
from accountdesk.staff.pages import home_for, open_console
from accountdesk.staff.second_factor import Enrolment
from accountdesk.staff.service import READ, StaffPrincipal
from accountdesk.staff_admin import service as admin

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)
Me = Annotated[StaffPrincipal, Depends(console_page(READ))]
Enrolling = Annotated[StaffPrincipal, Depends(console_page(READ, enrolling=True))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
ACCOUNT = "/console/account"


def _passwords_match(form: dict[str, str]) -> None:
    if form.get("password", "") != form.get("password_confirm", ""):
        raise field_error("password_confirm", "The two passwords differ.")


# --- the invitation link ------------------------------------------------------------------------------------------

def _activation_page(request: Request, session: Session, token: str, form: Form | None = None,
                     status: int = 200) -> Response:
    user = admin.invited_user(session, token)
    if user is None:
        return page(request, "staff/activate.html", {"invalid": admin.INVITATION_INVALID}, 400 if token else 404)
    return page(request, "staff/activate.html", {"invitee": user, "form": form or Form(prefix="activate")}, status)


@router.get("/activate")
def activation_form(request: Request, session: DbSession, token: LinkToken) -> Response:
    """The invitation link: the invitee chooses a password."""
    return _activation_page(request, session, token)


@router.post("/activate")
def activate(request: Request, session: DbSession, form: Fields, token: LinkToken) -> Response:
    """Set the first password (the staff policy applies), use the link, and sign in."""

    def accept() -> StaffUser:
        _passwords_match(form)
        return admin.accept_invitation(session, token, form.get("password", ""))

    user, errors = attempt(session, accept)
    if user is None:  # the passwords typed are not shown again
        return _activation_page(request, session, token, Form.refused({}, errors, "activate"), 422)
    return open_console(request, session, user)


# --- My account ---------------------------------------------------------------------------------------------------

def account_page(request: Request, session: Session, staff: StaffPrincipal, *, password: Form | None = None,
                 totp: Form | None = None, language: Form | None = None, status: int = 200) -> Response:
    return page(request, "staff/account.html", {
        "staff": staff, "me": staff.user, "password_form": password or Form(prefix="password"),
        "language_form": language or Form(prefix="language"), "languages": list(LANGUAGES.items()),
        "totp_form": totp or Form(prefix="totp"), "required": second_factor.required(staff.user,
                                                                                    request.app.state.settings),
        "codes_left": second_factor.recovery_codes_left(session, staff.user)}, status)


@router.get("/account")
def my_account(request: Request, session: DbSession, staff: Me) -> Response:
    """My account: password and two-step sign-in."""
    return account_page(request, session, staff)


@router.post("/account/language")
def change_language(request: Request, session: DbSession, staff: Me, form: Fields) -> Response:
    """The language of the console (and of the console's e-mails) for this staff user."""
    _, errors = attempt(session, lambda: admin.set_language(session, staff.user, form.get("language", "")))
    if errors:
        return account_page(request, session, staff, language=Form.refused(form, errors, "language"), status=422)
    return flash_redirect(request, ACCOUNT, _l("Your language was saved."))


@router.post("/account/password")
def change_password(request: Request, session: DbSession, staff: Me, form: Fields) -> Response:
    """Change the password (the current one first); every other session and API token ends."""
    limits = request.app.state.rate_limits
    _, errors = attempt(session, lambda: _passwords_match(form))
    if not errors:  # counted (and the owner warned) outside the change's savepoint: a refusal keeps both
        checked = admin.count_password_check(session, limits, staff.user, client_address(request))
        _, errors = attempt(session, lambda: admin.change_password(
            session, limits, checked, staff.user, form.get("current_password", ""), form.get("password", ""),
            staff.auth.id))
    if errors:
        return account_page(request, session, staff, password=Form.refused({}, errors, "password"), status=422)
    return flash_redirect(request, ACCOUNT, _l("Your password was changed. Your other sessions were signed out."))


def _enrol_page(request: Request, staff: StaffPrincipal, enrolment: Enrolment, form: Form | None = None,
                status: int = 200) -> Response:
    return page(request, "staff/totp_setup.html", {
        "staff": staff, "enrolment": enrolment, "form": form or Form(prefix="totp"),
        "required": second_factor.must_enrol(staff.user, request.app.state.settings)}, status)


@router.get("/account/totp")
def totp_setup(request: Request, staff: Enrolling) -> Response:
    """Set up two-step sign-in: a QR code (and the secret as text) for the authenticator app, then its first code."""
    if staff.user.totp_enabled:
        return flash_redirect(request, ACCOUNT, _l("Two-step sign-in is already on."))
    return _enrol_page(request, staff, second_factor.start_enrolment(staff.user))


@router.post("/account/totp")
def totp_confirm(request: Request, session: DbSession, staff: Enrolling, form: Fields) -> Response:
    """Turn two-step sign-in on with the app's first code; the recovery codes are shown this once."""
    if staff.user.totp_enabled:
        return flash_redirect(request, ACCOUNT, _l("Two-step sign-in is already on."))
    enrolment = second_factor.resume_enrolment(staff.user, form.get("enrolment", ""))
    if enrolment is None:
        return flash_redirect(request, TOTP_SETUP, _l("That setup took too long; scan this new code."))
    codes, errors = attempt(session, lambda: second_factor.enable(session, staff.user, enrolment, form.get("code", "")))
    if codes is None:
        return _enrol_page(request, staff, enrolment, Form.refused({}, errors, "totp"), 422)
    response = page(request, "staff/recovery_codes.html", {"staff": staff, "codes": codes,
                                                           "next": home_for(staff.user)})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/account/totp/disable")
def totp_disable(request: Request, session: DbSession, staff: Me, form: Fields) -> Response:
    """Turn two-step sign-in off, with a current code (admins keep it where it is required)."""
    _, errors = attempt(session, lambda: second_factor.disable(session, staff.user, form.get("code", ""),
                                                               request.app.state.settings))
    if errors:
        return account_page(request, session, staff, totp=Form.refused({}, errors, "totp"), status=422)
    return flash_redirect(request, ACCOUNT, _l("Two-step sign-in is off."))
