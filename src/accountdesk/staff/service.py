"""Staff users: creation, sign-in (console session or API token), and what each role may do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accountdesk.core import audit, sessions
from accountdesk.core.audit import Actor
from accountdesk.core.db import kept, utcnow
from accountdesk.core.errors import ValidationFailed
from accountdesk.core.i18n import joined
from accountdesk.core.models import AuditEvent, AuthSession
from accountdesk.core.ratelimit import EMAIL_DELAYS, RateLimits
from accountdesk.core.security import PasswordPolicy, hash_password, needs_rehash, verify_password
from accountdesk.core.settings import Settings
from accountdesk.mail import service as mail
from accountdesk.staff.models import StaffRole, StaffUser

# What each role may do; reseller staff are further limited to their own customers by the queries.
READ = frozenset(StaffRole)
MANAGE_CUSTOMERS = frozenset({StaffRole.admin, StaffRole.csr, StaffRole.reseller_admin})
APPROVE = frozenset({StaffRole.admin, StaffRole.approver})
ADMIN = frozenset({StaffRole.admin})
OPERATOR = frozenset({StaffRole.admin, StaffRole.csr, StaffRole.approver})
STAFF_ADMINS = frozenset({StaffRole.admin, StaffRole.reseller_admin})  # manage staff (reseller staff: their own)
PASSWORD_REALM = "staff"  # whose passwords staff sign-in checks (see core.ratelimit.RateLimits.password_attempt)


@dataclass(frozen=True)
class StaffPrincipal:
    """The signed-in staff user and the session or token they came with."""

    user: StaffUser
    auth: AuthSession

    @property
    def actor(self) -> Actor:
        return actor_of(self.user)

    @property
    def reseller_scope(self) -> int | None:
        """The reseller whose customers this user is limited to; None for operator staff (everything)."""
        return self.user.reseller_account_id if self.user.is_reseller_staff else None

    def may(self, roles: frozenset[StaffRole]) -> bool:
        return self.user.role in roles


def actor_of(user: StaffUser) -> Actor:
    return Actor("staff", user.id, user.email)


def log(session: Session, actor: Actor, action: str, user: StaffUser, changes: dict[str, Any] | None = None,
        note: str = "") -> None:
    """A staff user's history; reseller staff's events also appear in their reseller account's history."""
    audit.record(session, actor, action, subject_type="staff_user", subject_id=user.id,
                 account_id=user.reseller_account_id, changes=changes, note=note or user.email)


def check_password(password: str, email: str, name: str = "") -> None:
    """The staff password policy (12+ characters, not a common one, not the user's name or e-mail)."""
    problems = PasswordPolicy().problems(password, personal=(email.split("@")[0], *name.split()))
    if problems:
        message = joined(problems)
        raise ValidationFailed(message, code="weak_password", fields={"password": message})


def authenticate(session: Session, limits: RateLimits, email: str, password: str, client: str) -> StaffUser | None:
    """Check e-mail and password, for the console and the API alike; call it before `session` writes. The attempt
    is counted first (429 when over the limits); the hash is verified while nothing is locked, and an unknown
    e-mail costs one dummy verification, like a known one. A warning to the owner and a rehash are steps of their
    own (`core.db.kept`): they stay whatever becomes of the request."""
    attempt = limits.password_attempt(PASSWORD_REALM, email, client)
    user = session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if attempt.warn_owner and user is not None:
        with kept(session) as step:
            warn_of_attack(step, step.get(StaffUser, user.id))
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.active:
        return None
    limits.password_accepted(attempt)
    if needs_rehash(user.password_hash):
        hashed = hash_password(password)
        with kept(session) as step:
            step.get(StaffUser, user.id).password_hash = hashed
    return user


MERCHANT_STAFF = "merchant staff"


def as_seen_by(session: Session, reseller_scope: int | None, events: list[AuditEvent]) -> list[Any]:
    """A history as the caller may read it: a reseller's staff see who of their own colleagues did what, and the
    merchant's (operator) staff only as "merchant staff", never their e-mail. The rows themselves are untouched."""
    if reseller_scope is None:
        return events
    acting = {e.actor_id for e in events if e.actor_type == "staff" and e.actor_id is not None}
    colleagues = set(session.scalars(select(StaffUser.id).where(
        StaffUser.id.in_(acting), StaffUser.reseller_account_id == reseller_scope))) if acting else set()
    columns = [column.key for column in AuditEvent.__table__.columns]
    return [SimpleNamespace(**{**{name: getattr(e, name) for name in columns}, "actor_label": MERCHANT_STAFF})
            if e.actor_type == "staff" and e.actor_id not in colleagues else e for e in events]


def warn_of_attack(session: Session, user: StaffUser) -> None:
    """Tell a staff user that someone keeps trying to sign in with their e-mail."""
    # no site name: the mail names the back office in the staff user's words
    mail.send(session, "sign_in_attack", user.email, language=user.language, context={
        "name": user.label, "site_name": "", "attempts": EMAIL_DELAYS.free, "reset_link": ""})
    audit.record(session, Actor.system(), "staff.sign_in_attack_warned", subject_type="staff_user",
                 subject_id=user.id, account_id=None, note=user.email)


def notify_staff_addresses(session: Session, template: str, to: list[str], cc: list[str], bcc: list[str], *,
                           language: str, context: dict[str, Any], known: dict[str, str] | None = None) -> None:
    """E-mail staff addresses, each in its reader's language: a staff user's address in the language they chose,
    any other address (a shared sales inbox) in `language`. One message per language, each keeping the To, Cc and
    Bcc places of its addresses. `known`: the languages of addresses the caller has already read (lower-cased
    address: language), which are not looked up again."""
    chosen = {address.lower(): reader for address, reader in (known or {}).items()}
    unknown = {address.lower() for address in (*to, *cc, *bcc)} - set(chosen)
    if unknown:
        chosen |= dict(session.execute(select(func.lower(StaffUser.email), StaffUser.language)
                                       .where(func.lower(StaffUser.email).in_(unknown))).all())
    by_language: dict[str, dict[str, list[str]]] = {}
    for place, group in (("to", to), ("cc", cc), ("bcc", bcc)):
        for address in group:
            reader = chosen.get(address.lower()) or language
            by_language.setdefault(reader, {"to": [], "cc": [], "bcc": []})[place].append(address)
    for reader, places in by_language.items():
        mail.send(session, template, places["to"], cc=places["cc"], bcc=places["bcc"], language=reader,
                  context=context)


def start_session(session: Session, user: StaffUser, kind: str, settings: Settings) -> str:
    hours = settings.api_token_hours if kind == "api" else settings.session_hours
    session.get(StaffUser, user.id).last_sign_in_at = utcnow()
    return sessions.open_session(session, kind, timedelta(hours=hours), staff_user_id=user.id)


def principal_for(session: Session, kind: str, token: str | None) -> StaffPrincipal | None:
    auth = sessions.find_session(session, kind, token)
    if auth is None or auth.staff_user_id is None:
        return None
    user = session.get(StaffUser, auth.staff_user_id)
    if user is None or not user.active:
        return None
    return StaffPrincipal(user, auth)


def count_staff(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StaffUser)) or 0
