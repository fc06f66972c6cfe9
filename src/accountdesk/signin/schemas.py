"""API shapes for storefront sign-in, the password lifecycle, switching accounts and re-verification."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from accountdesk.core.validation import Id


class SignInRequest(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class AccountChoice(BaseModel):
    choice_token: str = Field(max_length=200, description="From the choose_account answer of POST …/sessions")
    contact_id: Id


class PasswordResetRequest(BaseModel):
    email: str = Field(max_length=320)


class LinkCompletion(BaseModel):
    token: str = Field(max_length=200, description="The token of the link mailed to the contact")
    password: str = Field(max_length=1024)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SwitchIn(_Strict):
    contact_id: Id


class ReverificationIn(_Strict):
    token: str = Field(min_length=1, max_length=200)
