"""API shapes of personal data: erasure and legal holds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500, description="Why (e.g. the person's request of 2026-05-01); kept in the "
                                                         "history without the erased data")


class LegalHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_hold: bool = Field(description="true: the data may not be erased until the hold is lifted")
    reason: str = Field("", max_length=500, description="Kept in the history")


class ErasureOut(BaseModel):
    status: str = "erased"
    contact_ids: list[int] = Field(description="The logins (one e-mail, within your scope) that were erased")


class LegalHoldOut(BaseModel):
    legal_hold: bool
