"""OpenID Connect endpoints of each storefront (discovery, JWKS, authorize, token, userinfo, logout), the staff API
for its clients, and the backend's read of a buyer."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from markupsafe import escape
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.routing import Route

from accountdesk.contacts.models import Contact
from accountdesk.core.db import utcnow
from accountdesk.core.errors import NotAuthenticated, NotFound
from accountdesk.core.security import token_digest
from accountdesk.core.settings import Settings
from accountdesk.core.validation import all_storable
from accountdesk.core.web import DbSession, media_type
from accountdesk.oidc import claims, clients, keys, logout
from accountdesk.oidc.backend import backend_credential
from accountdesk.oidc.models import OidcToken
from accountdesk.oidc.schemas import ClientIn
from accountdesk.oidc.server import AuthorizationServer, issuer, issuer_of
from accountdesk.oidc.server import Request as OAuthRequest
from accountdesk.signin.session import CurrentStorefront, current_sign_in, sign_in_path, sign_out
from accountdesk.staff.deps import api_staff, bearer_token
from accountdesk.staff.service import ADMIN, OPERATOR, StaffPrincipal
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.policy import by_slug

# The protocol endpoints are described by each storefront's discovery document (OpenID Connect Discovery), not here.
# The app includes them before every other router (see app.ROUTERS); `router` is the staff API.
protocol = APIRouter(tags=["openid connect"])
router = APIRouter(prefix="/api/v1/storefronts/{slug}", tags=["openid connect clients"])
Operator = Annotated[StaffPrincipal, Depends(api_staff(OPERATOR))]
Admin = Annotated[StaffPrincipal, Depends(api_staff(ADMIN))]
BASE = "/s/{slug}/oidc"
FRESH_AFTER = "login_after"  # added to the authorize request sent through the sign-in page: sign-ins before it are old
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NO_DISK_WAIT = text("SET LOCAL synchronous_commit = off")
# The grants' own threads, one trip each: anyio's (run_in_threadpool) hand a call over through a cancel scope, the
# capacity limiter and a queue.Queue, ~0.1-0.2 ms more CPU a grant than an executor's SimpleQueue on a busy process. A
# grant holds its row locks only within its trip, so one waiting for a thread blocks no other; as many as the
# connections of Database.unwaited.
GRANT_THREADS = ThreadPoolExecutor(20, thread_name_prefix="oidc-grant")


def _server(request: Request, session: Session, storefront: Storefront) -> AuthorizationServer:
    return AuthorizationServer(session, storefront.slug, request.app.state.settings)


def _oauth_request(request: Request, settings: Settings, slug: str, form: list[tuple[str, str]] | None = None
                   ) -> OAuthRequest:
    uri = issuer_of(settings, slug) + request.scope["path"].removeprefix(f"/s/{slug}")
    if query := request.scope["query_string"]:
        uri += "?" + query.decode("latin-1")
    return OAuthRequest(request.method, uri, request.headers, list(request.query_params.multi_items()),
                        form or [])


def _answer(status: int, body: Any, headers: dict[str, str]) -> Response:
    if status in (301, 302, 303):
        return RedirectResponse(headers["Location"], status_code=302, headers=NO_STORE)
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return JSONResponse(body, status_code=status, headers={**headers, **NO_STORE})


# After the sign-in form, a browser follows the redirects of its POST under the sign-in page's CSP form-action 'self',
# which stops at the client's (other) site: browsers are sent on by a page that opens the client's address itself.
ONWARD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={url}">
<title>Returning to the shop</title><link rel="stylesheet" href="/static/accountdesk.css"></head>
<body><main class="narrow"><h1>Signed in</h1><p>Returning to the shop… <a href="{url}">Continue</a></p></main></body>
</html>
"""


def _to_client(request: Request, answer: tuple[int, Any, dict[str, str]]) -> Response:
    status, _, headers = answer
    if status == 302 and request.headers.get("sec-fetch-mode") == "navigate":
        return HTMLResponse(ONWARD.format(url=escape(headers["Location"])), headers=NO_STORE)
    return _answer(*answer)


