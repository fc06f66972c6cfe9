"""Storefront sign-in sessions: one HttpOnly cookie per storefront for pages, bearer tokens for headless
storefronts, and the FastAPI dependencies that make a page or an API route require a signed-in contact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from accountdesk.contacts.models import Contact
from accountdesk.core import pages, sessions
from accountdesk.core.audit import Actor
from accountdesk.core.cookies import host_cookie
from accountdesk.core.db import utcnow
from accountdesk.core.errors import AppError, NotAuthenticated
from accountdesk.core.models import AuthSession
from accountdesk.core.settings import Settings
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import bearer_token
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.policy import by_slug
from accountdesk.webhooks import events as webhooks

SESSION_KIND = "storefront"
SEEN_EVERY = timedelta(minutes=5)  # last_seen_at is refreshed at most this often, not on every request


@dataclass(frozen=True)
class StorefrontSignIn:
    """The contact signed in to a storefront, with the session (cookie or bearer token) they came with."""

    storefront: Storefront
    contact: Contact
    auth: AuthSession

    @property
    def actor(self) -> Actor:
        return Actor("contact", self.contact.id, self.contact.email)


class SignInRequired(pages.SignInRequired, AppError):
    """A page needs a signed-in contact. PageRoute routers answer with a redirect to the sign-in page; on other
    routers the JSON error handler answers the same 303 with its Location."""

    status_code = 303
    code = "sign_in_required"
    message = "Sign in first."

    def __init__(self, url: str) -> None:
        AppError.__init__(self, headers={"Location": url})
        self.url = url


def cookie_name(storefront: Storefront, settings: Settings) -> str:
    """The storefront's session cookie (`__Host-` with secure cookies): one per storefront."""
    return host_cookie(f"accountdesk_sf_{storefront.slug}", settings.cookie_secure)


# Built once; sent on the session's connection (Core), as the session row is (core.sessions.open_session).
SIGNED_IN = update(Contact.__table__).where(Contact.__table__.c.id == bindparam("contact_id")) \
    .values(last_sign_in_at=bindparam("now"), last_seen_at=bindparam("now"), updated_at=bindparam("now"))


def start_contact_session(session: Session, contact: Contact, settings: Settings) -> str:
    """Open a new storefront session for the contact (no cookie); returns the token for a bearer header."""
    live = session.get(Contact, contact.id)  # the caller's object may come from another (finished) transaction
    # the event first: its look-up of the webhook endpoints then has nothing to flush before it
    webhooks.contact_event(session, "login.signed_in", live)
    token = sessions.open_session(session, SESSION_KIND, timedelta(hours=settings.session_hours),
                                  contact_id=live.id, data={"storefront_id": live.storefront_id})
    now = utcnow()
    session.connection().execute(SIGNED_IN, {"contact_id": live.id, "now": now})
    for name in ("last_sign_in_at", "last_seen_at", "updated_at"):  # what the row now holds, nothing left to write
        set_committed_value(live, name, now)
    return token


def sign_in_contact(session: Session, response: Response, storefront: Storefront, contact: Contact, *,
                    request: Request) -> None:
    """Sign the contact in to the storefront: a new session id every time, set as this storefront's cookie on
    `response` (pass the response you return, e.g. the RedirectResponse), under the app's settings; the browser's
    previous session on this storefront is closed."""
    settings = request.app.state.settings
    previous = sessions.find_session(session, SESSION_KIND, request.cookies.get(cookie_name(storefront, settings)))
    if previous is not None:
        sessions.close_session(session, previous)
    token = start_contact_session(session, contact, settings)
    response.set_cookie(cookie_name(storefront, settings), token, max_age=settings.session_hours * 3600, path="/",
                        httponly=True, samesite="lax", secure=settings.cookie_secure)


def _session_token(request: Request, storefront: Storefront) -> str | None:
    """An explicit `Authorization: Bearer` header wins over the browser's cookie."""
    return bearer_token(request) or request.cookies.get(cookie_name(storefront, request.app.state.settings))


def current_sign_in(request: Request, session: Session, storefront: Storefront) -> StorefrontSignIn | None:
    """The valid session (bearer token, else cookie) of a contact of this storefront who may sign in."""
    auth = sessions.find_session(session, SESSION_KIND, _session_token(request, storefront))
    contact = session.get(Contact, auth.contact_id) if auth is not None and auth.contact_id else None
    if contact is None or contact.storefront_id != storefront.id or not contact.can_sign_in:
        return None
    now = utcnow()
    if contact.last_seen_at is None or now - contact.last_seen_at > SEEN_EVERY:
        contact.last_seen_at = now
    return StorefrontSignIn(storefront, contact, auth)


