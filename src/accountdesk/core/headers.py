"""Security headers on every response (one pure ASGI middleware) and the endpoint that logs the Content-Security-Policy
violations browsers report.

Every HTML page gets a strict policy: scripts, styles, images and fetches from this site only (no inline script,
style or event handler: behaviour lives in static/accountdesk.js), no framing, forms posting only here. The API
docs (/docs, /redoc: FastAPI's Swagger UI and ReDoc, loaded from a CDN with an inline start-up script) get a policy
of their own that allows that CDN and that script; those pages are the same for every request, so nothing a
visitor sends can reach their inline script. Every response except static files is `Cache-Control: no-store`:
pages carry a CSRF token or a signed-in person's data, and the API answers with tokens or personal data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accountdesk.core.errors import AppError, BadRequest
from accountdesk.core.ratelimit import RateLimits
from accountdesk.core.web import client_address

log = logging.getLogger("accountdesk.csp")

CSP_REPORT_PATH = "/csp-reports"
CSP_REPORT_LIMIT = "60/minute"  # per client address; a page that keeps breaking sends a few per view
CSP_REPORT_MAX_BYTES = 32 * 1024
STATIC_PREFIX = "/static/"

# report-uri only: a browser that knows report-to ignores report-uri when both are given, and Chromium sends
# report-to reports in batches, later; report-uri reports arrive at once (the endpoint reads both formats).
_GUARDS = ["object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
           f"report-uri {CSP_REPORT_PATH}"]
PAGE_POLICY = "; ".join(["default-src 'self'", *_GUARDS])
DOCS_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
    "font-src 'self' https://fonts.gstatic.com",
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
    "worker-src 'self' blob:",
    *_GUARDS])
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer",
    "microphone", "midi", "payment", "publickey-credentials-get", "serial", "usb", "xr-spatial-tracking"))
HSTS = "max-age=31536000"


def security_headers(path: str, content_type: str, *, docs_paths: Iterable[str] = (),
                     hsts: bool = False) -> dict[str, str]:
    """The headers a response to `path` with this content type gets (unless it set them itself)."""
    headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    if hsts:
        headers["Strict-Transport-Security"] = HSTS
    if not path.startswith(STATIC_PREFIX):
        headers["Cache-Control"] = "no-store"
    if content_type.startswith("text/html"):
        headers.update({
            "Content-Security-Policy": DOCS_POLICY if path in docs_paths else PAGE_POLICY,
            "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
            "Cross-Origin-Opener-Policy": "same-origin",
            "Permissions-Policy": PERMISSIONS_POLICY})
    return headers


class SecurityHeadersMiddleware:
    """Adds `security_headers` to every HTTP response; a header the endpoint chose (a page that needs a laxer
    Referrer-Policy, a cacheable download) is kept."""

    def __init__(self, app: ASGIApp, *, docs_paths: Iterable[str] = (), hsts: bool = False) -> None:
        self.app, self.docs_paths, self.hsts = app, frozenset(docs_paths), hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in security_headers(scope["path"], headers.get("content-type", ""),
                                                    docs_paths=self.docs_paths, hsts=self.hsts).items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- CSP violation reports -------------------------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


class ReportTooLarge(AppError):
    status_code = 413
    code = "report_too_large"
    message = "The report is too large."


async def _read_capped(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > CSP_REPORT_MAX_BYTES:
            raise ReportTooLarge()
    return body


def _without_query(url: Any) -> str:
    """A reported address without its query or fragment (they may hold something personal); 'inline', 'eval' and
    the like as they are."""
    text = str(url or "")[:500]
    parts = urlsplit(text)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme and parts.netloc else text


def violations(payload: Any) -> list[dict[str, Any]]:
    """The violations in a report, in either format: `report-uri` ({"csp-report": {...}}, kebab-case) or the
    Reporting API's `report-to` ([{"type": "csp-violation", "body": {...}}], camelCase)."""
    if isinstance(payload, dict) and isinstance(payload.get("csp-report"), dict):
        report = payload["csp-report"]
        return [{"document": _without_query(report.get("document-uri")),
                 "directive": str(report.get("effective-directive") or report.get("violated-directive") or "")[:200],
                 "blocked": _without_query(report.get("blocked-uri")),
                 "source": _without_query(report.get("source-file")), "line": report.get("line-number"),
                 "disposition": str(report.get("disposition") or "enforce")[:20]}]
    if isinstance(payload, list):
        return [{"document": _without_query(body.get("documentURL")),
                 "directive": str(body.get("effectiveDirective") or "")[:200],
                 "blocked": _without_query(body.get("blockedURL")),
                 "source": _without_query(body.get("sourceFile")), "line": body.get("lineNumber"),
                 "disposition": str(body.get("disposition") or "enforce")[:20]}
                for item in payload[:20] if isinstance(item, Mapping) and item.get("type") == "csp-violation"
                for body in [item.get("body")] if isinstance(body, Mapping)]
    raise BadRequest("This is not a CSP violation report.", code="invalid_report")


def _count_report(limits: RateLimits, address: str) -> None:
    limits.hit({f"csp-report:ip:{address}": CSP_REPORT_LIMIT})


@router.post(CSP_REPORT_PATH, status_code=204)
async def csp_report(request: Request) -> Response:
    """Where browsers send Content-Security-Policy violations (report-uri and report-to): each one is logged.
    Rate limited per client address; any site can make a browser post here."""
    await run_in_threadpool(_count_report, request.app.state.rate_limits, client_address(request))
    try:
        payload = json.loads(await _read_capped(request))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The report is not valid JSON.", code="invalid_json") from exc
    for violation in violations(payload):
        log.warning("CSP violation: %s", json.dumps(violation, sort_keys=True))
    return Response(status_code=204)
