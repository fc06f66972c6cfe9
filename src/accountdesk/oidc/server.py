"""The OAuth 2 / OpenID Connect authorization server of one storefront, built from Authlib's grants: authorization
code with PKCE and the OpenID Connect extension, refresh tokens (rotated, reuse revokes the family), client
credentials for storefront backends, and RP-initiated logout. This module only stores and looks up what Authlib asks
for; the protocol rules are Authlib's."""

from __future__ import annotations

import hmac
import secrets
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from authlib.oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, InvalidScopeError, TokenMixin, grants
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode, OpenIDToken
from authlib.oidc.core.models import AuthorizationCodeMixin
from authlib.oidc.rpinitiated import EndSessionEndpoint
from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.orm import Session

from accountdesk.contacts.models import Contact
from accountdesk.core.db import utcnow
from accountdesk.core.security import new_token, token_digest
from accountdesk.core.settings import Settings
from accountdesk.core.validation import all_storable
from accountdesk.oidc import claims, keys
from accountdesk.oidc.models import AuthorizationCode, ClientKind, OidcClient, OidcToken
from accountdesk.storefronts.models import Storefront

CODE_LIFETIME = timedelta(minutes=2)
_clients = OidcClient.__table__
# Built once: the token endpoint runs them on every grant (statement building costs more than the query itself).
# The client's columns Authlib's questions need (each column read costs on every grant); the token's INSERT returns
# nothing (not even the new id SQLAlchemy would ask for).
CLIENT_BY_ID = (select(*(_clients.c[name] for name in ("id", "client_id", "storefront_id", "kind", "secret_digest",
                                                       "redirect_uris", "post_logout_redirect_uris", "scopes")))
                .join(Storefront, Storefront.id == _clients.c.storefront_id)
                .where(_clients.c.client_id == bindparam("client_id"), Storefront.slug == bindparam("slug")))
_tokens = OidcToken.__table__
INSERT_TOKEN = insert(_tokens).inline()
TOKEN_BY_REFRESH = select(_tokens).where(_tokens.c.refresh_digest == bindparam("digest"),
                                         _tokens.c.client_id == bindparam("client"))
ROTATE_TOKEN = (update(_tokens).where(_tokens.c.id == bindparam("token"), _tokens.c.rotated_at.is_(None),
                                      _tokens.c.revoked_at.is_(None)).values(rotated_at=bindparam("now")))


def issuer(settings: Settings, storefront: Storefront) -> str:
    return issuer_of(settings, storefront.slug)


def issuer_of(settings: Settings, slug: str) -> str:
    return f"{settings.base_url.rstrip('/')}/s/{slug}"


class Client(ClientMixin):
    """A registered client as Authlib sees it: its table row, read without the ORM (a token request reads it once
    and changes nothing)."""

    def __init__(self, row: Row[Any]) -> None:
        self.row = row

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": self.row.post_logout_redirect_uris}

    @property
    def is_public(self) -> bool:
        return self.row.kind == ClientKind.public

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.row.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in self.row.scopes and s in claims.IDENTITY_SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris  # exact match, no prefix or pattern

    def check_client_secret(self, client_secret: str) -> bool:
        digest = self.row.secret_digest
        return digest is not None and hmac.compare_digest(digest, token_digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and bool(self.row.redirect_uris)

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return not self.is_public
        return grant_type in ("authorization_code", "refresh_token")


class Code(AuthorizationCodeMixin):
    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())


class Token(TokenMixin):
    def __init__(self, row: OidcToken | Row[Any]) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.row.id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.access_expires_at - self.row.created_at).total_seconds())

    def is_expired(self) -> bool:
        return self.row.access_expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


class Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return self._datalist


