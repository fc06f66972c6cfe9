"""Request bodies of the staff ERP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from accountdesk.core.validation import Id


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InstantAccountIn(_Strict):
    email: str = Field(min_length=3, max_length=320)
    account_code: str = Field(min_length=1, max_length=40)
    storefront_id: Id
    role: Literal["buyer", "account_admin"] = "buyer"


class ErpCodeIn(_Strict):
    erp_code: str = Field(min_length=1, max_length=40)
