"""API shapes for staff sign-in and staff administration."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from accountdesk.core import validation
from accountdesk.core.validation import Id

Role = Literal["admin", "csr", "approver", "reseller_admin"]


class TokenRequest(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    totp_code: str | None = Field(None, max_length=40, description="The current code of the authenticator app (or a "
                                  "recovery code) of a user with two-step sign-in; without it such a user gets 401 "
                                  "totp_required")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


class _Named(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("name", check_fields=False)
    @classmethod
    def _trim(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None


class StaffInvite(_Named):
    email: str = Field(max_length=320, description="Where the invitation goes; the sign-in e-mail")
    name: str = Field("", max_length=200)
    role: Role | None = Field(None, description="Required from operator admins; reseller staff invite "
                              "reseller_admin colleagues only (the default for them)")
    reseller_account_id: Id | None = Field(None, description="The reseller account of a "
                                            "reseller_admin (reseller staff: their own, which is the default)")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return validation.normalise_email(value)


class StaffUpdate(_Named):
    name: str | None = Field(None, max_length=200)
    role: Role | None = Field(None, description="admin, csr or approver for operator staff; reseller staff stay "
                              "reseller_admin")
    active: bool | None = Field(None, description="false deactivates: every session and API token of the user ends "
                                "for good; true lets the user sign in again")


class StaffUserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: Role
    reseller_account_id: int | None
    status: Literal["invited", "active", "deactivated"]
    active: bool
    totp_enabled: bool
    last_sign_in_at: datetime | None
    created_at: datetime


class StaffList(BaseModel):
    items: list[StaffUserOut]
