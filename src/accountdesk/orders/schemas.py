"""API shapes for orders and their lines."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class LineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=80)
    name: str = Field("", max_length=200)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_cost: Decimal = Field(ge=0, max_digits=14, decimal_places=4)
    auto_provisioned: bool = Field(True, description="False: the distributor provisions it by hand (in progress)")

    @field_validator("sku", "name")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class OrderIn(BaseModel):
    lines: list[LineIn] = Field(min_length=1, max_length=200)


class StorefrontLineIn(LineIn):
    unit_cost: Decimal | None = Field(  # type: ignore[assignment]
        None, ge=0, max_digits=14, decimal_places=4,
        description="Only with the storefront's backend credential (scope orders:write): a buyer's own token may "
                    "not price an order (422 price_not_allowed); lines without a price are recorded unpriced, for "
                    "the distributor to price")


class StorefrontOrderIn(BaseModel):
    lines: list[StorefrontLineIn] = Field(min_length=1, max_length=200)
    buyer: str | None = Field(None, min_length=1, max_length=64,
                              description="With a backend credential: the buyer (the `sub` of their ID token) the "
                                          "order is placed for; a buyer's own token leaves it out")


class LineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    name: str
    quantity: int
    unit_cost: Decimal | None
    line_cost: Decimal | None
    auto_provisioned: bool


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    account_id: int
    reseller_account_id: int | None
    placed_by: str
    placed_by_contact_id: int | None
    placed_by_staff_id: int | None
    status: str
    status_label: str
    currency: str
    total_cost: Decimal | None = Field(description="None while the order is to be priced")
    markup_percent: Decimal
    total_amount: Decimal | None = Field(description="None while the order is to be priced")
    created_at: datetime
    decided_at: datetime | None
    decided_by_staff_id: int | None
    lines: list[LineOut]


class OrderPage(BaseModel):
    items: list[OrderOut]
    total: int
    page: int
    per_page: int
