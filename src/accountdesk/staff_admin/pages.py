"""Console pages for staff administration: the staff list, inviting a user, one user's record (name and role,
deactivate/reactivate, resend the invitation and remove two-step sign-in, each after a confirmation) with its
history.
Admins see every staff user, reseller staff their own reseller's (404 otherwise), exactly like the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.accounts.models import Account, AccountKind
from accountdesk.core.confirmations import Confirmation, confirmed
from accountdesk.core.i18n import _l, filled
from accountdesk.core.pages import (
    Form,
    PageRoute,
    active_choice,
    attempt,
    flash_redirect,
    form_fields,
    page,
    without_blanks,
)
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.staff import second_factor
from accountdesk.staff.deps import console_page
from accountdesk.staff.models import StaffRole, StaffUser
from accountdesk.staff.schemas import StaffInvite, StaffUpdate
from accountdesk.staff.service import ADMIN, STAFF_ADMINS, StaffPrincipal
from accountdesk.staff_admin import service as admin

router = APIRouter(prefix="/console/staff", route_class=PageRoute, include_in_schema=False)
Manager = Annotated[StaffPrincipal, Depends(console_page(STAFF_ADMINS))]
Admin = Annotated[StaffPrincipal, Depends(console_page(ADMIN))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
ROLE_LABELS = {StaffRole.admin: "Administrator", StaffRole.csr: "Customer service (CSR)",
               StaffRole.approver: "Approver", StaffRole.reseller_admin: "Reseller administrator"}
OPERATOR_ROLES = [(r.value, ROLE_LABELS[r]) for r in (StaffRole.admin, StaffRole.csr, StaffRole.approver)]
# question -> (title, what happens, "Yes" button, the action's path after the user's, what "Yes" sends)
CONFIRM = {
    "deactivate": (_l("Deactivate %(label)s?"),
                   _l("%(email)s is signed out of the console and the API at once, everywhere, and can no longer sign "
                      "in. Reactivating later does not bring old sessions or tokens back."),
                   _l("Yes, deactivate"), "status", {"active": "false"}),
    "reactivate": (_l("Reactivate %(label)s?"), _l("%(email)s can sign in again with their password."),
                   _l("Yes, reactivate"), "status", {"active": "true"}),
    "remove-totp": (_l("Remove the two-step sign-in of %(label)s?"),
                    _l("%(email)s is signed out everywhere and sets two-step sign-in up again at the next sign-in; "
                       "the authenticator app and the recovery codes stop working."),
                    _l("Yes, remove it"), "totp/reset", {}),
    "resend-invitation": (_l("Send the invitation to %(label)s again?"),
                          _l("A new invitation e-mail goes to %(email)s; the link sent before stops working."),
                          _l("Yes, send it again"), "invitation", {}),
}
HARMLESS = {"reactivate", "resend-invitation"}  # questions whose "Yes" is not shown as dangerous


def staff_url(user: StaffUser) -> str:
    return f"/console/staff/{user.id}"


def _resellers(session: Session, staff: StaffPrincipal) -> dict[int, str]:
    """Reseller accounts by id: every one for operator admins (to invite reseller staff), the own one otherwise."""
    query = select(Account.id, Account.name).where(Account.kind == AccountKind.reseller).order_by(Account.name)
    if staff.reseller_scope is not None:
        query = query.where(Account.id == staff.reseller_scope)
    return {row.id: row.name for row in session.execute(query)}


def _context(session: Session, staff: StaffPrincipal, **extra: Any) -> dict[str, Any]:
    resellers = _resellers(session, staff)
    return {"staff": staff, "role_labels": ROLE_LABELS, "operator_roles": OPERATOR_ROLES, "resellers": resellers,
            "reseller_options": [(str(i), name) for i, name in resellers.items()],
            "operator": staff.reseller_scope is None, **extra}


@router.get("")
def staff_list(request: Request, session: DbSession, staff: Manager) -> Response:
    """Staff users with role, status and two-step sign-in."""
    return page(request, "staff/list.html", _context(session, staff, users=admin.list_staff(session,
                                                                                              staff.reseller_scope)))


def _invite_page(request: Request, session: Session, staff: StaffPrincipal, form: Form, status: int = 200) -> Response:
    return page(request, "staff/invite.html", _context(session, staff, form=form), status)


@router.get("/new")
def invite_form(request: Request, session: DbSession, staff: Manager,
                reseller: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> Response:
    """Invite a staff user (operator admins may start from a reseller: its first reseller administrator)."""
    values = {"role": StaffRole.reseller_admin.value, "reseller_account_id": str(reseller)} if reseller else {}
    return _invite_page(request, session, staff, Form(values, prefix="invite", submitted=bool(values)))


@router.post("")
def invite(request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Create the user and e-mail the invitation link."""
    user, errors = attempt(session, lambda: admin.invite(session, request.app.state.rate_limits, staff,
                                                         StaffInvite.model_validate(without_blanks(form)).model_dump(),
                                                         request.app.state.settings))
    if user is None:
        return _invite_page(request, session, staff, Form.refused(form, errors, "invite"), 422)
    return flash_redirect(request, staff_url(user), _l("Invitation sent to %(email)s.", email=user.email))


