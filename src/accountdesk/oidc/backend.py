"""Storefront backend credentials: an access token from the client-credentials grant speaks for its storefront
only, with the scopes it was granted. Routes of higher packages (orders) ask here who is calling."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from accountdesk.core import idempotency
from accountdesk.core.audit import Actor
from accountdesk.core.db import utcnow
from accountdesk.core.errors import Forbidden
from accountdesk.core.i18n import _l
from accountdesk.core.security import token_digest
from accountdesk.oidc.models import OidcClient, OidcToken
from accountdesk.staff.deps import bearer_token
from accountdesk.storefronts.models import Storefront


@dataclass(frozen=True)
class BackendCredential:
    client_id: int
    client_name: str
    storefront_id: int
    scopes: frozenset[str]

    @property
    def actor(self) -> Actor:
        return Actor("client", self.client_id, f"storefront backend {self.client_name}")

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(_l("This credential lacks the %(scope)s scope.", scope=scope), code="insufficient_scope",
                            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})


def _client_of_token(conn: Connection, digest: str) -> str | None:
    """Whose idempotency keys a backend credential's requests use: its client's (any token of that client)."""
    client_id = conn.scalar(select(OidcToken.client_id).where(OidcToken.access_digest == digest,
                                                              OidcToken.contact_id.is_(None)))
    return None if client_id is None else f"oidc-client:{client_id}"


idempotency.TOKEN_OWNERS.append(_client_of_token)


def backend_credential(session: Session, request: Request, storefront: Storefront) -> BackendCredential | None:
    """The backend credential in `Authorization: Bearer`, when it is one of this storefront's and still valid;
    None for anything else (a buyer's token, another storefront's credential, an expired one)."""
    token = bearer_token(request)
    if token is None:
        return None
    row = session.execute(
        select(OidcToken.client_id, OidcClient.name, OidcToken.scope)
        .join(OidcClient, OidcClient.id == OidcToken.client_id)
        .where(OidcToken.access_digest == token_digest(token), OidcToken.contact_id.is_(None),
               OidcToken.storefront_id == storefront.id, OidcToken.revoked_at.is_(None),
               OidcToken.access_expires_at > utcnow())).first()
    if row is None:
        return None
    return BackendCredential(row.client_id, row.name, storefront.id, frozenset(row.scope.split()))
