"""Staff administration: admins list, invite, edit, deactivate and reactivate staff users; reseller staff do the same
for colleagues of their own reseller only. The scope is part of every query, so another reseller's staff answer 404
exactly like a missing id. Deactivation and a role change end every session and API token of the user for good
(reactivation opens none again); at least one active admin always remains."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from accountdesk.accounts.models import Account, AccountKind
from accountdesk.core import audit, sessions, tokens
from accountdesk.core.audit import Actor
from accountdesk.core.errors import Conflict, NotFound, ValidationFailed, field_error
from accountdesk.core.i18n import _l
from accountdesk.core.languages import LANGUAGES
from accountdesk.core.models import AuditEvent
from accountdesk.core.ratelimit import PasswordAttempt, RateLimits
from accountdesk.core.security import hash_password, verify_password
from accountdesk.core.settings import Settings
from accountdesk.mail import service as mail
from accountdesk.staff.models import StaffRole, StaffUser
from accountdesk.staff.service import (
    PASSWORD_REALM,
    StaffPrincipal,
    actor_of,
    as_seen_by,
    check_password,
    log,
    warn_of_attack,
)

INVITATION = "staff_invitation"
INVITATION_INVALID = _l("This invitation link has expired or was already used. Ask an administrator for a new one.")
SIGNED_OUT = "signed out everywhere"


def check_role(session: Session, role: str, reseller_account_id: int | None) -> None:
    """A known role; reseller_admin, and only it, belongs to exactly one account, which must be a reseller."""
    if role not in StaffRole.__members__:
        raise ValidationFailed("Unknown role.", fields={"role": f"Choose one of {', '.join(StaffRole)}."})
    if (role == StaffRole.reseller_admin) != (reseller_account_id is not None):
        raise ValidationFailed("Reseller staff belong to exactly one reseller account.",
                               fields={"reseller_account_id": "Required for reseller_admin, and only for it."})
    if reseller_account_id is not None:
        account = session.get(Account, reseller_account_id)
        if account is None or account.kind != AccountKind.reseller:
            what = f"Account {account.number} ({account.name}) is not a reseller" if account else "No such account"
            message = f"{what}: reseller staff belong to a reseller account."
            raise ValidationFailed(message, code="not_a_reseller", fields={"reseller_account_id": message})


def create_staff(session: Session, email: str, password: str, role: str, name: str = "",
                 reseller_account_id: int | None = None) -> StaffUser:
    check_password(password, email, name)
    check_role(session, role, reseller_account_id)
    user = StaffUser(email=email.strip().lower(), password_hash=hash_password(password), role=role, name=name,
                     reseller_account_id=reseller_account_id)
    session.add(user)
    session.flush()
    return user


def scoped(scope: int | None) -> Select[tuple[StaffUser]]:
    """Staff users a principal with this reseller scope may see: all of them, or their reseller's."""
    query = select(StaffUser)
    return query if scope is None else query.where(StaffUser.reseller_account_id == scope)


def list_staff(session: Session, scope: int | None) -> list[StaffUser]:
    return list(session.scalars(scoped(scope).order_by(StaffUser.email)))


def get_staff(session: Session, scope: int | None, user_id: int) -> StaffUser:
    user = session.scalar(scoped(scope).where(StaffUser.id == user_id))
    if user is None:
        raise NotFound("No such staff user.", code="staff_user_not_found")
    return user


def events(session: Session, reseller_scope: int | None, user: StaffUser, limit: int = 200) -> list[Any]:
    """The staff user's history, newest first, as the caller may read it (staff.service.as_seen_by)."""
    found = list(session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "staff_user",
                                                          AuditEvent.subject_id == user.id)
                                 .order_by(AuditEvent.id.desc()).limit(limit)))
    return as_seen_by(session, reseller_scope, found)


# --- invitations --------------------------------------------------------------------------------------------------

def _role_for(principal: StaffPrincipal, role: str | None, reseller_account_id: int | None) -> tuple[str, int | None]:
    """Operator admins choose any role; reseller staff invite reseller_admin colleagues of their own reseller."""
    scope = principal.reseller_scope
    if scope is None:
        if role is None:
            raise field_error("role", "Choose a role.")
        return role, reseller_account_id
    if role not in (None, StaffRole.reseller_admin):
        raise field_error("role", "Reseller staff invite reseller administrators of their own reseller only.")
    if reseller_account_id not in (None, scope):
        raise NotFound("No such reseller.", code="reseller_not_found")
    return StaffRole.reseller_admin, scope


