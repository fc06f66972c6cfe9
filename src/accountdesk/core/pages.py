"""Helpers shared by every HTML page (console and storefront): errors as readable pages, sign-in redirects,
forms that keep what was typed with a message beside each field, one-shot flash messages, and link tokens moved
out of the address bar."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, unquote, urlencode

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accountdesk.core import idempotency, wording
from accountdesk.core.cookies import host_cookie, path_cookie
from accountdesk.core.errors import AppError, BadRequest, Conflict, ValidationFailed
from accountdesk.core.forms import CSRF_FIELD, redirect, render, verify_csrf
from accountdesk.core.i18n import LANGUAGE_COOKIE, _l, as_data, from_data, later, supported, translate
from accountdesk.core.security import token_digest
from accountdesk.core.web import DbSession, conflict_from_integrity_error

T = TypeVar("T")
FLASH_COOKIE = "accountdesk_flash"
FORM_ERROR = "form"  # key of a message that belongs to the whole form, not to one field
FLASH_LIMIT = 3000  # characters of the flash cookie's value (a cookie holds about 4 kB)
FLASH_TEXT = 300  # characters of a flash message kept as plain text
LINK_COOKIE = "accountdesk_link"
LINK_COOKIE_SECONDS = 3600  # time to fill in the page; the token's own lifetime still decides whether it works
LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")  # core.security.new_token's alphabet


class PageAnswer(Exception):
    """Raised by a page's dependency to answer with `response` instead of the page (PageRoute returns it)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class SignInRequired(Exception):
    """Raised by a page's principal dependency; PageRoute answers with a redirect to the sign-in page, or, when
    `same_site_retry`, with a page that opens the same address again from this site (see sign_in_required)."""

    same_site_retry = False

    def __init__(self, url: str, same_site_retry: bool = False) -> None:
        super().__init__(url)
        self.url, self.same_site_retry = url, same_site_retry


def safe_next(value: str | None, default: str, prefix: str = "/") -> str:
    """A relative path under `prefix` to go back to after sign-in; anything else (other sites) gives `default`."""
    if not value or not value.startswith(prefix) or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 32 for c in value):
        return default
    return value


def sign_in_required(request: Request, sign_in_path: str, *, strict_cookie: bool = False) -> SignInRequired:
    """The redirect to a sign-in page that comes back here afterwards (for GET pages; a POST goes back nowhere).
    A SameSite=Strict session cookie (`strict_cookie`) is not sent when a link on another site (webmail, a chat)
    opens the page: such a visit first gets a page that opens the same address again, now from this site."""
    if request.method != "GET":
        return SignInRequired(sign_in_path)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    cross_site = request.headers.get("sec-fetch-site") == "cross-site"
    return SignInRequired(f"{sign_in_path}?{urlencode({'next': here})}", same_site_retry=strict_cookie and cross_site)