@protocol.get("/s/{slug}/.well-known/openid-configuration", include_in_schema=False)
def discovery(request: Request, storefront: CurrentStorefront) -> dict[str, Any]:
    """The storefront's OpenID Provider metadata (issuer `<base URL>/s/<slug>`)."""
    iss = issuer(request.app.state.settings, storefront)
    return {"issuer": iss, "authorization_endpoint": f"{iss}/oidc/authorize", "token_endpoint": f"{iss}/oidc/token",
            "userinfo_endpoint": f"{iss}/oidc/userinfo", "jwks_uri": f"{iss}/oidc/jwks",
            "end_session_endpoint": f"{iss}/oidc/logout", "scopes_supported": list(claims.SCOPES),
            "response_types_supported": ["code"], "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": [keys.ALGORITHM],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"], "prompt_values_supported": ["none", "login"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "name",
                                 "given_name", "family_name", "locale", "email", "email_verified",
                                 claims.ACCOUNT_CLAIM],
            "backchannel_logout_supported": True, "backchannel_logout_session_supported": True,
            "authorization_response_iss_parameter_supported": False}


@protocol.get("/s/{slug}/oidc/jwks", include_in_schema=False)
def jwks(session: DbSession, storefront: CurrentStorefront) -> dict[str, Any]:
    """The public keys ID tokens and logout tokens are signed with (two during a key rollover)."""
    return keys.jwks(session)


def _fresh_enough(request: Request, auth_time: float) -> bool:
    """prompt=login and max_age ask for a recent sign-in: one after the request went through the sign-in page, or
    younger than max_age seconds."""
    params = request.query_params
    after = params.get(FRESH_AFTER, "")
    if after.isdigit() and auth_time >= int(after):
        return True
    if "login" in params.get("prompt", "").split():
        return False
    max_age = params.get("max_age", "")
    return not max_age.isdigit() or time.time() - auth_time <= int(max_age)


def _to_sign_in(request: Request, storefront: Storefront) -> Response:
    query = [(k, v) for k, v in request.query_params.multi_items() if k != FRESH_AFTER]
    query.append((FRESH_AFTER, str(int(time.time()) - 1)))
    back = f"{request.url.path}?{urlencode(query)}"
    return RedirectResponse(f"{sign_in_path(storefront)}?{urlencode({'next': back})}", status_code=302,
                            headers=NO_STORE)


@protocol.get(BASE + "/authorize", include_in_schema=False)
def authorize(request: Request, session: DbSession, storefront: CurrentStorefront) -> Response:
    """Authorization code flow: signs the buyer in through the storefront's sign-in pages when needed, then returns
    to the client's redirect URI with a code (or an error)."""
    server = _server(request, session, storefront)
    oauth = _oauth_request(request, server.settings, server.slug)
    signed_in = current_sign_in(request, session, storefront)
    try:
        grant = server.get_consent_grant(oauth, end_user=signed_in.contact if signed_in else None)
        redirect_uri = grant.redirect_uri
        data = oauth.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.", redirect_uri=redirect_uri)
        if grant.client.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("A public client must use PKCE (S256).", redirect_uri=redirect_uri)
    except OAuth2Error as error:
        error.state = oauth.payload.state
        return _to_client(request, server.handle_error_response(oauth, error))
    if signed_in is None or not _fresh_enough(request, signed_in.auth.created_at.timestamp()):
        return _to_sign_in(request, storefront)
    server.auth_session_id, server.auth_time = signed_in.auth.id, signed_in.auth.created_at
    return _to_client(request, server.create_authorization_response(oauth, grant_user=signed_in.contact, grant=grant))


async def _token_form(request: Request) -> list[tuple[str, str]]:
    """The token request's parameters: RFC 6749 sends them form-encoded (any other body carries none)."""
    if media_type(request.headers.get("content-type", "")) != "application/x-www-form-urlencoded":
        return []
    return parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)


