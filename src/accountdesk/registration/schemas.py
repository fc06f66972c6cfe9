"""API shapes for self-registration, account claims (new contact for an existing account) and approvals."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from accountdesk.core import validation
from accountdesk.core.i18n import _l
from accountdesk.core.languages import Language

REQUIRED = _l("This field is required.")
CHOOSE_A_PASSWORD = _l("Choose a password.")


def _required(value: str) -> str:
    if not value.strip():
        raise ValueError(REQUIRED)
    return value.strip()


def _password_given(value: str) -> str:
    if not value:
        raise ValueError(CHOOSE_A_PASSWORD)
    return value


class BillingAddressIn(BaseModel):
    """A billing address; what is missing or wrong (country, state and postcode against each other) is checked by
    the service, every problem at once."""

    line1: str = Field(max_length=200)
    line2: str = Field("", max_length=200)
    city: str = Field(max_length=120)
    region: str = Field("", max_length=10, description="ISO 3166-2 subdivision, e.g. US-CA (required where the "
                                                        "country's addresses need one)")
    postcode: str = Field("", max_length=20)
    country: str = Field(max_length=2, description="ISO 3166-1 alpha-2")


class PersonIn(BaseModel):
    """The person who will sign in: name, e-mail, phone and password; what is missing or wrong is checked by the
    service, every problem at once (with the rest of a registration)."""

    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    email: str = Field(max_length=320)
    phone: str = Field(max_length=40, description="Normalised to E.164 with the billing address's country")
    password: str = Field(max_length=1024)
    language: Language | None = Field(None, description="Left out: the storefront's default language")


class RegistrationIn(PersonIn):
    private_person: bool = Field(False, description="Buying as a private person (B2C): no company name")
    company_name: str = Field("", max_length=200, description="Required unless private_person")
    billing_address: BillingAddressIn
    reseller: bool = Field(False, description="Register as a reseller (only where the storefront allows it)")


class RegistrationAnswer(BaseModel):
    """The same answer for every accepted registration, whether or not the e-mail was already known."""

    status: Literal["received"] = "received"
    registration_mode: str
    message: str


class ClaimIn(BaseModel):
    account_number: str = Field(max_length=40)
    postcode: str = Field(max_length=20)
    invoice_number: str = Field(max_length=40)

    check_filled = field_validator("account_number", "postcode", "invoice_number")(_required)


class ClaimedAccount(BaseModel):
    name: str
    number: str
    city: str
    country: str


class ClaimAnswer(BaseModel):
    claim_token: str
    expires_in: int
    account: ClaimedAccount


class ClaimContactIn(PersonIn):
    pass


class RejectIn(BaseModel):
    reason: str = Field(max_length=2000, description="Told to the registrant in the rejection e-mail")

    check_filled = field_validator("reason")(_required)


class EmailVerificationIn(BaseModel):
    token: str = Field(max_length=200)


class SubdivisionOut(BaseModel):
    code: str
    name: str


class SubdivisionsOut(BaseModel):
    country: str
    required: bool = Field(description="Addresses in this country need a state or province")
    subdivisions: list[SubdivisionOut]


class RequestContactOut(BaseModel):
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    status: str
    created_at: datetime


class RequestAddressOut(BaseModel):
    line1: str
    line2: str
    city: str
    region: str
    postcode: str
    country: str


class AccountRequestOut(BaseModel):
    """A self-registered account waiting for (or past) a decision."""

    account_id: int
    number: str
    name: str
    kind: str
    status: str
    storefront_id: int | None
    storefront_name: str
    requested_at: datetime
    billing_address: RequestAddressOut | None
    contacts: list[RequestContactOut]


class AccountRequestPage(BaseModel):
    items: list[AccountRequestOut]
    total: int
    page: int
    per_page: int


class ContactRequestOut(BaseModel):
    """A new contact for an existing account, waiting for approval."""

    contact: RequestContactOut
    account_id: int
    account_number: str
    account_name: str
    storefront_id: int
    storefront_name: str


class InstantRequestIn(BaseModel):
    """Instant registration, step 1: the e-mail address the ERP holds for the registrant."""

    email: str = Field(max_length=320)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return validation.normalise_email(value)


class InstantAccountOut(BaseModel):
    code: str = Field(description="The ERP's customer code, which becomes the account number")
    name: str
    first_name: str = Field(description="The ERP contact's first name (suggested for the login)")
    last_name: str


class InstantOfferOut(BaseModel):
    """The ERP accounts the link may still create a login for (empty when none is left)."""

    email: str
    accounts: list[InstantAccountOut]


class InstantLoginIn(BaseModel):
    """Instant registration, step 3: the chosen account, the password, and the names if not the ERP's."""

    account_code: str = Field(max_length=40)
    password: str = Field(max_length=1024)
    first_name: str = Field("", max_length=100, description="Left out: the ERP contact's first name")
    last_name: str = Field("", max_length=100, description="Left out: the ERP contact's last name")

    check_filled = field_validator("account_code")(_required)
    check_password = field_validator("password")(_password_given)
