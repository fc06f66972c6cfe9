"""Storefront pages: home, sign-in with the account chooser, sign-out, forgot/reset password, activation and
change password."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from accountdesk.contacts.models import Contact
from accountdesk.contacts.service import ACTIVATION, RESET
from accountdesk.core.errors import AppError, ValidationFailed
from accountdesk.core.forms import redirect
from accountdesk.core.i18n import _l, later
from accountdesk.core.pages import LinkToken, PageRoute, choose_language, flash_redirect, page
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession, client_address
from accountdesk.erp.deps import Erp
from accountdesk.erp.gateway import ErpGateway
from accountdesk.signin import service
from accountdesk.signin.session import (
    CurrentStorefront,
    PageContact,
    PageVisitor,
    safe_next,
    sign_in_contact,
    sign_out,
    sign_out_everywhere,
)
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.policy import by_slug


class StorefrontPageRoute(PageRoute):
    """Storefront pages: errors (unknown storefront, expired form) as a readable storefront page."""

    error_template = "storefronts/error.html"


router = APIRouter(prefix="/s/{slug}", include_in_schema=False, route_class=StorefrontPageRoute)
Text = Annotated[str, Form()]


def _page(request: Request, template: str, storefront: Storefront, context: dict[str, Any] | None = None, *,
          error: AppError | None = None, headers: dict[str, str] | None = None) -> Response:
    """Render a storefront page; with an error, its message and its status (422, 401, 403, 429 + Retry-After)."""
    response = page(request, template, {"storefront": storefront, "error": later(error.message) if error else None,
                                        "fields": error.fields if error else {}, **(context or {})},
                    status_code=error.status_code if error else 200)
    response.headers.update({**(error.headers if error else {}), **(headers or {})})
    return response


def _passwords_match(password: str, confirm: str) -> None:
    if password != confirm:
        raise ValidationFailed("The two passwords differ.", fields={"password_confirm": "The two passwords differ."})


def _finish_sign_in(session: Session, request: Request, storefront: Storefront, contact: Contact,
                    next_path: str, erp: ErpGateway, choice_token: str = "") -> Response:
    service.before_sign_in(session, storefront, contact, erp, base_url=request.app.state.settings.base_url)
    if choice_token:
        contact = service.choose(session, storefront, choice_token, contact.id)
    response = redirect(safe_next(storefront, next_path))
    sign_in_contact(session, response, storefront, contact, request=request)
    return response


@router.get("")
def home(request: Request, storefront: CurrentStorefront, visitor: PageVisitor) -> Response:
    return _page(request, "storefronts/home.html", storefront, {"signed_in": visitor})


@router.get("/sign-in")
def sign_in_form(request: Request, storefront: CurrentStorefront, next: str = "") -> Response:
    return _page(request, "storefronts/sign_in.html", storefront, {"next": next})


@router.post("/sign-in")
def sign_in(slug: str, request: Request, session: DbSession, erp: Erp, email: Text = "", password: Text = "",
            next: Text = "") -> Response:
    # No storefront dependency: a sign-in to an unknown storefront is counted before it is refused.
    try:
        found = service.find_candidates(session, request.app.state.rate_limits, slug, email, password,
                                        client_address(request), request.app.state.settings.base_url)
        if len(found.contacts) > 1:
            choice_token = service.offer_choice(session, found.storefront, found.contacts)
            return _page(request, "storefronts/choose_account.html", found.storefront,
                         {"choice_token": choice_token, "candidates": found.contacts, "next": next})
        return _finish_sign_in(session, request, found.storefront, found.contacts[0], next, erp)
    except AppError as exc:
        return _page(request, "storefronts/sign_in.html", by_slug(session, slug),
                     {"email": email, "next": next}, error=exc)


@router.post("/sign-in/choose")
def choose_account(slug: str, request: Request, session: DbSession, erp: Erp, choice_token: Text = "",
                   contact_id: Annotated[Id, Form()] = 0, next: Text = "") -> Response:
    try:
        storefront, contact = service.chosen_contact(session, slug, choice_token, contact_id)
        return _finish_sign_in(session, request, storefront, contact, next, erp, choice_token)
    except AppError as exc:
        return _page(request, "storefronts/sign_in.html", by_slug(session, slug), {"next": next}, error=exc)


@router.post("/sign-out")
def sign_out_page(request: Request, session: DbSession, storefront: CurrentStorefront) -> Response:
    response = flash_redirect(request, f"/s/{storefront.slug}/sign-in", _l("You are signed out."))
    sign_out(session, request, response, storefront)
    return response


@router.post("/sign-out-everywhere")
def sign_out_everywhere_page(request: Request, session: DbSession, signed_in: PageContact) -> Response:
    sign_out_everywhere(session, signed_in.contact)
    response = flash_redirect(request, f"/s/{signed_in.storefront.slug}/sign-in",
                              _l("You are signed out on every device."))
    sign_out(session, request, response, signed_in.storefront)
    return response


@router.get("/language/{language}")
def switch_language(request: Request, storefront: CurrentStorefront, language: str, next: str = "") -> Response:
    """The language switcher's links: the visitor's choice of language for this site's pages."""
    return choose_language(request, language, safe_next(storefront, next), storefront.offered_languages)


