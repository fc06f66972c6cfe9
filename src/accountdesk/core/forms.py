"""CSRF protection for HTML forms (signed double-submit cookie) and helpers for rendering pages."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accountdesk.core.cookies import host_cookie
from accountdesk.core.errors import Forbidden
from accountdesk.core.i18n import _l, page_language, speaking
from accountdesk.core.web import templates

CSRF_COOKIE = "accountdesk_csrf"
CSRF_FIELD = "csrf_token"


def _sign(seed: str, secret: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{seed}".encode(), hashlib.sha256).hexdigest()


class CsrfCookieMiddleware:
    """Gives every browser a random CSRF seed cookie; forms carry its HMAC, which an attacker cannot compute."""

    def __init__(self, app: ASGIApp, secure: bool = False) -> None:
        self.app, self.secure, self.cookie = app, secure, host_cookie(CSRF_COOKIE, secure)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        seed = request.cookies.get(self.cookie)
        fresh = not seed or len(seed) > 64
        if fresh:
            seed = secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf_seed"] = seed

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                cookie = f"{self.cookie}={seed}; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def csrf_token(request: Request) -> str:
    return _sign(request.state.csrf_seed, request.app.state.settings.secret_key)


async def verify_csrf(request: Request) -> None:
    """The form's token must match this browser's cookie: core.pages.PageRoute checks it on every unsafe method."""
    form = await request.form()
    sent = str(form.get(CSRF_FIELD, ""))
    if not hmac.compare_digest(sent, csrf_token(request)):
        raise Forbidden(_l("The form expired or came from another site. Reload the page and try again."),
                        code="csrf_failed")


def render(request: Request, template: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    """Render a page with the CSRF token and the request at hand, in the language of the person who reads it (see
    core.i18n.page_language) and with their date format."""
    context = {"csrf_token": csrf_token(request), **(context or {})}
    language, date_format = page_language(request, context)
    context.update(language=language, date_format=date_format, here=_here(request))
    with speaking(language, date_format):
        response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Content-Language"] = language
    return response


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def redirect(url: str, status_code: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status_code)
