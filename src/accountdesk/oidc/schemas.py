"""API shapes of OpenID Connect clients."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

from accountdesk.core.i18n import _l
from accountdesk.oidc.claims import BACKEND_SCOPES, SCOPES

Scope = Literal[SCOPES]  # type: ignore[valid-type]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_uri(value: str) -> str:
    """An absolute https address without a fragment (http only on loopback, for development and native apps)."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment or "#" in value:
        raise ValueError(_l("Use an absolute https:// address without a #fragment."))
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError(_l("Use https:// (http:// only for localhost or 127.0.0.1)."))
    if len(value) > 500 or any(ord(c) < 33 for c in value):
        raise ValueError(_l("Use a plain address of at most 500 characters."))
    return value


class ClientIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["confidential", "public"] = Field(
        "confidential", description="confidential: has a secret (a server); public: no secret, PKCE S256 required")
    redirect_uris: list[str] = Field(default_factory=list, max_length=20,
                                     description="Where sign-ins may return, matched exactly")
    post_logout_redirect_uris: list[str] = Field(default_factory=list, max_length=20,
                                                 description="Where RP-initiated logout may return, matched exactly")
    scopes: list[Scope] = Field(default_factory=lambda: ["openid", "profile", "email", "account"],
                                description="Scopes the client may ask for; orders:write and accounts:read make it "
                                            "a storefront backend (client credentials, confidential clients only)")
    backchannel_logout_uri: str | None = Field(None, description="Receives a logout token when a login signs out "
                                                                 "everywhere or is deactivated")

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(_l("Enter a name."))
        return value.strip()

    @field_validator("redirect_uris", "post_logout_redirect_uris")
    @classmethod
    def _uris(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(check_uri(v) for v in values))

    @field_validator("backchannel_logout_uri")
    @classmethod
    def _backchannel(cls, value: str | None) -> str | None:
        return check_uri(value) if value else None

    @model_validator(mode="after")
    def _consistent(self) -> ClientIn:
        self.scopes = list(dict.fromkeys(self.scopes))
        if self.kind == "public" and set(self.scopes) & set(BACKEND_SCOPES):
            raise ValueError(_l("A public client cannot hold backend scopes (orders:write, accounts:read)."))
        if self.redirect_uris and "openid" not in self.scopes:
            raise ValueError(_l("A client that signs buyers in needs the openid scope."))
        if not self.redirect_uris and not set(self.scopes) & set(BACKEND_SCOPES):
            raise ValueError(_l("Give redirect URIs (sign-in) or a backend scope (client credentials)."))
        return self
