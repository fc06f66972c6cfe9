"""API shapes for contacts (storefront users)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from accountdesk.core import validation
from accountdesk.core.i18n import _l
from accountdesk.core.languages import DateFormat, Language
from accountdesk.core.validation import Id

Role = Literal["buyer", "account_admin"]


class ContactFields(BaseModel):
    first_name: str | None = Field(None, min_length=1, max_length=100)
    last_name: str | None = Field(None, min_length=1, max_length=100)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    language: Language | None = None
    date_format: DateFormat | None = None
    role: Role | None = None

    @field_validator("first_name", "last_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(_l("This field is required."))
        return value.strip() if value else value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return validation.normalise_email(value) if value is not None else None


class ContactCreate(ContactFields):
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: str = Field(max_length=320)
    phone: str = Field(min_length=1, max_length=40)
    language: Language | None = Field(None, description="Left out: the account's preferred language, else its "
                                                         "storefront's default language")
    date_format: DateFormat = "DD/MM/YYYY"
    role: Role = "buyer"
    active: bool = True
    storefront_id: Id | None = Field(None, description="Left out: the account's storefront")


class ContactUpdate(ContactFields):
    model_config = ConfigDict(extra="forbid")


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: int
    storefront_id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    phone_as_given: bool = Field(description="The phone is as the ERP gave it: it could not be read as a number")
    language: str
    date_format: str
    role: str
    status: str
    has_password: bool
    email_verified_at: datetime | None
    last_sign_in_at: datetime | None
    created_at: datetime


class ManualPassword(BaseModel):
    password: str = Field(max_length=1024)