def current_contact(request: Request, session: Session, storefront: Storefront) -> Contact | None:
    signed_in = current_sign_in(request, session, storefront)
    return signed_in.contact if signed_in else None


def sign_in_path(storefront: Storefront) -> str:
    return f"/s/{storefront.slug}/sign-in"


def safe_next(storefront: Storefront, next_path: str | None) -> str:
    """Where to go after sign-in: a page of this storefront, never another site; else the storefront's home."""
    home = f"/s/{storefront.slug}"
    return next_path if next_path == home else pages.safe_next(next_path, home, prefix=home + "/")


def sign_out(session: Session, request: Request, response: Response, storefront: Storefront) -> None:
    """End this browser's (or bearer token's) session on the storefront and drop the cookie."""
    auth = sessions.find_session(session, SESSION_KIND, _session_token(request, storefront))
    if auth is not None:
        sessions.close_session(session, auth)
    settings = request.app.state.settings
    response.delete_cookie(cookie_name(storefront, settings), path="/", httponly=True, samesite="lax",
                           secure=settings.cookie_secure)


def sign_out_everywhere(session: Session, contact: Contact) -> int:
    """End every session of the contact, on every device."""
    return sessions.end_sessions(session, contact_id=contact.id)


def api_sign_in_body(token: str, contact: Contact, settings: Settings) -> dict[str, Any]:
    """The JSON a headless storefront gets after a sign-in: the bearer token and who is signed in."""
    return {"status": "signed_in", "access_token": token, "token_type": "bearer",
            "expires_in": settings.session_hours * 3600, "contact": describe_contact(contact),
            "account": describe_account(contact)}


def describe_contact(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, "first_name": contact.first_name, "last_name": contact.last_name,
            "email": contact.email, "role": contact.role, "language": contact.language,
            "date_format": contact.date_format}


def describe_account(contact: Contact) -> dict[str, Any]:
    account = contact.account
    return {"id": account.id, "number": account.number, "name": account.name, "kind": account.kind}


# FastAPI dependencies --------------------------------------------------------------------------------------------

def storefront_from_path(slug: str, session: DbSession) -> Storefront:
    return by_slug(session, slug)


CurrentStorefront = Annotated[Storefront, Depends(storefront_from_path)]


def _require_sign_in(request: Request, storefront: Storefront) -> SignInRequired:
    return SignInRequired(pages.sign_in_required(request, sign_in_path(storefront)).url)


def _page_contact(request: Request, session: DbSession, storefront: CurrentStorefront) -> StorefrontSignIn:
    signed_in = current_sign_in(request, session, storefront)
    if signed_in is None:
        raise _require_sign_in(request, storefront)
    return signed_in


def _page_visitor(request: Request, session: DbSession, storefront: CurrentStorefront) -> StorefrontSignIn | None:
    signed_in = current_sign_in(request, session, storefront)
    if signed_in is None and not storefront.anonymous_access:
        raise _require_sign_in(request, storefront)
    return signed_in


def _api_contact(request: Request, session: DbSession, storefront: CurrentStorefront) -> StorefrontSignIn:
    signed_in = current_sign_in(request, session, storefront)
    if signed_in is None:
        raise NotAuthenticated("Sign in to this storefront first: Authorization: Bearer <token>.",
                               code="not_signed_in", headers={"WWW-Authenticate": "Bearer"})
    return signed_in


def _optional_contact(request: Request, session: DbSession,
                      storefront: CurrentStorefront) -> StorefrontSignIn | None:
    return current_sign_in(request, session, storefront)


# A page that needs a signed-in contact (else 303 to /s/{slug}/sign-in?next=<this page>).
PageContact = Annotated[StorefrontSignIn, Depends(_page_contact)]
# A page anyone may see when the storefront allows anonymous access (else as PageContact); None when anonymous.
PageVisitor = Annotated[StorefrontSignIn | None, Depends(_page_visitor)]
# A JSON route that needs a signed-in contact (cookie or bearer token; else 401 not_signed_in).
ApiContact = Annotated[StorefrontSignIn, Depends(_api_contact)]
# The signed-in contact if there is one, for pages and routes that also serve visitors.
OptionalContact = Annotated[StorefrontSignIn | None, Depends(_optional_contact)]