class Request(OAuth2Request):
    """An HTTP request as Authlib reads it: the query (authorize, logout) or the form (token endpoint)."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], query: list[tuple[str, str]],
                 form: list[tuple[str, str]]) -> None:
        super().__init__(method, uri, headers=headers)
        self._args, self._form = dict(query), dict(form)
        self.payload = Payload(query + form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def _revoke_family(session: Session, family: str) -> None:
    session.execute(update(OidcToken).where(OidcToken.family == family, OidcToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    @property
    def db(self) -> Session:
        return self.server.session

    def save_authorization_code(self, code: str, request: Request) -> None:
        data = request.payload.data
        self.db.add(AuthorizationCode(
            code_digest=token_digest(code), client_id=request.client.row.id, contact_id=request.user.id,
            auth_session_id=self.server.auth_session_id, redirect_uri=data.get("redirect_uri") or "",
            scope=request.client.get_allowed_scope(data.get("scope")), nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"), code_challenge_method=data.get("code_challenge_method"),
            auth_time=self.server.auth_time, expires_at=utcnow() + CODE_LIFETIME))

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        """The code, used up at once by a conditional UPDATE (so a failed exchange also spends it). A code presented
        a second time revokes every token issued for it (RFC 6749 §4.1.2)."""
        row = self.db.scalar(select(AuthorizationCode).where(AuthorizationCode.code_digest == token_digest(code),
                                                             AuthorizationCode.client_id == client.row.id))
        if row is None:
            return None
        now = utcnow()
        won = self.db.execute(update(AuthorizationCode)
                              .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
                              .values(used_at=now).execution_options(synchronize_session=False)).rowcount == 1
        if not won:
            for family in self.db.scalars(select(OidcToken.family).where(OidcToken.code_id == row.id).distinct()):
                _revoke_family(self.db, family)
            return None
        return Code(row) if row.expires_at > now else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Already spent in query_authorization_code."""

    def authenticate_user(self, authorization_code: Code) -> Contact | None:
        contact = self.db.get(Contact, authorization_code.row.contact_id)
        return contact if contact is not None and contact.can_sign_in else None


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def db(self) -> Session:
        return self.server.session

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        """The refresh token, rotated at once by a conditional UPDATE; one already rotated is a reuse: the whole
        family (every token descended from the same sign-in) is revoked."""
        connection = self.server.connection
        row = connection.execute(TOKEN_BY_REFRESH, {"digest": token_digest(refresh_token),
                                                    "client": self.request.client.row.id}).first()
        if row is None or row.revoked_at is not None:
            return None
        now = utcnow()
        won = connection.execute(ROTATE_TOKEN, {"token": row.id, "now": now}).rowcount == 1
        if not won:
            _revoke_family(self.db, row.family)
            return None
        if row.refresh_expires_at is None or row.refresh_expires_at <= now:
            return None
        return Token(row)

    def authenticate_user(self, refresh_token: Token) -> Contact | None:
        contact = self.db.get(Contact, refresh_token.row.contact_id) if refresh_token.row.contact_id else None
        return contact if contact is not None and contact.can_sign_in else None

    def revoke_old_credential(self, refresh_token: Token) -> None:
        """Already rotated in authenticate_refresh_token."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """A storefront backend's own token: only the backend scopes the client was registered with."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: Client = self.request.client
        asked = (self.request.payload.scope or "").split()
        allowed = [s for s in client.row.scopes if s in claims.BACKEND_SCOPES]
        if not set(asked) <= set(allowed):
            raise InvalidScopeError()
        self.request.scope = " ".join(asked or allowed)


class S256Challenge(CodeChallenge):
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def get_authorization_code_challenge(self, authorization_code: Code) -> str | None:
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: Code) -> str | None:
        return authorization_code.row.code_challenge_method


class IdTokens(OpenIDToken):
    """ID tokens for the code grant (with nonce and auth_time from the code) and for refreshes."""

    def __init__(self, server: AuthorizationServer) -> None:
        self.server = server

    def resolve_client_private_key(self, client: Client) -> Any:
        return self.server.signing_key

    def get_client_algorithm(self, client: Client) -> str:
        return keys.ALGORITHM

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": keys.ALGORITHM, "kid": self.server.signing_key.kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(utcnow().timestamp())
        extra = {"sid": self.server.sid} if self.server.sid else {}
        if self.server.auth_time is not None:
            extra["auth_time"] = int(self.server.auth_time.timestamp())
        return {"iss": self.server.issuer, "aud": client.get_client_id(), "iat": now,
                "exp": now + self.server.settings.oidc_id_token_seconds, **extra}

    def generate_user_info(self, user: Contact, scope: str) -> dict[str, Any]:
        return claims.user_claims(self.server.session, user, scope)


