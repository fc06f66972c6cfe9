"""API shapes of company e-mail domains."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DomainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str = Field(max_length=253, description="e.g. example.com; public mail domains (gmail.com …) are refused")


class DomainJoinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["approval", "direct"] = Field(description="approval: the account admin approves each registrant; "
                                                            "direct: registrants join at once")


class DomainOut(BaseModel):
    id: int
    domain: str
    verified: bool
    verified_at: datetime | None
    verified_by: Literal["dns", "staff"] | None
    txt_record: str = Field(description="The TXT record to publish at the domain to prove it")


class DomainCheckOut(DomainOut):
    problem: str = Field("", description="Why the domain is not verified yet (record missing, DNS not answering)")


class DomainsOut(BaseModel):
    domain_join: Literal["approval", "direct"]
    domains: list[DomainOut]