def _question(user: StaffUser, confirm: str) -> Confirmation | None:
    if confirm not in CONFIRM:
        return None
    title, text, button, path, fields = CONFIRM[confirm]
    return Confirmation(filled(title, label=user.label), filled(text, email=user.email), button,
                        f"{staff_url(user)}/{path}", staff_url(user), danger=confirm not in HARMLESS, fields=fields)


def record_page(request: Request, session: Session, staff: StaffPrincipal, user: StaffUser, *,
                form: Form | None = None, confirm: str = "", status: int = 200) -> Response:
    asked = _question(user, confirm)
    return page(request, "staff/record.html", _context(
        session, staff, user=user, form=form or Form(prefix="staff"),
        events=admin.events(session, staff.reseller_scope, user), confirm=asked), status)


@router.get("/{user_id}")
def staff_record(user_id: Id, request: Request, session: DbSession, staff: Manager,
                 confirm: Annotated[str, Query(max_length=20)] = "") -> Response:
    """One staff user: details, status, two-step sign-in and history."""
    return record_page(request, session, staff, admin.get_staff(session, staff.reseller_scope, user_id),
                       confirm=confirm)


@router.post("/{user_id}")
def save(user_id: Id, request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Save name and role; a role change signs the user out everywhere."""
    user = admin.get_staff(session, staff.reseller_scope, user_id)
    values = {"name": form.get("name", "")} | ({"role": form["role"]} if form.get("role") else {})
    changes, errors = attempt(session, lambda: admin.update(session, staff, user, StaffUpdate.model_validate(
        values).model_dump(exclude_unset=True)))
    if errors:
        return record_page(request, session, staff, user, form=Form.refused(form, errors, "staff"), status=422)
    message = _l("Nothing changed.")
    if changes:
        message = _l("Saved; the user was signed out everywhere.") if "role" in changes else _l("Saved.")
    return flash_redirect(request, staff_url(user), message)


@router.post("/{user_id}/status")
def set_active(user_id: Id, request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Deactivate (signed out everywhere, for good) or reactivate."""
    active = active_choice(form, _l("Use the Deactivate or Reactivate button."))
    user = admin.get_staff(session, staff.reseller_scope, user_id)
    if not confirmed(form):
        return record_page(request, session, staff, user, confirm="reactivate" if active else "deactivate")
    _, errors = attempt(session, lambda: admin.update(session, staff, user, {"active": active}))
    if errors:
        return record_page(request, session, staff, user, form=Form.refused({}, errors, "staff"), status=409)
    done = (_l("%(user)s is reactivated.", user=user.label) if user.active
            else _l("%(user)s is deactivated and signed out everywhere.", user=user.label))
    return flash_redirect(request, staff_url(user), done)


@router.post("/{user_id}/invitation")
def resend_invitation(user_id: Id, request: Request, session: DbSession, staff: Manager, form: Fields) -> Response:
    """Send the invitation again, once confirmed; the earlier link stops working."""
    user = admin.get_staff(session, staff.reseller_scope, user_id)
    if not confirmed(form):
        return record_page(request, session, staff, user, confirm="resend-invitation")
    admin.resend_invitation(session, staff, user, request.app.state.settings)
    return flash_redirect(request, staff_url(user), _l("Invitation sent again to %(email)s.", email=user.email))


@router.post("/{user_id}/totp/reset")
def reset_second_factor(user_id: Id, request: Request, session: DbSession, staff: Admin, form: Fields) -> Response:
    """Remove the user's two-step sign-in (a lost phone), once confirmed; they are signed out and set it up again."""
    user = admin.get_staff(session, staff.reseller_scope, user_id)
    if not confirmed(form):
        return record_page(request, session, staff, user, confirm="remove-totp")
    second_factor.reset(session, staff.actor, user)
    return flash_redirect(request, staff_url(user), _l("Two-step sign-in of %(user)s removed; signed out everywhere.",
                                                                 user=user.label))
