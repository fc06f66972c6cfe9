"""API shapes for a reseller's customers, their subscriptions and their storefront users."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from accountdesk.core.languages import DATE_FORMATS, LANGUAGES
from accountdesk.resellers.models import SubscriptionKind, SubscriptionStatus

GridSort = Literal["name", "-name", "number", "-number", "city", "-city", "monthly_run_rate", "-monthly_run_rate"]
Percent = Decimal


class CustomerIn(BaseModel):
    """A new customer's details; which are missing or wrong is checked in one go by the service (readable messages)."""

    name: str = Field("", max_length=200, description="Company name")
    email: str = Field("", max_length=320)
    line1: str = Field("", max_length=200, description="Street address")
    city: str = Field("", max_length=120)
    country: str = Field("", max_length=2, description="ISO 3166-1 alpha-2")
    region: str = Field("", max_length=10, description="State or province, ISO 3166-2 (US-CA) or its last part (CA)")
    postcode: str = Field("", max_length=20)
    phone: str = Field("", max_length=40, description="Any usual form; stored in E.164")


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)
    line1: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=120)
    country: str | None = Field(None, max_length=2)
    region: str | None = Field(None, max_length=10)
    postcode: str | None = Field(None, max_length=20)
    phone: str | None = Field(None, max_length=40)
    markup_override_percent: Percent | None = Field(None, ge=0, le=1000, max_digits=6, decimal_places=2,
                                                    description="null: the reseller's markup applies")


class GridRow(BaseModel):
    id: int
    number: str
    name: str
    phone: str
    city: str | None
    email: str
    monthly_run_rate: Decimal
    storefront_access: bool
    status: str


class GridPage(BaseModel):
    items: list[GridRow]
    total: int
    total_is_exact: bool
    page: int
    per_page: int


class StatisticsOut(BaseModel):
    all_customers: int
    transacting_customers: int
    monthly_run_rate: Decimal
    currency: str


class OrderApproval(BaseModel):
    required: bool = Field(description="The customer's own setting")
    forced: bool = Field(False, description="On for every customer because the reseller pays by credit card")
    effective: bool = False
    message: str = ""


class OrderApprovalIn(BaseModel):
    required: bool


class AddressOut(BaseModel):
    line1: str
    city: str
    region: str
    postcode: str
    country: str


class CustomerOut(BaseModel):
    id: int
    number: str
    name: str
    email: str
    phone: str
    status: str
    currency: str
    address: AddressOut
    storefront_access: bool
    monthly_run_rate: Decimal
    markup_override_percent: Decimal | None
    markup_percent: Decimal = Field(description="The markup that applies to this customer's orders")
    order_approval: OrderApproval
    created_at: datetime


class ResellerOut(BaseModel):
    id: int
    number: str
    name: str
    payment_method: str
    markup_percent: Decimal
    storefront_slug: str | None
    order_approval_forced: bool
    currency: str


class MarkupIn(BaseModel):
    markup_percent: Percent = Field(ge=0, le=1000, max_digits=6, decimal_places=2)


class SubscriptionIn(BaseModel):
    kind: SubscriptionKind = SubscriptionKind.subscription
    sku: str = Field(min_length=1, max_length=80)
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(1, ge=1, le=1_000_000)
    monthly_amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(None, min_length=3, max_length=3, description="Left out: the customer's currency")
    status: SubscriptionStatus = SubscriptionStatus.active
    starts_on: date
    ends_on: date | None = None


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    quantity: int | None = Field(None, ge=1, le=1_000_000)
    monthly_amount: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    status: SubscriptionStatus | None = None
    ends_on: date | None = None


class SubscriptionOut(SubscriptionIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: int
    currency: str


class UserIn(BaseModel):
    """A new storefront user; all fields are mandatory (checked by the service with readable messages)."""

    first_name: str = Field("", max_length=100)
    last_name: str = Field("", max_length=100)
    email: str = Field("", max_length=320)
    language: str = Field("", max_length=8, description="One of " + ", ".join(LANGUAGES))
    date_format: str = Field("", max_length=12, description="One of " + ", ".join(DATE_FORMATS))


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: int
    storefront_id: int
    first_name: str
    last_name: str
    email: str
    language: str
    date_format: str
    status: str
    can_sign_in: bool
    created_at: datetime
