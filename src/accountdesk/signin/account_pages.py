"""Storefront pages around a signed-in login: the header's account switcher (another login of the same e-mail,
after the ERP check) and the re-verification link of an expired login. Rules: signin.switcher, signin.erp_check and
signin.reverification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Form as FormField
from sqlalchemy.orm import Session, object_session

from accountdesk.contacts.models import Contact
from accountdesk.core.errors import AppError, BadRequest
from accountdesk.core.i18n import _l, later
from accountdesk.core.pages import LinkToken, flash_redirect, page
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession, templates
from accountdesk.erp.deps import Erp
from accountdesk.signin import erp_check, reverification, switcher
from accountdesk.signin.pages import StorefrontPageRoute
from accountdesk.signin.session import CurrentStorefront, StorefrontSignIn, sign_in_contact
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.policy import by_slug

storefront_pages = APIRouter(prefix="/s/{slug}", route_class=StorefrontPageRoute)
Text = Annotated[str, FormField()]


def _switch_options(signed_in: StorefrontSignIn | None) -> list[Contact]:
    """For the storefront header's account switcher on any page: the logins to switch between, read in the
    session the sign-in came from (empty when that session is closed; such pages pass `switchable` themselves)."""
    session = object_session(signed_in.contact) if signed_in else None
    return switcher.switchable(session, signed_in.contact) if session is not None else []


templates.env.globals["switch_options"] = _switch_options


def storefront_page(request: Request, template: str, storefront: Storefront, context: dict[str, Any] | None = None,
                    *, error: AppError | None = None, headers: dict[str, str] | None = None) -> Response:
    response = page(request, template, {"storefront": storefront, "error": later(error.message) if error else None,
                                        **(context or {})}, status_code=error.status_code if error else 200)
    response.headers.update({**(error.headers if error else {}), **(headers or {})})
    return response


@storefront_pages.post("/switch")
def switch_account(slug: str, request: Request, session: DbSession, erp: Erp,
                   contact_id: Annotated[Id, FormField()] = 0) -> Response:
    """Switch to another login of the same e-mail from the header's drop-down; a new session, no password."""
    try:
        signed_in, target = switcher.prepare_switch(session, request, slug, contact_id)
        erp_check.verify_sign_in(session, erp, signed_in.storefront, target)
    except AppError as exc:  # what the ERP check recorded is kept (core.db.kept)
        storefront = by_slug(session, slug)
        return storefront_page(request, "erp/refused.html", storefront, error=exc)
    response = flash_redirect(request, f"/s/{slug}/account", _l("You are now working for %(account)s.",
                                                                         account=target.account.name))
    sign_in_contact(session, response, signed_in.storefront, target, request=request)
    switcher.record_switch(session, signed_in, target)
    return response


def _reverify_page(request: Request, session: Session, storefront: Storefront, token: str,
                   error: AppError | None = None) -> Response:
    contact = reverification.contact_for_link(session, storefront, token)
    if contact is None and error is None:
        error = BadRequest(reverification.LINK_INVALID)
    return storefront_page(request, "erp/reverify.html", storefront, {"contact": contact}, error=error)


@storefront_pages.get("/reverify")
def reverify_form(request: Request, session: DbSession, storefront: CurrentStorefront, token: LinkToken) -> Response:
    """The re-verification link: a button to confirm it is still you (a link preview does not use it up)."""
    return _reverify_page(request, session, storefront, token)


@storefront_pages.post("/reverify")
def reverify(request: Request, session: DbSession, storefront: CurrentStorefront, token: LinkToken) -> Response:
    """Confirm: the login is active again with its password unchanged."""
    try:
        reverification.reverify(session, storefront, token)
    except AppError as exc:
        return _reverify_page(request, session, storefront, token, exc)
    return flash_redirect(request, f"/s/{storefront.slug}/sign-in",
                          _l("Thank you: your login is confirmed. Sign in with your usual password."))


router = APIRouter(include_in_schema=False)
router.include_router(storefront_pages)