# One e-mail is one staff login across the merchant and every reseller, so an invitation of an address that has one
# anywhere is refused (409): reseller staff may try only so many addresses, lest they list the merchant's staff.
RESELLER_INVITE_LIMIT = "10/hour"


def invite(session: Session, limits: RateLimits, principal: StaffPrincipal, data: dict[str, Any],
           settings: Settings) -> StaffUser:
    """Create the user without a password and e-mail a single-use link to choose one (reseller staff: at most
    RESELLER_INVITE_LIMIT per reseller, counted before the check)."""
    if principal.reseller_scope is not None:
        limits.hit({f"staff-invite:reseller:{principal.reseller_scope}": RESELLER_INVITE_LIMIT})
    role, reseller_id = _role_for(principal, data.get("role"), data.get("reseller_account_id"))
    return _invite(session, principal.actor, data["email"], data.get("name") or "", role, reseller_id, settings,
                   invited_by=principal.user.label, language=principal.user.language)


def _invite(session: Session, actor: Actor, email: str, name: str, role: str, reseller_id: int | None,
            settings: Settings, *, invited_by: str, language: str = "en", note: str = "") -> StaffUser:
    check_role(session, role, reseller_id)
    values = {"email": email.strip().lower(), "name": name, "role": role, "reseller_account_id": reseller_id,
              "language": language if language in LANGUAGES else "en"}
    user = StaffUser(**values, password_hash="")
    session.add(user)
    session.flush()
    log(session, actor, "staff.invited", user, audit.created({k: v for k, v in values.items() if v is not None}),
        note=note)
    send_invitation(session, actor, user, settings, invited_by=invited_by)
    return user


def send_invitation(session: Session, actor: Actor, user: StaffUser, settings: Settings, *,
                    invited_by: str = "") -> None:
    """E-mail the invitation link (valid ACCOUNTDESK_ACTIVATION_TOKEN_HOURS); an earlier link stops working."""
    hours = settings.activation_token_hours
    token = tokens.issue(session, INVITATION, timedelta(hours=hours), staff_user_id=user.id)
    base = settings.base_url.rstrip("/")
    reseller = session.get(Account, user.reseller_account_id) if user.reseller_account_id else None
    mail.send(session, "staff_invitation", user.email, language=user.language, context={
        "name": user.name, "account_name": reseller.name if reseller else "", "role": user.role,
        "link": f"{base}/console/activate?token={token}", "expires_hours": hours, "invited_by": invited_by,
        "sign_in_link": f"{base}/console/sign-in"})
    log(session, actor, "staff.invitation_sent", user)


def resend_invitation(session: Session, principal: StaffPrincipal, user: StaffUser, settings: Settings) -> None:
    if not user.active:
        raise Conflict("This user is deactivated; reactivate them first.", code="staff_user_deactivated")
    if user.has_password:
        raise Conflict("This user has already accepted the invitation.", code="invitation_accepted")
    send_invitation(session, principal.actor, user, settings, invited_by=principal.user.label)


def invited_user(session: Session, token: str) -> StaffUser | None:
    """The user a still-valid invitation link belongs to (the link is not used)."""
    row = tokens.peek(session, INVITATION, token)
    user = session.get(StaffUser, row.staff_user_id) if row is not None and row.staff_user_id else None
    return user if user is not None and user.active and not user.has_password else None


def accept_invitation(session: Session, token: str, password: str) -> StaffUser:
    """Choose the first password through the invitation link; on a policy failure the link stays usable."""
    user = invited_user(session, token)
    if user is None:
        raise ValidationFailed(INVITATION_INVALID, code="invalid_token")
    check_password(password, user.email, user.name)
    if tokens.consume(session, INVITATION, token) is None:
        raise ValidationFailed(INVITATION_INVALID, code="invalid_token")
    user.password_hash = hash_password(password)
    log(session, actor_of(user), "staff.invitation_accepted", user, {"password": ["•••", "•••"]})
    return user


