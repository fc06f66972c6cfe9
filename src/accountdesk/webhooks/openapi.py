"""The events in the OpenAPI description (3.1's `webhooks` section): one entry per event type with its payload."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field, create_model

from accountdesk.webhooks.events import EVENTS, VERSION

SIGNED = ("Delivered as an HTTP POST with the Standard Webhooks headers `webhook-id` (the same for every attempt "
          "and replay of one event: use it to drop duplicates), `webhook-timestamp` and `webhook-signature` "
          "(HMAC-SHA256 with the endpoint's `whsec_` secret; two signatures while a rotated secret overlaps). "
          "Answer 2xx within the time limit; anything else is retried.")


def _envelope(event_type: str, data: type[BaseModel]) -> type[BaseModel]:
    name = "".join(part.capitalize() for part in event_type.replace(".", "_").split("_")) + "Event"
    return create_model(name, type=(Literal[event_type], ...),  # type: ignore[valid-type]
                        timestamp=(datetime, Field(description="When the change happened (UTC)")),
                        version=(Literal[VERSION], Field(description="Payload version")),  # type: ignore[valid-type]
                        data=(data, ...))


def document_webhooks(app: FastAPI) -> None:
    for event_type, (data, text) in EVENTS.items():
        envelope = _envelope(event_type, data)

        def receive(event):  # type: ignore[no-untyped-def]
            """Documentation only: what a receiver gets."""

        receive.__annotations__ = {"event": envelope, "return": None}  # a class made here, not a name to resolve
        receive.__name__ = event_type.replace(".", "_")
        app.webhooks.post(event_type, summary=text, description=SIGNED, operation_id=f"webhook_{receive.__name__}",
                          tags=["webhooks"], status_code=200,
                          responses={"4XX": {"description": "Not taken: the delivery is retried later"}})(receive)
