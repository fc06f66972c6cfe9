"""OpenID Connect provider tables: signing keys, registered clients (relying parties and storefront backends),
authorization codes, issued tokens and the stable subject of each contact."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from accountdesk.core.db import Base, BigId, UtcDateTime, utcnow


class KeyState(StrEnum):
    active = "active"  # signs new tokens, published
    retiring = "retiring"  # published (tokens it signed still verify), signs nothing new
    retired = "retired"  # no longer published


class ClientKind(StrEnum):
    confidential = "confidential"  # has a secret: a storefront backend (may also use client credentials)
    public = "public"  # no secret (a browser or mobile app): PKCE S256 required


class SigningKey(Base):
    __tablename__ = "oidc_signing_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(10), default=KeyState.active, index=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_sealed: Mapped[str] = mapped_column(Text)  # the private JWK, sealed with the app's secret key
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OidcClient(Base):
    __tablename__ = "oidc_clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    storefront_id: Mapped[int] = mapped_column(ForeignKey("storefronts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(12), default=ClientKind.confidential)
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuthorizationCode(Base):
    __tablename__ = "oidc_authorization_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("oidc_clients.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    auth_session_id: Mapped[int | None] = mapped_column(BigId)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(500))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OidcToken(Base):
    """An access token with its refresh token (none for client credentials). Refreshing rotates: the used row is
    marked `rotated_at` and a new row joins the same `family`; presenting a rotated refresh token again revokes the
    whole family (it was stolen, or the client is broken)."""

    __tablename__ = "oidc_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("oidc_clients.id", ondelete="CASCADE"), index=True)
    storefront_id: Mapped[int] = mapped_column(BigId)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    auth_session_id: Mapped[int | None] = mapped_column(BigId)
    code_id: Mapped[int | None] = mapped_column(BigId, index=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(500))
    access_digest: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    access_expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    auth_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_oidc_tokens_contact_id_revoked_at", "contact_id", "revoked_at"),)


class Subject(Base):
    """The `sub` of a contact: random and stable, so that it reveals neither database ids nor how many there are."""

    __tablename__ = "oidc_subjects"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), unique=True)