def invite_registrant(session: Session, actor: Actor, reseller: Account, email: str, name: str, language: str,
                      settings: Settings) -> StaffUser | None:
    """A self-registered reseller's registrant becomes its first reseller_admin (None when the e-mail already
    belongs to a staff user, which is noted in the reseller's history instead)."""
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email.strip().lower())) is not None:
        audit.record(session, actor, "staff.invitation_skipped", subject_type="account", subject_id=reseller.id,
                     account_id=reseller.id, note=f"{email} is already a staff user")
        return None
    return _invite(session, actor, email, name, StaffRole.reseller_admin, reseller.id, settings,
                   invited_by="", language=language, note=f"registrant of {reseller.name}")


# --- changes ------------------------------------------------------------------------------------------------------

def _check_role_change(user: StaffUser, role: str) -> None:
    if user.is_reseller_staff or role == StaffRole.reseller_admin:
        raise field_error("role", "Reseller staff stay reseller administrators of their reseller, and operator staff "
                                  "stay operator staff: invite a new user instead.")


def _keep_one(session: Session, user: StaffUser) -> None:
    """Refuse to leave no active user of this role in this scope (operator admins; a reseller's staff). The rows
    are locked in id order first, so two simultaneous demotions cannot both pass."""
    peers = session.scalars(select(StaffUser.id)
                            .where(StaffUser.role == user.role, StaffUser.active.is_(True),
                                   StaffUser.password_hash != "",
                                   StaffUser.reseller_account_id.is_not_distinct_from(user.reseller_account_id))
                            .order_by(StaffUser.id).with_for_update()).all()
    session.refresh(user)
    if user.id in peers and len(peers) == 1:
        if user.role == StaffRole.admin:
            raise Conflict("At least one active administrator must remain: promote or invite another first.",
                           code="last_admin")
        raise Conflict("Your reseller needs at least one active reseller administrator: invite a colleague first.",
                       code="last_reseller_admin")


def update(session: Session, principal: StaffPrincipal, user: StaffUser, values: dict[str, Any]) -> dict[str, Any]:
    """Change name, role or active. Deactivation and a role change sign the user out everywhere, for good."""
    values = {k: v for k, v in values.items() if v is not None}
    if values.get("role", user.role) != user.role:
        _check_role_change(user, values["role"])
    leaves = values.get("active") is False or values.get("role", user.role) != user.role
    guarded = user.role == StaffRole.admin or principal.reseller_scope is not None
    if leaves and guarded and user.active and user.has_password:
        _keep_one(session, user)
    changes = audit.apply_changes(user, values)
    if not changes:
        return changes
    ends = "role" in changes or not user.active
    if ends:
        sessions.end_sessions(session, staff_user_id=user.id)
    action = "staff." + {True: "reactivated", False: "deactivated"}.get(changes.get("active", [None, None])[1],
                                                                        "updated")
    log(session, principal.actor, action, user, changes, note=f"{user.email} · {SIGNED_OUT}" if ends else "")
    return changes


def set_language(session: Session, user: StaffUser, language: str) -> dict[str, Any]:
    """The staff user's own choice of the console's language (one of core.languages.LANGUAGES)."""
    if language not in LANGUAGES:
        raise field_error("language", _l("Choose one of the options."))
    user = session.get(StaffUser, user.id)
    changes = audit.apply_changes(user, {"language": language})
    if changes:
        log(session, actor_of(user), "staff.updated", user, changes)
    return changes


def count_password_check(session: Session, limits: RateLimits, user: StaffUser, client: str) -> PasswordAttempt:
    """Count a check of the user's current password under the sign-in's limits (429 when over them; one counter
    for every check of a staff password) and warn the owner when the delays begin. A step of its own, outside the
    form's savepoint: a wrong password refuses the change, not the count or the warning."""
    attempt = limits.password_attempt(PASSWORD_REALM, user.email, client)
    if attempt.warn_owner:
        warn_of_attack(session, user)
    return attempt


def change_password(session: Session, limits: RateLimits, attempt: PasswordAttempt, user: StaffUser, current: str,
                    new: str, keep_session_id: int) -> None:
    """A new password once the current one is proven (`attempt`: count_password_check); every other session and
    token of the user ends."""
    if not verify_password(user.password_hash or None, current):
        raise field_error("current_password", "This is not your current password.", code="wrong_password")
    limits.password_accepted(attempt)
    check_password(new, user.email, user.name)
    user = session.get(StaffUser, user.id)
    user.password_hash = hash_password(new)
    sessions.end_sessions(session, staff_user_id=user.id, keep_id=keep_session_id)
    log(session, actor_of(user), "staff.password_changed", user, {"password": ["•••", "•••"]},
        note=f"{user.email} · other sessions signed out")
