"""The staff second factor: TOTP (RFC 6238, pyotp) set up from a QR code, and ten one-time recovery codes.

A code works once: the time step it belongs to is stored and only a later step is accepted afterwards; the
conditional UPDATE lets exactly one of two requests racing with the same code win. The secret is sealed
(core.crypto) and recovery codes are kept as keyed digests, so a copy of the database alone reveals neither.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import pyotp
import segno
from markupsafe import Markup
from pyotp.utils import strings_equal
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from accountdesk.core import crypto, sessions
from accountdesk.core.audit import Actor
from accountdesk.core.db import utcnow
from accountdesk.core.errors import Forbidden, NotAuthenticated, ValidationFailed, field_error
from accountdesk.core.i18n import _l
from accountdesk.core.ratelimit import RateLimits
from accountdesk.core.security import token_digest
from accountdesk.core.settings import Settings
from accountdesk.staff.models import StaffRecoveryCode, StaffRole, StaffUser
from accountdesk.staff.service import actor_of, log

ISSUER = "accountdesk"
SECRET = "staff-totp-secret"  # sealing purposes
ENROLMENT = "staff-totp-enrolment"
ENROLMENT_SECONDS = 15 * 60  # time to scan the code and type the first one
CODE_LIMIT = "5/15 minutes"  # wrong second-factor codes per staff user, wherever they are typed
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
WRONG_CODE = _l("This code is not right. Type the current code of your authenticator app, or a recovery code.")
ENROLMENT_REQUIRED = _l("Administrators need two-step sign-in: set it up in the console (My account) first.")


def required(user: StaffUser, settings: Settings) -> bool:
    """Whether this user must have a second factor (admins, when the operator says so)."""
    return settings.staff_totp_required_for_admins and user.role == StaffRole.admin


def must_enrol(user: StaffUser, settings: Settings) -> bool:
    """An admin without a second factor where one is required: may do nothing but set it up."""
    return required(user, settings) and not user.totp_enabled


@dataclass(frozen=True)
class Enrolment:
    """A secret offered for setup: shown as a QR code and as text; `sealed` comes back with the first code."""

    secret: str
    sealed: str
    uri: str

    @property
    def qr_svg(self) -> Markup:
        # segno's own SVG, no script; safe to inline since it contains only the path of the modules
        qr = segno.make(self.uri, error="m")
        return Markup(qr.svg_inline(omitsize=True, title="QR code for your authenticator app"))

    @property
    def grouped_secret(self) -> str:
        return " ".join(self.secret[i:i + 4] for i in range(0, len(self.secret), 4))


def start_enrolment(user: StaffUser) -> Enrolment:
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(secret, crypto.seal(f"{user.id}:{secret}", ENROLMENT), uri)


def resume_enrolment(user: StaffUser, sealed: str) -> Enrolment | None:
    """The enrolment offered to this user by start_enrolment, if it is recent and really theirs."""
    opened = crypto.unseal(sealed, ENROLMENT, max_age_seconds=ENROLMENT_SECONDS)
    user_id, _, secret = (opened or "").partition(":")
    if user_id != str(user.id) or not secret:
        return None
    return Enrolment(secret, sealed, pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER))


def _normalised(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def _matching_step(secret: str, code: str, after: int | None) -> int | None:
    """The time step (now, or one either side for clock drift) whose code this is, if later than `after`."""
    totp = pyotp.TOTP(secret)
    now = totp.timecode(utcnow())
    for step in (now - 1, now, now + 1):
        if (after is None or step > after) and strings_equal(code, totp.generate_otp(step)):
            return step
    return None


def _claim_step(session: Session, user: StaffUser, step: int) -> bool:
    won = session.execute(update(StaffUser)
                          .where(StaffUser.id == user.id,
                                 or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
                          .values(totp_last_step=step).execution_options(synchronize_session=False))
    return won.rowcount == 1


def _recovery_digest(code: str) -> str:
    return token_digest(f"staff-recovery:{code}")


def use_code(session: Session, user: StaffUser, code: str) -> bool:
    """Accept a current TOTP code or an unused recovery code of this user, once."""
    code = _normalised(code)
    if not user.totp_enabled or not code:
        return False
    if code.isdigit() and len(code) == 6:
        secret = crypto.unseal(user.totp_secret or "", SECRET)
        step = _matching_step(secret, code, user.totp_last_step) if secret else None
        return step is not None and _claim_step(session, user, step)
    used = session.execute(update(StaffRecoveryCode)
                           .where(StaffRecoveryCode.staff_user_id == user.id, StaffRecoveryCode.used_at.is_(None),
                                  StaffRecoveryCode.code_digest == _recovery_digest(code))
                           .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if used.rowcount != 1:
        return False
    log(session, actor_of(user), "staff.recovery_code_used", user,
         note=f"{recovery_codes_left(session, user)} recovery codes left")
    return True


def check_code(session: Session, limits: RateLimits, user: StaffUser, code: str) -> None:
    """The second step of a sign-in: 429 after too many wrong codes for this user, 401 invalid_totp for a wrong
    one (counted), nothing for a right one (which cannot be used again, and starts the count afresh)."""
    key = f"staff-totp:user:{user.id}"
    limits.hit({key: CODE_LIMIT})  # counted before the check, so parallel guesses cannot overrun the limit
    if not use_code(session, user, code):
        raise NotAuthenticated(WRONG_CODE, code="invalid_totp")
    limits.clear(key)


def check_for_token(session: Session, limits: RateLimits, settings: Settings, user: StaffUser,
                    code: str | None) -> None:
    """The second factor of an API sign-in, after the password: tokens only after both."""
    if must_enrol(user, settings):
        raise Forbidden(ENROLMENT_REQUIRED, code="totp_enrolment_required")
    if not user.totp_enabled:
        return
    if not code:
        raise NotAuthenticated("This user signs in with two steps: send the current code as totp_code.",
                               code="totp_required")
    check_code(session, limits, user, code)


def _new_recovery_codes(session: Session, user: StaffUser) -> list[str]:
    session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_user_id == user.id))
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    session.add_all(StaffRecoveryCode(staff_user_id=user.id, code_digest=_recovery_digest(c)) for c in codes)
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def recovery_codes_left(session: Session, user: StaffUser) -> int:
    return session.scalar(select(func.count()).select_from(StaffRecoveryCode)
                          .where(StaffRecoveryCode.staff_user_id == user.id, StaffRecoveryCode.used_at.is_(None))) or 0


def enable(session: Session, user: StaffUser, enrolment: Enrolment, code: str) -> list[str]:
    """Turn two-step sign-in on once the first code from the app matches; returns the recovery codes (shown once)."""
    step = _matching_step(enrolment.secret, _normalised(code), user.totp_last_step)
    if step is None:
        raise field_error("code", "This code does not match. Check the time on your phone and type the newest code.",
                          code="invalid_totp")
    user = session.get(StaffUser, user.id)
    user.totp_secret, user.totp_last_step, user.totp_enabled_at = crypto.seal(enrolment.secret, SECRET), step, utcnow()
    codes = _new_recovery_codes(session, user)
    log(session, actor_of(user), "staff.totp_enabled", user)
    return codes


def _remove(session: Session, user: StaffUser) -> None:
    user.totp_secret, user.totp_enabled_at = None, None  # totp_last_step stays: old codes stay used
    session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_user_id == user.id))


def disable(session: Session, user: StaffUser, code: str, settings: Settings) -> None:
    """The user turns two-step sign-in off, proving it with a current code (not where it is required)."""
    if required(user, settings):
        raise Forbidden("Administrators must keep two-step sign-in.", code="totp_required_for_admins")
    user = session.get(StaffUser, user.id)
    if not use_code(session, user, code):
        raise ValidationFailed(WRONG_CODE, code="invalid_totp", fields={"code": WRONG_CODE})
    _remove(session, user)
    log(session, actor_of(user), "staff.totp_disabled", user)


def reset(session: Session, actor: Actor, user: StaffUser) -> None:
    """An administrator removes a user's second factor (a lost phone): the user sets it up again after signing in,
    and is signed out everywhere meanwhile."""
    if not user.totp_enabled:
        return
    _remove(session, user)
    sessions.end_sessions(session, staff_user_id=user.id)
    log(session, actor, "staff.totp_reset", user, note="signed out everywhere")
