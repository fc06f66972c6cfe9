"""Ending relying parties' sessions: the tokens of a contact's sign-ins are revoked and each client that asked for
it gets a logout token POSTed to its back-channel logout URI (OpenID Connect Back-Channel Logout 1.0), through the
outbox so that the notice is written in the same transaction as the change that caused it."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from accountdesk.core import outbox
from accountdesk.core.db import Database, utcnow
from accountdesk.core.outbox import PermanentFailure
from accountdesk.core.security import new_token
from accountdesk.core.settings import Settings
from accountdesk.oidc import claims, keys
from accountdesk.oidc.models import OidcClient, OidcToken
from accountdesk.oidc.server import issuer
from accountdesk.storefronts.models import Storefront
from accountdesk.webhooks.targets import TargetRefused, Unresolved, post_once

KIND = "oidc_logout"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


def end_contact_sessions(session: Session, contact_id: int, *, keep_auth_session_id: int | None = None,
                         only_auth_session_id: int | None = None) -> int:
    """Revoke the contact's live token families (all, all but those of one storefront session, or only those of
    one) and queue a logout notice for each client with a back-channel logout URI. Returns the families ended."""
    live = select(OidcToken.family, OidcToken.client_id).where(OidcToken.contact_id == contact_id,
                                                               OidcToken.revoked_at.is_(None))
    if keep_auth_session_id is not None:
        live = live.where(or_(OidcToken.auth_session_id.is_(None), OidcToken.auth_session_id != keep_auth_session_id))
    if only_auth_session_id is not None:
        live = live.where(OidcToken.auth_session_id == only_auth_session_id)
    families = dict(session.execute(live.distinct()).all())
    if not families:
        return 0
    session.execute(update(OidcToken).where(OidcToken.family.in_(families), OidcToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    subject = claims.subject_of(session, contact_id)
    for family, client_id in sorted(families.items()):
        client = session.get(OidcClient, client_id)
        if client is not None and client.backchannel_logout_uri:
            outbox.enqueue(session, KIND, {"client_id": client.id, "subject": subject, "sid": family},
                           subject_key=f"contact-{contact_id}")
    return len(families)


def end_rp_sign_in(session: Session, contact_id: int, family: str, auth_session_id: int | None) -> None:
    """RP-initiated logout: the tokens of the ID token's sign-in (`sid`) end; when the browser's storefront session
    is that contact's, every client signed in through it is ended too (and told by back channel)."""
    if family:
        session.execute(update(OidcToken).where(OidcToken.family == family, OidcToken.contact_id == contact_id,
                                                OidcToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    if auth_session_id is not None:
        end_contact_sessions(session, contact_id, only_auth_session_id=auth_session_id)


def logout_token(session: Session, settings: Settings, client: OidcClient, subject: str, sid: str) -> str:
    storefront = session.get(Storefront, client.storefront_id)
    now = int(time.time())
    return keys.sign(session, {"iss": issuer(settings, storefront), "aud": client.client_id, "iat": now,
                               "exp": now + settings.oidc_id_token_seconds, "jti": new_token(), "sub": subject,
                               "sid": sid, "events": {EVENT: {}}}, typ="logout+jwt")


class LogoutHandler:
    """The outbox handler: signs the logout token when sending (so that it is fresh) and POSTs it to a checked
    address (the webhooks' SSRF guard: public addresses only unless the operator allows others), never following a
    redirect; any answer but 200/204 is retried by the outbox, a refused address is not."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings

    def __call__(self, payload: dict[str, Any]) -> None:
        with self.db.transaction() as session:
            client = session.get(OidcClient, payload["client_id"])
            if client is None or not client.backchannel_logout_uri:
                raise PermanentFailure("the client or its back-channel logout URI is gone")
            uri = client.backchannel_logout_uri
            token = logout_token(session, self.settings, client, payload["subject"], payload["sid"])
        try:
            status = post_once(uri, urlencode({"logout_token": token}).encode(),
                               {"content-type": "application/x-www-form-urlencoded", "cache-control": "no-store"},
                               self.settings, self.settings.oidc_logout_timeout_seconds)
        except Unresolved:
            raise
        except TargetRefused as exc:
            raise PermanentFailure(f"back-channel logout refused: {exc}") from exc
        if status not in (200, 204):
            raise RuntimeError(f"back-channel logout answered {status}")
