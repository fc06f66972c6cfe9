"""Staff administration API: admins manage every staff user, reseller staff the colleagues of their own reseller
(another reseller's staff answer 404). Rules: staff_admin.service and staff.second_factor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.staff import second_factor
from accountdesk.staff.deps import api_staff
from accountdesk.staff.schemas import StaffInvite, StaffList, StaffUpdate, StaffUserOut
from accountdesk.staff.service import ADMIN, STAFF_ADMINS, StaffPrincipal
from accountdesk.staff_admin import service as admin

router = APIRouter(route_class=ApiRoute, prefix="/api/v1/staff/users", tags=["staff"])
Manager = Annotated[StaffPrincipal, Depends(api_staff(STAFF_ADMINS))]
Admin = Annotated[StaffPrincipal, Depends(api_staff(ADMIN))]


def _out(user: Any) -> dict[str, Any]:
    return StaffUserOut.model_validate(user).model_dump(mode="json")


@router.get("", response_model=StaffList)
def list_staff(session: DbSession, staff: Manager) -> dict[str, Any]:
    """Staff users by e-mail: all of them for admins, their own reseller's for reseller staff."""
    return {"items": [_out(u) for u in admin.list_staff(session, staff.reseller_scope)]}


@router.post("", status_code=201, response_model=StaffUserOut, dependencies=[IDEMPOTENT])
def invite_staff(body: StaffInvite, request: Request, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Invite a staff user: the invitation e-mail carries a single-use link to choose a password. Reseller staff
    invite at most 10 an hour (429): an e-mail that has a staff login anywhere is refused (409)."""
    user = admin.invite(session, request.app.state.rate_limits, staff, body.model_dump(), request.app.state.settings)
    return _out(user)


@router.get("/{user_id}", response_model=StaffUserOut)
def read_staff(user_id: Id, session: DbSession, staff: Manager) -> dict[str, Any]:
    """One staff user."""
    return _out(admin.get_staff(session, staff.reseller_scope, user_id))


@router.patch("/{user_id}", response_model=StaffUserOut)
def update_staff(user_id: Id, body: StaffUpdate, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Change name, role or active; deactivation and a role change end the user's sessions and tokens for good."""
    user = admin.get_staff(session, staff.reseller_scope, user_id)
    admin.update(session, staff, user, body.model_dump(exclude_unset=True))
    return _out(user)


@router.post("/{user_id}/invitation", status_code=202, response_model=StaffUserOut, dependencies=[IDEMPOTENT])
def resend_invitation(user_id: Id, request: Request, session: DbSession, staff: Manager) -> dict[str, Any]:
    """Send the invitation again (the earlier link stops working); 409 once it was accepted."""
    user = admin.get_staff(session, staff.reseller_scope, user_id)
    admin.resend_invitation(session, staff, user, request.app.state.settings)
    return _out(user)


@router.delete("/{user_id}/totp", status_code=204)
def reset_second_factor(user_id: Id, session: DbSession, staff: Admin) -> Response:
    """Remove the user's two-step sign-in (a lost phone): they are signed out and set it up again."""
    second_factor.reset(session, staff.actor, admin.get_staff(session, staff.reseller_scope, user_id))
    return Response(status_code=204)