def _grant(connection: Connection, request: Request, slug: str, oauth: OAuthRequest) -> tuple[int, Any, dict]:
    """Authlib's answer to the token request, its grants and our prebuilt statements running on `connection`; the
    ORM session bound to it is used only by the grants that need rows (code exchange, refresh)."""
    with Session(bind=connection) as session:
        server = AuthorizationServer(session, slug, request.app.state.settings, connection)
        status, body, headers = server.create_token_response(oauth)
        if status == 401 and body.get("error") == "invalid_client":
            by_slug(session, slug)  # an unknown storefront is a 404, as on its other routes
        session.flush()  # a subject made for an ID token, before the connection commits
    return status, body, headers


def _issue(request: Request, slug: str, form: list[tuple[str, str]]) -> Response:
    """The grant on one connection. A token is cheap to issue again: its commit need not wait for the disk (a
    crash loses at most the last few milliseconds of issued tokens, which then simply do not work).

    A client-credentials grant reads its client and writes one token: each statement commits by itself, on the
    database's connections for such writes (core.db.Database.unwaited), and a connection the server had closed
    meanwhile costs one more try. The grants that spend a code or rotate a refresh token run in one transaction."""
    db, settings = request.app.state.db, request.app.state.settings
    oauth = _oauth_request(request, settings, slug, form)
    if oauth.payload.grant_type == "client_credentials":  # Authlib picks the grant by the same reading
        for tries_left in (1, 0):
            try:
                with db.unwaited.connect() as connection:
                    return _answer(*_grant(connection, request, slug, oauth))
            except DBAPIError as error:
                if not (error.connection_invalidated and tries_left):
                    raise
            oauth = _oauth_request(request, settings, slug, form)
    with db.engine.begin() as connection:
        if db.is_postgresql:
            connection.execute(NO_DISK_WAIT)
        return _answer(*_grant(connection, request, slug, oauth))


async def token(request: Request) -> Response:
    """Token endpoint: authorization_code (with PKCE), refresh_token (rotated) and client_credentials.

    The hottest route of the provider (storefront backends fetch their credentials here), so it is a plain route:
    none of the API's per-request dependency solving, its own check for text that cannot be stored (the app-wide
    one is a dependency), and one trip to a grant thread (which reads no context variable of the request)."""
    slug, form = request.path_params["slug"], await _token_form(request)
    if not all_storable([slug, *(text for pair in [*request.query_params.multi_items(), *form] for text in pair)]):
        return JSONResponse({"error": "invalid_request", "error_description": "A parameter holds a character that "
                             "cannot be stored (a control character or a lone surrogate)."}, status_code=400,
                            headers=NO_STORE)
    return await asyncio.get_running_loop().run_in_executor(GRANT_THREADS, _issue, request, slug, form)


protocol.add_route(BASE + "/token", token, methods=["POST"], include_in_schema=False)
express = [Route(BASE + "/token", token, methods=["POST"])]  # a grant is taken ahead of the middleware (app.EXPRESS)


def _bearer_error(description: str) -> JSONResponse:
    return JSONResponse({"error": "invalid_token", "error_description": description}, status_code=401,
                        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"',
                                 **NO_STORE})


@protocol.api_route(BASE + "/userinfo", methods=["GET", "POST"], include_in_schema=False)
def userinfo(request: Request, session: DbSession, storefront: CurrentStorefront) -> Response:
    """The signed-in buyer's claims, for an access token with the openid scope."""
    presented = bearer_token(request)
    row = session.scalar(select(OidcToken).where(OidcToken.access_digest == token_digest(presented or ""),
                                                 OidcToken.storefront_id == storefront.id))
    if row is None or row.revoked_at is not None or row.access_expires_at <= utcnow() or row.contact_id is None:
        return _bearer_error("The access token is not valid.")
    contact = session.get(Contact, row.contact_id)
    if contact is None or not contact.can_sign_in or "openid" not in row.scope.split():
        return _bearer_error("The access token is not valid.")
    return JSONResponse(claims.user_claims(session, contact, row.scope), headers=NO_STORE)


