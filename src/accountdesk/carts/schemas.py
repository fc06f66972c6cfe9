"""Request bodies of the cart and favourites API."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from accountdesk.core.i18n import _l

MAX_LINES = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CartLineIn(_Strict):
    sku: str = Field(min_length=1, max_length=80)
    name: str = Field("", max_length=200)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=4)


class CartIn(_Strict):
    lines: list[CartLineIn] = Field(default_factory=list, max_length=MAX_LINES)

    @field_validator("lines")
    @classmethod
    def _one_line_per_product(cls, lines: list[CartLineIn]) -> list[CartLineIn]:
        skus = [line.sku for line in lines]
        if len(set(skus)) != len(skus):
            raise ValueError(_l("Each product (sku) may appear on one line only."))
        return lines


class FavouriteIn(_Strict):
    sku: str = Field(min_length=1, max_length=80)
    name: str = Field("", max_length=200)