class CodeIdTokens(IdTokens, OpenIDCode):
    def __init__(self, server: AuthorizationServer) -> None:
        IdTokens.__init__(self, server)
        OpenIDCode.__init__(self, require_nonce=False)

    def exists_nonce(self, nonce: str, request: Request) -> bool:
        return False  # a nonce is bound to its one code; the client checks it in the ID token


class EndSession(EndSessionEndpoint):
    def get_server_jwks(self) -> Any:
        return keys.key_set(self.server.session)

    def get_algorithms(self) -> list[str]:
        return [keys.ALGORITHM]

    def end_session(self, end_session_request: Any) -> None:
        self.server.ended = end_session_request


class AuthorizationServer(_AuthorizationServer):
    """One storefront's server for one request (its database session and the storefront's slug: the storefront
    itself is read with the client, in one query)."""

    def __init__(self, session: Session, slug: str, settings: Settings, connection: Connection | None = None) -> None:
        super().__init__(scopes_supported=list(claims.SCOPES))
        self.session, self.slug, self.settings, self._connection = session, slug, settings, connection
        self.issuer = issuer_of(settings, slug)
        self.auth_session_id: int | None = None
        self.auth_time: datetime | None = None
        self.sid: str | None = None
        self.ended: Any = None
        self._clients: dict[str, Client | None] = {}
        self.register_token_generator("default", self._generate)
        self.register_grant(CodeGrant, [S256Challenge(required=True), CodeIdTokens(self)])
        self.register_grant(RefreshGrant, [IdTokens(self)])
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(EndSession)

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for the prebuilt Core statements (the session's, asked for once)."""
        if self._connection is None:
            self._connection = self.session.connection()
        return self._connection

    @cached_property
    def signing_key(self) -> Any:
        """The ID token's key, read once per request (Authlib asks for it and for its kid)."""
        return keys.signing_key(self.session)

    def query_client(self, client_id: str) -> Client | None:
        """One indexed read per request (client_id is unique), so a replaced secret or a removed client stops
        working at once. Authlib asks twice on the authorize endpoint: the answer is kept for the request."""
        if not all_storable([client_id]):  # from the Authorization header, which no check before this reads
            return None
        if client_id not in self._clients:
            row = self.connection.execute(CLIENT_BY_ID, {"client_id": client_id, "slug": self.slug}).first()
            self._clients[client_id] = Client(row) if row is not None else None
        return self._clients[client_id]

    def _generate(self, grant_type: str, client: Client, user: Contact | None = None, scope: str | None = None,
                  expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        token = {"token_type": "Bearer", "access_token": new_token(),
                 "expires_in": expires_in or self.settings.oidc_access_token_seconds, "scope": scope or ""}
        if include_refresh_token and user is not None:
            token["refresh_token"] = new_token()
        return token

    def save_token(self, token: dict[str, Any], request: Request) -> None:
        now = utcnow()
        family, code_id, auth_session_id, auth_time = secrets.token_urlsafe(16), None, None, None
        if request.authorization_code is not None:
            code = request.authorization_code.row
            code_id, auth_session_id, auth_time = code.id, code.auth_session_id, code.auth_time
        elif request.refresh_token is not None:
            old = request.refresh_token.row
            family, auth_session_id, auth_time = old.family, old.auth_session_id, old.auth_time
        refresh = token.get("refresh_token")
        self.connection.execute(INSERT_TOKEN, dict(
            client_id=request.client.row.id, storefront_id=request.client.row.storefront_id,
            contact_id=request.user.id if request.user is not None else None, auth_session_id=auth_session_id,
            code_id=code_id, family=family, scope=token.get("scope", ""),
            access_digest=token_digest(token["access_token"]),
            refresh_digest=token_digest(refresh) if refresh else None,
            access_expires_at=now + timedelta(seconds=token["expires_in"]),
            refresh_expires_at=now + timedelta(days=self.settings.oidc_refresh_token_days) if refresh else None,
            auth_time=auth_time, created_at=now))
        self.auth_time, self.sid = auth_time, family if request.user is not None else None

    def create_oauth2_request(self, request: Request) -> Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> tuple[int, Any, dict]:
        return status, body, dict(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass
