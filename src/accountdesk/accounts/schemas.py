"""API shapes for accounts, addresses, custom attributes and invoices."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from accountdesk.accounts.models import (
    AccountKind,
    AttributeType,
    CardBrand,
    PartialChargesInvoicing,
    PaymentMethod,
)
from accountdesk.core import validation
from accountdesk.core.i18n import _l
from accountdesk.core.languages import Language
from accountdesk.core.validation import Id


class AddressIn(BaseModel):
    label: str = Field("", max_length=80)
    line1: str = Field(min_length=1, max_length=200)
    line2: str = Field("", max_length=200)
    city: str = Field(min_length=1, max_length=120)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    region: str = Field("", max_length=10, validate_default=True,
                        description="ISO 3166-2 subdivision, e.g. US-CA (required where the country's addresses "
                                    "need one)")
    postcode: str = Field("", max_length=20)
    is_billing: bool = False
    is_shipping: bool = False

    @field_validator("line1", "city")
    @classmethod
    def _required_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(_l("This field is required."))
        return value.strip()

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return validation.country_code(value)

    # region and postcode are read in the light of the country, which is validated first (field order)
    @field_validator("region")
    @classmethod
    def _region(cls, value: str, info: ValidationInfo) -> str:
        country = info.data.get("country")
        return validation.address_region(country, value) if country else value

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str, info: ValidationInfo) -> str:
        country = info.data.get("country")
        return validation.postcode(country, value) if country else value


class AddressOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    label: str
    line1: str
    line2: str
    city: str
    country: str
    region: str
    postcode: str
    is_billing: bool
    is_shipping: bool


class AccountFields(BaseModel):
    """Fields staff may set on an account; every one optional so that PATCH can reuse it."""

    name: str | None = Field(None, min_length=1, max_length=200)
    kind: AccountKind | None = None
    status: Literal["active", "inactive"] | None = None
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    preferred_language: Language | None = None
    customer_group: str | None = Field(None, max_length=40)
    price_group: str | None = Field(None, max_length=40)
    rep_code: str | None = Field(None, max_length=40)
    payment_method: PaymentMethod | None = None
    payment_terms: str | None = Field(None, max_length=40)
    currency: str | None = Field(None, min_length=3, max_length=3)
    prorate_billing: bool | None = None
    billing_day: int | None = Field(None, ge=1, le=28)
    partial_charges_invoicing: PartialChargesInvoicing | None = None
    auto_invoice_email: bool | None = None
    order_approval_required: bool | None = None
    erp_code: str | None = Field(None, max_length=40)
    storefront_id: Id | None = None
    parent_reseller_id: Id | None = None
    attributes: dict[str, Any] | None = Field(None, description="Custom attribute values by key")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return validation.normalise_email(value) if value else value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return validation.currency_code(value) if value else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(_l("Enter the account name."))
        return value.strip() if value else value

    @field_validator("erp_code")
    @classmethod
    def _erp_code(cls, value: str | None) -> str | None:
        return value.strip().upper() or None if value is not None else None


class AccountCreate(AccountFields):
    name: str = Field(min_length=1, max_length=200)
    number: str | None = Field(None, max_length=40,
                               description="Left out: the next number of the storefront's sequence")
    billing_address: AddressIn | None = None


class AccountUpdate(AccountFields):
    """The ERP code is not changed here: PUT /api/v1/accounts/{id}/erp-code checks it in the ERP first."""

    model_config = ConfigDict(extra="forbid")
    erp_code: None = Field(None, exclude=True, description="Not accepted: use PUT /api/v1/accounts/{id}/erp-code")

    @field_validator("erp_code", mode="before")
    @classmethod
    def _no_erp_code(cls, value: object) -> None:
        if value not in (None, ""):
            raise ValueError(_l("Map the account with PUT /api/v1/accounts/{id}/erp-code, "
                                "which checks the code in the ERP."))
        return None


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    name: str
    kind: str
    status: str
    email: str
    phone: str
    phone_as_given: bool = Field(description="The phone is as the ERP gave it: it could not be read as a number")
    preferred_language: str
    customer_group: str
    price_group: str
    rep_code: str
    payment_method: str
    payment_terms: str
    currency: str
    prorate_billing: bool
    billing_day: int
    partial_charges_invoicing: str
    auto_invoice_email: bool
    order_approval_required: bool
    erp_code: str | None
    storefront_id: int | None
    parent_reseller_id: int | None
    credit_limit: Decimal | None
    created_at: datetime
    updated_at: datetime
    addresses: list[AddressOut] = []
    attributes: dict[str, Any] = {}


class AccountPage(BaseModel):
    items: list[AccountOut]
    total: int
    total_is_exact: bool
    page: int
    per_page: int


class AttributeDefinitionIn(BaseModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,59}$")
    label: str = Field(min_length=1, max_length=120)
    type: AttributeType
    choices: list[str] = []
    required: bool = False
    position: int = Field(0, ge=0, le=10_000, description="Order on the account page")

    @model_validator(mode="after")
    def _choices(self) -> AttributeDefinitionIn:
        if self.type == AttributeType.choice and not self.choices:
            raise ValueError(_l("A choice attribute needs its choices."))
        return self


class AttributeDefinitionOut(AttributeDefinitionIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class InvoiceIn(BaseModel):
    number: str = Field(min_length=1, max_length=40)
    issued_on: date
    total: Decimal = Field(Decimal("0"), max_digits=14, decimal_places=2)
    currency: str = Field("EUR", min_length=3, max_length=3)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return validation.currency_code(value)


class InvoiceOut(InvoiceIn):
    model_config = ConfigDict(from_attributes=True)
    id: int
    account_id: int


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    occurred_at: datetime
    actor_type: str
    actor_label: str
    subject_type: str
    subject_id: int
    action: str
    changes: dict[str, Any]
    note: str


class SavedPaymentMethodIn(BaseModel):
    """A payment method the payment provider keeps for the account: its token id and what lets people recognise
    the card. A card number or security code is refused wherever it is sent (422 `card_data_refused`)."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(max_length=40, description="The payment provider, in lower case: stripe, adyen, braintree …")
    provider_token_id: str = Field(max_length=200, description="The provider's id of the stored method (Stripe "
                                                               "pm_…, Adyen storedPaymentMethodId …)")
    brand: CardBrand
    last4: str = Field(max_length=4, description="The card's last four digits")
    expiry_month: int = Field(ge=1, le=12)
    expiry_year: int = Field(ge=2000, le=2099, description="Four digits")
    holder_name: str = Field("", max_length=200)
    contact_id: Id | None = Field(None, description="The contact of the account it belongs to; left out: the "
                                                    "account's own")

    @model_validator(mode="before")
    @classmethod
    def _no_card_data(cls, data: Any) -> Any:
        if isinstance(data, dict) and (found := validation.card_data_fields(data)):
            refused = PydanticCustomError("card_data_refused", "card data")
            raise ValidationError.from_exception_data(cls.__name__, [
                InitErrorDetails(type=refused, loc=(name,), input="") for name in found])  # the input is not kept
        return data

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        name = value.strip().lower()
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            raise ValueError(_l("Name the provider in letters, digits, - or _, for example stripe."))
        return name

    @field_validator("provider_token_id")
    @classmethod
    def _token(cls, value: str) -> str:
        token = value.strip()
        if not re.fullmatch(r"[\x21-\x7e]+", token):
            raise ValueError(_l("Give the provider's id of the stored method, without spaces."))
        return token

    @field_validator("last4")
    @classmethod
    def _last4(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9]{4}", value.strip()):
            raise ValueError(_l("Give the card's last four digits."))
        return value.strip()

    @field_validator("holder_name")
    @classmethod
    def _holder(cls, value: str) -> str:
        return " ".join(value.split())


class SavedPaymentMethodOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: int
    contact_id: int | None
    provider: str
    provider_token_id: str
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int
    holder_name: str
    expired: bool = Field(description="Past its expiry month: the provider will refuse it")
    created_at: datetime