@router.get("/password/forgot")
def forgot_form(request: Request, storefront: CurrentStorefront) -> Response:
    return _page(request, "storefronts/forgot_password.html", storefront)


@router.post("/password/forgot")
def forgot(slug: str, request: Request, session: DbSession, email: Text = "") -> Response:
    # No storefront dependency: the rate limits run before this request's transaction begins.
    try:
        if not email.strip():
            raise ValidationFailed("Enter your e-mail address.", fields={"email": "Enter your e-mail address."})
        service.request_password_reset(session, request.app.state.rate_limits, slug, email, client_address(request),
                                       request.app.state.settings)
    except AppError as exc:
        return _page(request, "storefronts/forgot_password.html", by_slug(session, slug), {"email": email},
                     error=exc)
    return _page(request, "storefronts/forgot_sent.html", by_slug(session, slug))


def _link_form(request: Request, session: Session, storefront: Storefront, purpose: str, token: str,
               error: AppError | None = None) -> Response:
    contact = service.contact_for_link(session, storefront, purpose, token)
    if contact is None:
        return _page(request, "storefronts/link_invalid.html", storefront, {"purpose": purpose},
                     error=ValidationFailed(service.LINK_INVALID))
    return _page(request, "storefronts/set_password.html", storefront, {"purpose": purpose, "contact": contact},
                 error=error)


@router.get("/password/reset")
def reset_form(request: Request, session: DbSession, storefront: CurrentStorefront, token: LinkToken) -> Response:
    return _link_form(request, session, storefront, RESET, token)


@router.post("/password/reset")
def reset(request: Request, session: DbSession, storefront: CurrentStorefront, token: LinkToken,
          password: Text = "", password_confirm: Text = "") -> Response:
    try:
        _passwords_match(password, password_confirm)
        service.complete_link(session, storefront, RESET, token, password, request.app.state.settings.base_url)
    except AppError as exc:
        return _link_form(request, session, storefront, RESET, token, exc)
    return flash_redirect(request, f"/s/{storefront.slug}/sign-in",
                          _l("Your password was changed. Sign in with your new password."))


@router.get("/activate")
def activation_form(request: Request, session: DbSession, storefront: CurrentStorefront,
                    token: LinkToken) -> Response:
    return _link_form(request, session, storefront, ACTIVATION, token)


@router.post("/activate")
def activate(request: Request, session: DbSession, storefront: CurrentStorefront, token: LinkToken,
             password: Text = "", password_confirm: Text = "") -> Response:
    try:
        _passwords_match(password, password_confirm)
        contact = service.complete_link(session, storefront, ACTIVATION, token, password,
                                        request.app.state.settings.base_url)
    except AppError as exc:
        return _link_form(request, session, storefront, ACTIVATION, token, exc)
    if not contact.can_sign_in:
        return flash_redirect(request, f"/s/{storefront.slug}/sign-in",
                              _l("Your password is set. You can sign in once your account is active."))
    response = flash_redirect(request, f"/s/{storefront.slug}", _l("Your password is set. Welcome!"))
    sign_in_contact(session, response, storefront, contact, request=request)
    return response


@router.get("/account/password")
def change_password_form(request: Request, signed_in: PageContact) -> Response:
    return _page(request, "storefronts/change_password.html", signed_in.storefront, {"signed_in": signed_in})


@router.post("/account/password")
def change_password(request: Request, session: DbSession, signed_in: PageContact, current_password: Text = "",
                    password: Text = "", password_confirm: Text = "") -> Response:
    try:
        _passwords_match(password, password_confirm)
        service.change_password(session, request.app.state.rate_limits, signed_in, current_password, password,
                                request.app.state.settings.base_url, client_address(request))
    except AppError as exc:
        return _page(request, "storefronts/change_password.html", signed_in.storefront, {"signed_in": signed_in},
                     error=exc)
    return _page(request, "storefronts/change_password.html", signed_in.storefront,
                 {"signed_in": signed_in, "flash": "Your password was changed. Your other devices were signed out."})