SAME_SITE_RETRY = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0"><title>Opening the page</title>
<link rel="stylesheet" href="/static/accountdesk.css"></head>
<body><main class="narrow"><p>Opening the page… <a href="">Continue</a></p></main></body></html>
"""


def link_token(request: Request) -> str:
    """Dependency of a page opened from an e-mail link `…?token=…` (PageRoute routers). The first request moves the
    token into a short-lived HttpOnly cookie scoped to this page's path and redirects to the same address without
    it, so the token is not left in the address bar, the history, proxy logs or a Referer; the page and its form's
    POST (same path) then read it from the cookie. The token stays single use and expiring: the service checks it
    as before. Use: `token: LinkToken` in the GET and the POST endpoint of the page."""
    secure = request.app.state.settings.cookie_secure
    name = path_cookie(LINK_COOKIE, secure)
    if request.method == "GET" and "token" in request.query_params:
        token, path = request.query_params["token"], request.url.path
        rest = [(key, value) for key, value in request.query_params.multi_items() if key != "token"]
        response = redirect(path + (f"?{urlencode(rest)}" if rest else ""))
        if LINK_TOKEN.fullmatch(token):
            response.set_cookie(name, token, max_age=LINK_COOKIE_SECONDS, path=path, httponly=True, samesite="lax",
                                secure=secure)
        else:
            response.delete_cookie(name, path=path, httponly=True, samesite="lax", secure=secure)
        raise PageAnswer(response)
    return request.cookies.get(name, "")


LinkToken = Annotated[str, Depends(link_token)]


def _hold_session(request: Request, session: DbSession) -> None:
    request.state.page_session = session


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PageRoute(APIRoute):
    """Route class for HTML pages: every unsafe method (a form's POST) checks the form's CSRF token before anything
    else (core.forms.verify_csrf), so no page module can forget it; errors become a readable page with the same
    status instead of JSON, and the request's transaction is rolled back first, since the page answers normally
    and the session would commit. The error page gets `request.state.page_context` (e.g. {"staff": principal}, set
    by the principal dependency) so that it keeps the layout's navigation."""

    error_template = "console/error.html"

    def __init__(self, path: str, endpoint: Callable[..., Any], *, dependencies: Any = None, **kwargs: Any) -> None:
        unsafe = set(kwargs.get("methods") or ()) - SAFE_METHODS
        csrf = [Depends(verify_csrf)] if unsafe else []
        super().__init__(path, endpoint, dependencies=[Depends(_hold_session), *csrf, *(dependencies or [])],
                         **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        template = self.error_template

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return HTMLResponse(SAME_SITE_RETRY) if exc.same_site_retry else redirect(exc.url)
            except PageAnswer as exc:
                return exc.response
            except (AppError, RequestValidationError, IntegrityError) as exc:
                session = getattr(request.state, "page_session", None)
                if session is not None:
                    session.rollback()
                return error_page(request, exc, template)

        if not set(self.methods) - SAFE_METHODS:
            return page_handler

        async def once(request: Request) -> Response:
            """A form with a key (core.idempotency.form_key_field) runs once per key: a double click or a resend
            shows the first answer (the redirect it got). Refused forms keep no answer: they are sent again."""
            await request.body()  # kept for the key's fingerprint before the form parser reads the stream
            key = (await request.form()).get(idempotency.FORM_FIELD)
            if not isinstance(key, str) or not key:
                return await page_handler(request)
            try:
                await verify_csrf(request)  # no key is kept for another site's form
                outcome = await idempotency.wait_for_answer(request, idempotency.parse_key(key),
                                                            "browser:" + token_digest(request.state.csrf_seed)[:40])
                if isinstance(outcome, idempotency.InUse):
                    raise Conflict("This form is still being sent. Wait a moment and reload the page.",
                                   code="idempotency_key_in_use", headers={"Retry-After": str(outcome.retry_after)})
                if isinstance(outcome, idempotency.Reused):
                    raise ValidationFailed("This form was already sent with other values. Reload the page and fill "
                                           "it in again.", code="idempotency_key_reused")
            except AppError as exc:
                return error_page(request, exc, template)
            if isinstance(outcome, idempotency.Replay):
                return outcome.response()
            return await idempotency.run_claimed(request, page_handler, outcome,
                                                 keep=lambda response: 300 <= response.status_code < 400)

        return once


def error_page(request: Request, exc: Exception, template: str) -> Response:
    if isinstance(exc, RequestValidationError):
        exc = BadRequest(_l("This address has a value the page cannot use."))
    elif isinstance(exc, IntegrityError):
        exc = conflict_from_integrity_error(exc)
    assert isinstance(exc, AppError)
    titles = {400: _l("Bad request"), 403: _l("Not allowed"), 404: _l("Not found"), 409: _l("Conflict"),
              422: _l("Not accepted"), 429: _l("Too many attempts"), 401: _l("Sign in first")}
    context = {**getattr(request.state, "page_context", {}),
               "title": titles.get(exc.status_code, _l("Something is wrong")), "message": later(exc.message),
               "code": exc.code}
    response = render(request, template, context, status_code=exc.status_code)
    response.headers.update(exc.headers)
    return response


async def form_fields(request: Request) -> dict[str, str]:
    """Dependency: the posted form as {name: text} (the last value of a repeated name), without the CSRF token."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k not in (CSRF_FIELD, idempotency.FORM_FIELD)}


def nest(fields: Mapping[str, str], *prefixes: str) -> dict[str, Any]:
    """Turn dotted form names ("billing_address.city", "attributes.size") into nested dicts for the schemas."""
    data: dict[str, Any] = {p: {} for p in prefixes}
    for name, value in fields.items():
        head, dot, rest = name.partition(".")
        if dot and head in prefixes:
            data[head][rest] = value
        elif not dot:
            data[name] = value
    return data


def active_choice(form: Mapping[str, str], buttons: str) -> bool:
    """An Activate/Deactivate form's choice (its `active` field, "true" or "false"); 400 naming `buttons`
    otherwise."""
    if form.get("active") not in ("true", "false"):
        raise BadRequest(buttons)
    return form["active"] == "true"


def without_blanks(fields: Mapping[str, str]) -> dict[str, str]:
    """A new record's form without the fields left empty: a mandatory one is then reported missing ("This field is
    required."), an optional one takes the schema's default."""
    return {name: value for name, value in fields.items() if value.strip()}


def field_errors(exc: ValidationError | AppError | IntegrityError) -> dict[str, str]:
    """{form field name: readable message} from a pydantic error, a service error or a duplicate in the database.
    Field names are the dotted pydantic locations ("billing_address.city"); a whole-form message is under "form"."""
    if isinstance(exc, IntegrityError):
        exc = conflict_from_integrity_error(exc)
    if isinstance(exc, AppError):
        return dict(exc.fields) or {FORM_ERROR: exc.message}
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error.get("loc", ())) or FORM_ERROR
        errors.setdefault(name, wording.problem(error))
    return errors


def attempt(session: Session, action: Callable[[], T]) -> tuple[T | None, dict[str, str]]:
    """Run a form's validation and service call in a savepoint: (result, {}) or, when the input is refused,
    (None, field messages) with nothing changed, so that the page can show the form again."""
    try:
        with session.begin_nested():
            return action(), {}
    except (ValidationError, ValidationFailed, Conflict, IntegrityError) as exc:
        return None, field_errors(exc)


@dataclass
class Form:
    """What a form shows: the values typed (after a refused POST) or the record's, and a message per field.
    Templates call value/checked/error/id; `unshown` lists messages no field displayed (shown near the button)."""

    values: Mapping[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    prefix: str = "f"
    submitted: bool = False
    _shown: set[str] = field(default_factory=set)

    @classmethod
    def refused(cls, values: Mapping[str, str], errors: dict[str, str], prefix: str = "f") -> Form:
        return cls(values, errors, prefix, submitted=True)

    def value(self, name: str, default: Any = "") -> Any:
        if self.submitted:
            return self.values.get(name, "")
        return "" if default is None else default

    def checked(self, name: str, default: bool = False) -> bool:
        return name in self.values if self.submitted else bool(default)

    def error(self, name: str) -> str:
        self._shown.add(name)
        return translate(self.errors.get(name, ""))

    def id(self, name: str) -> str:
        return f"{self.prefix}-{name.replace('.', '-').replace('_', '-')}"

    def unshown(self) -> list[str]:
        return [translate(message) for name, message in self.errors.items() if name not in self._shown]


def page(request: Request, template: str, context: dict[str, Any] | None = None,
         status_code: int = 200) -> Response:
    """Render a page with the flash message left by the previous redirect (shown once)."""
    secure = request.app.state.settings.cookie_secure
    flash = unquote(request.cookies.get(host_cookie(FLASH_COOKIE, secure), ""))[:FLASH_LIMIT]
    response = render(request, template, {"flash": _flash_message(flash) if flash else "", **(context or {})},
                      status_code=status_code)
    if flash:
        response.delete_cookie(host_cookie(FLASH_COOKIE, secure), path="/", httponly=True, samesite="lax",
                               secure=secure)
    return response


def choose_language(request: Request, language: str, back: str, offered: Collection[str]) -> Response:
    """The language switcher: remember the visitor's choice among the `offered` languages in a cookie (a year) and
    go back to the page."""
    response, secure = redirect(back), request.app.state.settings.cookie_secure
    if supported(language) in offered:
        response.set_cookie(host_cookie(LANGUAGE_COOKIE, secure), supported(language) or "", max_age=365 * 86400,
                            path="/", httponly=True, samesite="lax", secure=secure)
    return response


def flash_redirect(request: Request, url: str, message: Any) -> Response:
    """Redirect after a POST (303) with a short message for the next page. A cookie rather than the query string,
    so that nobody can put words on our pages with a link; the page escapes it anyway. The message travels as its
    catalogue words and values (`i18n.as_data`), and the next page shows it in its reader's language: write messages
    as `_l()`, with named values (`_l("Contact %(name)s added.", name=...)`), never as f-strings."""
    response, secure = redirect(url), request.app.state.settings.cookie_secure
    value = quote(json.dumps(as_data(message), ensure_ascii=False, separators=(",", ":")))
    if len(value) > FLASH_LIMIT:  # long values (names): the text of the moment, cut, rather than no message at all
        value = quote(json.dumps(str(message)[:FLASH_TEXT]))
    response.set_cookie(host_cookie(FLASH_COOKIE, secure), value, max_age=60, path="/", httponly=True,
                        samesite="lax", secure=secure)
    return response


def _flash_message(flash: str) -> Any:
    """The flash message a cookie carries, translated when shown (plain text from an older cookie as it is)."""
    try:
        return from_data(json.loads(flash))
    except (ValueError, RecursionError):
        return later(flash[:FLASH_TEXT])