@protocol.get(BASE + "/logout", include_in_schema=False)
def end_session(request: Request, session: DbSession, storefront: CurrentStorefront) -> Response:
    """RP-initiated logout: needs the ID token (`id_token_hint`); signs the browser out of the storefront, ends
    the relying parties' sessions of that sign-in, and returns to `post_logout_redirect_uri` when it is registered
    exactly."""
    server = _server(request, session, storefront)
    oauth = _oauth_request(request, server.settings, server.slug)
    try:
        ending = server.validate_endpoint_request("end_session", oauth)
        if ending.needs_confirmation:
            raise InvalidRequestError("Send id_token_hint: the ID token of the sign-in to end.")
    except OAuth2Error as error:
        return _answer(*server.handle_error_response(oauth, error))
    response = RedirectResponse(ending.redirect_uri or sign_in_path(storefront), status_code=302, headers=NO_STORE)
    contact = claims.contact_by_subject(session, storefront.id, str(ending.id_token_claims.get("sub", "")))
    if contact is None:
        return response
    signed_in = current_sign_in(request, session, storefront)
    this_browser = signed_in is not None and signed_in.contact.id == contact.id
    logout.end_rp_sign_in(session, contact.id, str(ending.id_token_claims.get("sid", "")),
                          signed_in.auth.id if this_browser else None)
    if this_browser:
        sign_out(session, request, response, storefront)
    return response


# --- staff API: the storefront's clients --------------------------------------------------------------------------

def _storefront(session: DbSession, slug: str) -> Storefront:
    storefront = session.scalar(select(Storefront).where(Storefront.slug == slug))
    if storefront is None:
        raise NotFound("No such storefront.", code="storefront_not_found")
    return storefront


@router.get("/oidc-clients")
def list_clients(slug: str, session: DbSession, staff: Operator) -> list[dict[str, Any]]:
    """The storefront's OpenID Connect clients (relying parties and backends); secrets are never shown again."""
    return [clients.describe(c) for c in clients.list_clients(session, _storefront(session, slug))]


@router.post("/oidc-clients", status_code=201)
def register_client(slug: str, body: ClientIn, request: Request, session: DbSession, staff: Admin) -> dict[str, Any]:
    """Register a client; a confidential one's `client_secret` is in this answer only."""
    client, secret = clients.register(session, staff.actor, _storefront(session, slug), body,
                                      request.app.state.settings)
    return clients.describe(client, secret)


@router.post("/oidc-clients/{client_id}/secret")
def replace_client_secret(slug: str, client_id: str, session: DbSession, staff: Admin) -> dict[str, Any]:
    """A new secret for a confidential client (the old one stops working at once); shown in this answer only."""
    client = clients.get_client(session, _storefront(session, slug), client_id)
    secret = clients.new_secret(session, staff.actor, client)
    return clients.describe(client, secret)


@router.delete("/oidc-clients/{client_id}", status_code=204)
def remove_client(slug: str, client_id: str, session: DbSession, staff: Admin) -> Response:
    """Remove a client; its tokens stop working."""
    clients.remove(session, staff.actor, clients.get_client(session, _storefront(session, slug), client_id))
    return Response(status_code=204)


@router.get("/buyers/{subject}")
def read_buyer(slug: str, subject: str, request: Request, session: DbSession) -> dict[str, Any]:
    """For a storefront backend (scope accounts:read): a buyer of this storefront by the `sub` of their ID token,
    with their account claims."""
    storefront = _storefront(session, slug)
    credential = backend_credential(session, request, storefront)
    if credential is None:
        raise NotAuthenticated("Send this storefront's backend credential: Authorization: Bearer <token>.",
                               code="backend_credential_required", headers={"WWW-Authenticate": "Bearer"})
    credential.require("accounts:read")
    contact = claims.contact_by_subject(session, storefront.id, subject)
    if contact is None:
        raise NotFound("No such buyer on this storefront.", code="buyer_not_found")
    return {**claims.user_claims(session, contact, "openid profile email account"), "status": contact.status}

