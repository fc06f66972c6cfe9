"""Request bodies of the webhook endpoint API."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from accountdesk.core import validation
from accountdesk.core.validation import Id
from accountdesk.webhooks.events import EventType


class EndpointFields(BaseModel):
    url: str | None = Field(None, max_length=2000, description="http(s) URL the events are POSTed to")
    event_types: list[EventType] | None = Field(None, min_length=1, max_length=50)
    description: str | None = Field(None, max_length=200)
    owner_email: str | None = Field(None, max_length=320, description="Told by e-mail when the endpoint is disabled "
                                                                      "after failing (default: the creator's e-mail)")

    @field_validator("owner_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return validation.normalise_email(value) if value else value


class EndpointCreate(EndpointFields):
    url: str = Field(max_length=2000, description="http(s) URL the events are POSTed to")
    event_types: list[EventType] = Field(min_length=1, max_length=50)
    storefront_id: Id | None = Field(None, description="The storefront whose events it gets; none: every storefront")


class EndpointUpdate(EndpointFields):
    enabled: bool | None = Field(None, description="false stops deliveries (those waiting fail; replay them later)")


class SecretRotation(BaseModel):
    overlap_hours: float | None = Field(None, ge=0, le=720, description="How long the old secret still signs "
                                                                          "(default: the operator's setting)")
