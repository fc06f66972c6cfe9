"""Registering a storefront's OpenID Connect clients: relying parties that sign buyers in and storefront backends
with their own credentials. A secret is shown once, when it is made; only its digest is kept."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.core import audit
from accountdesk.core.audit import Actor
from accountdesk.core.errors import NotFound, field_error
from accountdesk.core.security import new_token, token_digest
from accountdesk.core.settings import Settings
from accountdesk.oidc.models import ClientKind, OidcClient
from accountdesk.oidc.schemas import ClientIn
from accountdesk.storefronts.models import Storefront
from accountdesk.webhooks.targets import TargetRefused, check_url

FIELDS = ("name", "kind", "redirect_uris", "post_logout_redirect_uris", "scopes", "backchannel_logout_uri")


def list_clients(session: Session, storefront: Storefront) -> list[OidcClient]:
    return list(session.scalars(select(OidcClient).where(OidcClient.storefront_id == storefront.id)
                                .order_by(OidcClient.id)))


def get_client(session: Session, storefront: Storefront, client_id: str) -> OidcClient:
    client = session.scalar(select(OidcClient).where(OidcClient.storefront_id == storefront.id,
                                                     OidcClient.client_id == client_id))
    if client is None:
        raise NotFound("No such client on this storefront.", code="oidc_client_not_found")
    return client


def register(session: Session, actor: Actor, storefront: Storefront, data: ClientIn,
             settings: Settings) -> tuple[OidcClient, str | None]:
    """The new client and its secret (None for a public client): give the secret to the client now, it is not
    shown again. Its back-channel logout URI must be one the SSRF guard lets notices reach."""
    if data.backchannel_logout_uri:
        try:
            check_url(data.backchannel_logout_uri, settings)
        except TargetRefused as exc:
            raise field_error("backchannel_logout_uri", str(exc), code="oidc_logout_target_refused") from exc
    secret = new_token() if data.kind == ClientKind.confidential else None
    client = OidcClient(client_id=secrets.token_urlsafe(18), storefront_id=storefront.id,
                        secret_digest=token_digest(secret) if secret else None, **data.model_dump())
    session.add(client)
    session.flush()
    audit.record(session, actor, "oidc_client.registered", subject_type="oidc_client", subject_id=client.id,
                 account_id=None, changes=audit.created({name: getattr(client, name) for name in FIELDS}))
    return client, secret


def new_secret(session: Session, actor: Actor, client: OidcClient) -> str:
    if client.kind != ClientKind.confidential:
        raise NotFound("A public client has no secret.", code="oidc_client_public")
    secret = new_token()
    client.secret_digest = token_digest(secret)
    audit.record(session, actor, "oidc_client.secret_replaced", subject_type="oidc_client", subject_id=client.id,
                 account_id=None)
    return secret


def remove(session: Session, actor: Actor, client: OidcClient) -> None:
    """Its tokens go with it (and stop working at once)."""
    audit.record(session, actor, "oidc_client.removed", subject_type="oidc_client", subject_id=client.id,
                 account_id=None, changes={name: [getattr(client, name), None] for name in FIELDS})
    session.delete(client)


def describe(client: OidcClient, secret: str | None = None) -> dict[str, Any]:
    body = {"client_id": client.client_id, "created_at": client.created_at.isoformat(),
            **{name: getattr(client, name) for name in FIELDS}}
    if secret is not None:
        body["client_secret"] = secret
    return body
